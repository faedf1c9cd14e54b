package backupset

import (
	"fmt"
	"path"
	"time"
)

// KRaftLogName is the data source part of the KRaft metadata log's folder
// name: "<kafka version>_kraftlog_<execution time>/".
const KRaftLogName = "kraftlog"

// KRaftLogDir is a recovery point's folder of controllers' metadata logs.
func KRaftLogDir(taskDir, kafkaVersion string, executed time.Time) string {
	return taskDir + "/" + Name(kafkaVersion, KRaftLogName, executed)
}

// KRaftNodeDir is one node's folder in it: "node-<id>".
func KRaftNodeDir(kraftLogDir string, node int32) string {
	return fmt.Sprintf("%s/node-%d", kraftLogDir, node)
}

// KRaftNode is one KRaft node's metadata log in a recovery point: the files
// copied from its __cluster_metadata-0 (the newest snapshot and the log
// segments after it, read up to EndOffset), and the ids its meta.properties
// carried, which a restore writes back.
type KRaftNode struct {
	Node int32  `json:"node"`
	Host string `json:"host"`
	// Roles is the node's process.roles (broker, controller).
	Roles     []string `json:"roles"`
	ClusterID string   `json:"cluster_id"`
	// MetadataDir is the node's metadata log dir (metadata.log.dir, else
	// the first of log.dirs) when it was copied.
	MetadataDir string `json:"metadata_dir"`
	// Dirs are its log dirs with the ids of their meta.properties.
	Dirs []KRaftDir `json:"dirs"`
	// Snapshot is the newest snapshot copied (nil: the log from offset 0).
	Snapshot *KRaftSnapshot `json:"snapshot,omitempty"`
	// EndOffset is the offset after the last record copied, LastEpoch that
	// record's leader epoch: what a restore brings back.
	EndOffset int64     `json:"end_offset"`
	LastEpoch int32     `json:"last_epoch"`
	TakenAt   time.Time `json:"taken_at"`
	// Whole marks a safety copy: every snapshot, segment and state file of
	// the directory as it was, not only what a backup takes.
	Whole bool        `json:"whole,omitempty"`
	Files []KRaftFile `json:"files"`
}

// KRaftSnapshot names a snapshot: its end offset and epoch.
type KRaftSnapshot struct {
	EndOffset int64 `json:"end_offset"`
	Epoch     int32 `json:"epoch"`
}

// KRaftDir is a log dir of a node and what its meta.properties said.
type KRaftDir struct {
	Path string `json:"path"`
	// Metadata marks the metadata log dir.
	Metadata    bool   `json:"metadata,omitempty"`
	ClusterID   string `json:"cluster_id,omitempty"`
	NodeID      string `json:"node_id,omitempty"`
	DirectoryID string `json:"directory_id,omitempty"`
	// NoMeta: the dir had no meta.properties.
	NoMeta bool `json:"no_meta,omitempty"`
}

// KRaftFile is one file of a node's metadata log: its entry (named
// <node dir>/<file name as Kafka names it>), what kind of file it is
// (snapshot, segment, state) and, for a segment, its base offset.
type KRaftFile struct {
	FileEntry
	Kind string `json:"kind"`
	Base int64  `json:"base,omitempty"`
}

// FileName is the file's name in __cluster_metadata-0.
func (f KRaftFile) FileName() string { return path.Base(f.Name) }

// MetadataDirID is the directory id the node's metadata log dir had.
func (n KRaftNode) MetadataDirID() string {
	for _, d := range n.Dirs {
		if d.Metadata {
			return d.DirectoryID
		}
	}
	return ""
}

// Bytes is the size of the node's files.
func (n KRaftNode) Bytes() int64 {
	var s int64
	for _, f := range n.Files {
		s += f.Size
	}
	return s
}

// KRaftNodeOf finds a node's metadata log in the manifest.
func (m *Manifest) KRaftNodeOf(node int32) *KRaftNode {
	for i := range m.KRaftLog {
		if m.KRaftLog[i].Node == node {
			return &m.KRaftLog[i]
		}
	}
	return nil
}

func kraftFiles(nodes []KRaftNode) []FileEntry {
	var out []FileEntry
	for _, n := range nodes {
		for _, f := range n.Files {
			out = append(out, f.FileEntry)
		}
	}
	return out
}

// checkKRaftLog refuses a manifest whose metadata logs are not well formed:
// a node twice, a file without a name, kind or size.
func checkKRaftLog(nodes []KRaftNode) error {
	seen := map[int32]bool{}
	for i, n := range nodes {
		if seen[n.Node] {
			return manifestErrorf("kraft_log[%d]: node %d listed twice", i, n.Node)
		}
		seen[n.Node] = true
		for k, f := range n.Files {
			if f.Name == "" || f.Size < 0 || f.Kind == "" || len(f.SHA256) != 64 {
				return manifestErrorf("kraft_log[%d] (node %d): files[%d] (%q) incomplete", i, n.Node, k, f.Name)
			}
		}
	}
	return nil
}
