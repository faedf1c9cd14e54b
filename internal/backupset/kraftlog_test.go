package backupset

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func kraftManifest() *Manifest {
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	dir := KRaftLogDir("kq_20261203T090000Z", "4.1", at)
	node := func(id int32) KRaftNode {
		nd := KRaftNodeDir(dir, id)
		return KRaftNode{Node: id, Host: "kq", Roles: []string{"broker", "controller"}, ClusterID: "C", MetadataDir: "/m",
			Dirs:     []KRaftDir{{Path: "/m", Metadata: true, DirectoryID: "D"}},
			Snapshot: &KRaftSnapshot{EndOffset: 100, Epoch: 2}, EndOffset: 130, LastEpoch: 2, TakenAt: at,
			Files: []KRaftFile{
				{FileEntry: FileEntry{Name: nd + "/00000000000000000100-0000000002.checkpoint", Size: 10, SHA256: strings.Repeat("a", 64)}, Kind: "snapshot"},
				{FileEntry: FileEntry{Name: nd + "/00000000000000000000.log", Size: 20, SHA256: strings.Repeat("b", 64)}, Kind: "segment"},
			}}
	}
	return &Manifest{Format: FormatVersion, Task: "kq", TaskDir: "kq_20261203T090000Z", Cluster: "kq", Mode: "kraft", Kind: KindFull,
		ExecutedAt: at, DataSources: []string{SourceMetadata, SourceKRaftLog}, Compression: CompressionNone,
		Metadata: &FileEntry{Name: "kq_20261203T090000Z/4.1_metadata_20261203T100000Z.tar.gz", Size: 5, SHA256: strings.Repeat("c", 64)},
		KRaftLog: []KRaftNode{node(1), node(2)}}
}

// The metadata logs are in the manifest (snake_case, format 2), listed by
// Files with their sizes and SHA-256 (so verify, retention and chain checks
// cover them), counted in the totals, and named the MRS way.
func TestManifestKRaftLog(t *testing.T) {
	m := kraftManifest()
	m.ComputeTotals()
	if m.Totals.Files != 5 || m.Totals.Bytes != 65 {
		t.Errorf("totals %+v, want 5 files, 65 bytes", m.Totals)
	}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"kraft_log": [`, `"end_offset": 130`, `"directory_id": "D"`, `"metadata_dir": "/m"`, `"kind": "snapshot"`,
		`"name": "kq_20261203T090000Z/4.1_kraftlog_20261203T100000Z/node-2/00000000000000000000.log"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("manifest JSON lacks %s:\n%s", want, data)
		}
	}
	back, err := ReadManifest("kq_20261203T090000Z/4.1_manifest_20261203T100000Z.json", data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.KRaftLog, m.KRaftLog) {
		t.Errorf("read back %+v", back.KRaftLog)
	}
	var names []string
	for _, f := range back.Files() {
		names = append(names, f.Name)
	}
	if len(names) != 5 || !strings.HasSuffix(names[4], "node-2/00000000000000000000.log") {
		t.Errorf("Files() = %v", names)
	}
	if n := back.KRaftNodeOf(2); n == nil || n.MetadataDirID() != "D" || n.Bytes() != 30 || n.Files[0].FileName() != "00000000000000000100-0000000002.checkpoint" {
		t.Errorf("node 2: %+v", n)
	}
	for _, f := range names {
		dir, ver, src, _, ok := ParseEntry(f)
		if !ok || dir != "kq_20261203T090000Z" || ver != "4.1" {
			t.Errorf("ParseEntry(%s) = %s %s %s %v", f, dir, ver, src, ok)
		}
	}
	// A pruned recovery point's metadata logs are deleted with it.
	plan, err := PlanRetention(RetentionInput{TaskDir: "kq_20261203T090000Z", MaxCopies: 1, Current: "kq_20261203T090000Z/4.1_manifest_20261204T100000Z.json",
		Manifests: []string{"kq_20261203T090000Z/4.1_manifest_20261203T100000Z.json", "kq_20261203T090000Z/4.1_manifest_20261204T100000Z.json"},
		Files:     append(names, "kq_20261203T090000Z/4.1_manifest_20261203T100000Z.json"),
		Links:     map[string]ChainLink{"kq_20261203T090000Z/4.1_manifest_20261204T100000Z.json": {}}})
	if err != nil || len(plan.DeleteFiles) != 5 || len(plan.Foreign) != 0 {
		t.Errorf("retention %+v, %v", plan, err)
	}
}

func TestManifestKRaftLogRefused(t *testing.T) {
	for _, c := range []struct {
		edit func(*Manifest)
		want string
	}{
		{func(m *Manifest) { m.KRaftLog[1].Node = 1 }, "node 1 listed twice"},
		{func(m *Manifest) { m.KRaftLog[0].Files[1].Kind = "" }, "files[1]"},
		{func(m *Manifest) { m.KRaftLog[0].Files[0].SHA256 = "" }, "files[0]"},
		{func(m *Manifest) { m.KRaftLog[0].Files[0].Name = "../x.log" }, `names the file "../x.log"`},
	} {
		m := kraftManifest()
		c.edit(m)
		data, _ := json.Marshal(m)
		if _, err := ReadManifest("x", data); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ReadManifest: %v, want %q", err, c.want)
		}
	}
}
