package kraftlog

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// MetaFile is the file Kafka keeps in every log dir of a KRaft node.
const MetaFile = "meta.properties"

// DefaultLogDir is Kafka's log.dir when server.properties names none.
const DefaultLogDir = "/tmp/kafka-logs"

// Meta is what a meta.properties says (version 1, KRaft).
type Meta struct {
	Version     string `json:"version,omitempty"`
	ClusterID   string `json:"cluster_id,omitempty"`
	NodeID      string `json:"node_id,omitempty"`
	DirectoryID string `json:"directory_id,omitempty"`
}

// ParseMeta reads a meta.properties file (key=value lines, # comments).
func ParseMeta(data []byte) Meta {
	p := parseProps(data)
	return Meta{Version: p["version"], ClusterID: p["cluster.id"], NodeID: p["node.id"], DirectoryID: p["directory.id"]}
}

func parseProps(data []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := propLine(sc.Text())
		if ok {
			if _, seen := out[k]; !seen {
				out[k] = v
			}
		}
	}
	return out
}

// propLine splits "key=value" (or "key: value", "key value"); comments and
// blank lines are not properties.
func propLine(line string) (string, string, bool) {
	l := strings.TrimLeft(line, " \t\f")
	if l == "" || l[0] == '#' || l[0] == '!' {
		return "", "", false
	}
	l = strings.TrimRight(l, "\r")
	i := strings.IndexAny(l, "=: \t")
	if i < 0 {
		return l, "", true
	}
	k := strings.TrimSpace(l[:i])
	rest := strings.TrimLeft(l[i:], " \t")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = rest[1:]
	}
	return k, strings.TrimSpace(rest), true
}

// EditMeta sets keys of a meta.properties, keeping every other line as it
// is (comments, order, line endings); a key not in the file is appended.
// It reports whether anything changed.
func EditMeta(data []byte, set map[string]string) ([]byte, bool) {
	lines := bytes.SplitAfter(data, []byte("\n"))
	var out bytes.Buffer
	done := map[string]bool{}
	changed := false
	for _, l := range lines {
		if len(l) == 0 {
			continue
		}
		k, v, ok := propLine(strings.TrimRight(string(l), "\n"))
		if want, has := set[k]; ok && has && !done[k] {
			done[k] = true
			if v != want {
				nl := ""
				if bytes.HasSuffix(l, []byte("\r\n")) {
					nl = "\r\n"
				} else if bytes.HasSuffix(l, []byte("\n")) {
					nl = "\n"
				}
				out.WriteString(k + "=" + want + nl)
				changed = true
				continue
			}
		}
		out.Write(l)
	}
	var missing []string
	for k := range set {
		if !done[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	for _, k := range missing {
		if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
			out.WriteString("\n")
		}
		out.WriteString(k + "=" + set[k] + "\n")
		changed = true
	}
	return out.Bytes(), changed
}

// NewMeta is a meta.properties as `kafka-storage format` writes it for a
// KRaft node (version 1).
func NewMeta(m Meta) []byte {
	return []byte(fmt.Sprintf("#\n#written by kbr (restore of the metadata log)\nnode.id=%s\ndirectory.id=%s\nversion=1\ncluster.id=%s\n", m.NodeID, m.DirectoryID, m.ClusterID))
}

// Node is what a KRaft node's server.properties says about its storage.
type Node struct {
	NodeID int32    `json:"node_id"`
	Roles  []string `json:"roles"`
	// MetadataLogDir holds __cluster_metadata-0: metadata.log.dir, else
	// the first of log.dirs.
	MetadataLogDir string   `json:"metadata_log_dir"`
	LogDirs        []string `json:"log_dirs"`
}

// Controller reports a node that votes in the quorum (controller or combined).
func (n Node) Controller() bool { return hasRole(n.Roles, "controller") }

// Broker reports a node that serves clients (broker or combined).
func (n Node) Broker() bool { return hasRole(n.Roles, "broker") }

func hasRole(roles []string, r string) bool {
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

// Dirs lists the node's log dirs with the metadata log dir first, each once.
func (n Node) Dirs() []string {
	out := []string{n.MetadataLogDir}
	for _, d := range n.LogDirs {
		if filepath.Clean(d) != filepath.Clean(n.MetadataLogDir) {
			out = append(out, d)
		}
	}
	return out
}

// ParseNode reads a node's storage settings from its server.properties.
func ParseNode(props map[string]string) (Node, error) {
	var n Node
	roles := strings.TrimSpace(props["process.roles"])
	if roles == "" {
		return n, fmt.Errorf("process.roles is not set: not a KRaft node (a ZooKeeper-mode broker has no metadata log)")
	}
	for _, r := range strings.Split(roles, ",") {
		r = strings.TrimSpace(r)
		if r != "broker" && r != "controller" {
			return n, fmt.Errorf("process.roles=%s: %q is neither broker nor controller", roles, r)
		}
		n.Roles = append(n.Roles, r)
	}
	sort.Strings(n.Roles)
	id, err := strconv.ParseInt(strings.TrimSpace(props["node.id"]), 10, 32)
	if err != nil || id < 0 {
		return n, fmt.Errorf("node.id=%q is not a node id", props["node.id"])
	}
	n.NodeID = int32(id)
	v := props["log.dirs"]
	if strings.TrimSpace(v) == "" {
		v = props["log.dir"]
	}
	for _, d := range strings.Split(v, ",") {
		if d = strings.TrimSpace(d); d != "" {
			n.LogDirs = append(n.LogDirs, d)
		}
	}
	if len(n.LogDirs) == 0 {
		n.LogDirs = []string{DefaultLogDir}
	}
	n.MetadataLogDir = strings.TrimSpace(props["metadata.log.dir"])
	if n.MetadataLogDir == "" {
		n.MetadataLogDir = n.LogDirs[0]
	}
	return n, nil
}

// BackedUpDir is a log dir of a node as its backup recorded it.
type BackedUpDir struct {
	Path        string
	Metadata    bool
	DirectoryID string
}

// CurrentDir is a log dir of a node now: its meta.properties (nil when it
// has none).
type CurrentDir struct {
	Path string
	Meta []byte
}

// MetaFix is what a restore does to one log dir's meta.properties.
type MetaFix struct {
	Dir    string `json:"dir"`
	Before Meta   `json:"before"`
	After  Meta   `json:"after"`
	// Status: fixed, already correct, created (the metadata log dir of a
	// controller had none), or no meta.properties (left to Kafka).
	Status string `json:"status"`
	// Data is the new file (nil when nothing is written).
	Data []byte `json:"-"`
}

// Statuses of a MetaFix.
const (
	FixFixed   = "fixed"
	FixCorrect = "already correct"
	FixCreated = "created"
	FixAbsent  = "no meta.properties"
)

// PlanMetaFixes makes every log dir of a node agree with the restored
// metadata log: cluster.id is the backup's everywhere; directory.id is the
// backed-up one of the same dir (the metadata log dir's for the metadata
// log dir wherever it lives now, else the dir of the same path), which the
// quorum's voter set and the partitions' directory assignments name; every
// other line stays. A controller's metadata log dir without a
// meta.properties gets one. Two dirs would never end with one directory id.
func PlanMetaFixes(node Node, clusterID string, current []CurrentDir, backup []BackedUpDir) ([]MetaFix, error) {
	if strings.TrimSpace(clusterID) == "" || strings.ContainsAny(clusterID, "\r\n=") {
		return nil, fmt.Errorf("%q is not a cluster id", clusterID)
	}
	byPath := map[string]string{}
	metaID := ""
	for _, b := range backup {
		if b.Metadata {
			metaID = b.DirectoryID
		}
		byPath[filepath.Clean(b.Path)] = b.DirectoryID
	}
	var out []MetaFix
	ids := map[string]string{}
	for _, c := range current {
		isMeta := filepath.Clean(c.Path) == filepath.Clean(node.MetadataLogDir)
		want := byPath[filepath.Clean(c.Path)]
		if isMeta && metaID != "" {
			want = metaID
		}
		fix := MetaFix{Dir: c.Path}
		switch {
		case c.Meta == nil && isMeta && node.Controller():
			if want == "" {
				return nil, fmt.Errorf("%s has no %s and the backup names no directory id for it", c.Path, MetaFile)
			}
			fix.After = Meta{Version: "1", ClusterID: clusterID, NodeID: strconv.Itoa(int(node.NodeID)), DirectoryID: want}
			fix.Data, fix.Status = NewMeta(fix.After), FixCreated
		case c.Meta == nil:
			fix.Status = FixAbsent
		default:
			fix.Before = ParseMeta(c.Meta)
			if fix.Before.NodeID != "" && fix.Before.NodeID != strconv.Itoa(int(node.NodeID)) {
				return nil, fmt.Errorf("%s/%s says node.id=%s, the node is %d", c.Path, MetaFile, fix.Before.NodeID, node.NodeID)
			}
			set := map[string]string{"cluster.id": clusterID}
			if want != "" {
				set["directory.id"] = want
			}
			data, changed := EditMeta(c.Meta, set)
			fix.After = ParseMeta(data)
			fix.Status = FixCorrect
			if changed {
				fix.Data, fix.Status = data, FixFixed
			}
		}
		if id := fix.After.DirectoryID; id != "" {
			if other, dup := ids[id]; dup {
				return nil, fmt.Errorf("%s and %s would both carry directory.id %s", other, c.Path, id)
			}
			ids[id] = c.Path
		}
		out = append(out, fix)
	}
	return out, nil
}
