package kraftlog

import (
	"reflect"
	"strings"
	"testing"
)

const formatted = "#\n#Thu Dec 03 09:06:47 UTC 2026\nnode.id=1\ndirectory.id=NEWDIRidNEWDIRidNEWDIR\nversion=1\ncluster.id=NEWclusterNEWcluster00\n"

func TestEditMeta(t *testing.T) {
	for _, c := range []struct {
		name, in string
		set      map[string]string
		out      string
		changed  bool
	}{
		{"both ids", formatted, map[string]string{"cluster.id": "OLD", "directory.id": "OLDDIR"},
			"#\n#Thu Dec 03 09:06:47 UTC 2026\nnode.id=1\ndirectory.id=OLDDIR\nversion=1\ncluster.id=OLD\n", true},
		{"already so", formatted, map[string]string{"cluster.id": "NEWclusterNEWcluster00"}, formatted, false},
		{"appended, CRLF kept", "version=1\r\nnode.id=2\r\n", map[string]string{"cluster.id": "C"}, "version=1\r\nnode.id=2\r\ncluster.id=C\n", true},
		{"no final newline", "version=1", map[string]string{"cluster.id": "C"}, "version=1\ncluster.id=C\n", true},
		{"a commented key is not the key", "#cluster.id=X\ncluster.id = Y\n", map[string]string{"cluster.id": "Z"}, "#cluster.id=X\ncluster.id=Z\n", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, changed := EditMeta([]byte(c.in), c.set)
			if string(out) != c.out || changed != c.changed {
				t.Errorf("got %q %v, want %q %v", out, changed, c.out, c.changed)
			}
		})
	}
	m := ParseMeta([]byte(formatted))
	if m != (Meta{Version: "1", ClusterID: "NEWclusterNEWcluster00", NodeID: "1", DirectoryID: "NEWDIRidNEWDIRidNEWDIR"}) {
		t.Errorf("ParseMeta = %+v", m)
	}
	if got := ParseMeta(NewMeta(Meta{NodeID: "3", DirectoryID: "D", ClusterID: "C"})); got != (Meta{Version: "1", ClusterID: "C", NodeID: "3", DirectoryID: "D"}) {
		t.Errorf("NewMeta reads back as %+v", got)
	}
}

func TestParseNode(t *testing.T) {
	for _, c := range []struct {
		name  string
		props map[string]string
		want  Node
		err   string
	}{
		{"combined, metadata.log.dir apart", map[string]string{"process.roles": "broker,controller", "node.id": "2", "log.dirs": "/d/a, /d/b", "metadata.log.dir": "/m"},
			Node{NodeID: 2, Roles: []string{"broker", "controller"}, MetadataLogDir: "/m", LogDirs: []string{"/d/a", "/d/b"}}, ""},
		{"metadata in the first log dir", map[string]string{"process.roles": "controller", "node.id": "3000", "log.dir": "/c"},
			Node{NodeID: 3000, Roles: []string{"controller"}, MetadataLogDir: "/c", LogDirs: []string{"/c"}}, ""},
		{"defaults", map[string]string{"process.roles": "broker", "node.id": "4"},
			Node{NodeID: 4, Roles: []string{"broker"}, MetadataLogDir: DefaultLogDir, LogDirs: []string{DefaultLogDir}}, ""},
		{"ZooKeeper mode", map[string]string{"broker.id": "1", "zookeeper.connect": "z:2181"}, Node{}, "process.roles is not set"},
		{"bad role", map[string]string{"process.roles": "broker,voter", "node.id": "1"}, Node{}, `"voter"`},
		{"bad node id", map[string]string{"process.roles": "broker", "node.id": "x"}, Node{}, "node.id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, err := ParseNode(c.props)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(n, c.want) {
				t.Fatalf("got %+v %v, want %+v", n, err, c.want)
			}
		})
	}
	n := Node{NodeID: 1, Roles: []string{"broker", "controller"}, MetadataLogDir: "/d/a/", LogDirs: []string{"/d/a", "/d/b"}}
	if !reflect.DeepEqual(n.Dirs(), []string{"/d/a/", "/d/b"}) || !n.Controller() || !n.Broker() {
		t.Errorf("Dirs %v", n.Dirs())
	}
}

func TestPlanMetaFixes(t *testing.T) {
	node := Node{NodeID: 1, Roles: []string{"broker", "controller"}, MetadataLogDir: "/n1/meta", LogDirs: []string{"/n1/data"}}
	data := "#\nnode.id=1\ndirectory.id=DATADIR\nversion=1\ncluster.id=ORIG\n"
	backup := []BackedUpDir{{Path: "/n1/meta", Metadata: true, DirectoryID: "METADIR"}, {Path: "/n1/data", DirectoryID: "DATADIR"}}
	t.Run("after a reformat", func(t *testing.T) {
		fixes, err := PlanMetaFixes(node, "ORIG", []CurrentDir{{"/n1/meta", []byte(formatted)}, {"/n1/data", []byte(data)}}, backup)
		if err != nil {
			t.Fatal(err)
		}
		if f := fixes[0]; f.Status != FixFixed || f.After.ClusterID != "ORIG" || f.After.DirectoryID != "METADIR" || f.Before.DirectoryID != "NEWDIRidNEWDIRidNEWDIR" ||
			!strings.Contains(string(f.Data), "#Thu Dec 03") {
			t.Errorf("metadata dir: %+v %q", f, f.Data)
		}
		if f := fixes[1]; f.Status != FixCorrect || f.Data != nil {
			t.Errorf("data dir: %+v", f)
		}
	})
	t.Run("the metadata dir deleted, not formatted", func(t *testing.T) {
		fixes, err := PlanMetaFixes(node, "ORIG", []CurrentDir{{"/n1/meta", nil}, {"/n1/data", []byte(data)}}, backup)
		if err != nil {
			t.Fatal(err)
		}
		if f := fixes[0]; f.Status != FixCreated || ParseMeta(f.Data) != (Meta{Version: "1", ClusterID: "ORIG", NodeID: "1", DirectoryID: "METADIR"}) {
			t.Errorf("metadata dir: %+v %q", f, f.Data)
		}
	})
	t.Run("the metadata dir moved", func(t *testing.T) {
		moved := node
		moved.MetadataLogDir = "/new/meta"
		fixes, err := PlanMetaFixes(moved, "ORIG", []CurrentDir{{"/new/meta", []byte(formatted)}, {"/n1/data", []byte(data)}}, backup)
		if err != nil || fixes[0].After.DirectoryID != "METADIR" {
			t.Errorf("%+v %v", fixes, err)
		}
	})
	t.Run("a broker's dirs: cluster id only", func(t *testing.T) {
		b := Node{NodeID: 4, Roles: []string{"broker"}, MetadataLogDir: "/b/d", LogDirs: []string{"/b/d"}}
		fixes, err := PlanMetaFixes(b, "ORIG", []CurrentDir{{"/b/d", []byte("node.id=4\ndirectory.id=BDIR\ncluster.id=NEW\nversion=1\n")}, {"/b/e", nil}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if fixes[0].Status != FixFixed || fixes[0].After != (Meta{Version: "1", ClusterID: "ORIG", NodeID: "4", DirectoryID: "BDIR"}) || fixes[1].Status != FixAbsent {
			t.Errorf("%+v", fixes)
		}
	})
	for _, c := range []struct {
		name    string
		cluster string
		current []CurrentDir
		backup  []BackedUpDir
		err     string
	}{
		{"no cluster id", "", nil, backup, "not a cluster id"},
		{"another node's dir", "ORIG", []CurrentDir{{"/n1/meta", []byte("node.id=2\n")}}, backup, "node.id=2, the node is 1"},
		{"two dirs, one id", "ORIG", []CurrentDir{{"/n1/meta", []byte(formatted)}, {"/n1/data", []byte("node.id=1\ndirectory.id=METADIR\n")}},
			[]BackedUpDir{{Path: "/n1/meta", Metadata: true, DirectoryID: "METADIR"}}, "both carry directory.id METADIR"},
		{"no id to create with", "ORIG", []CurrentDir{{"/n1/meta", nil}}, nil, "names no directory id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := PlanMetaFixes(node, c.cluster, c.current, c.backup); err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("err %v, want %q", err, c.err)
			}
		})
	}
}
