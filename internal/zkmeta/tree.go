package zkmeta

import (
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
)

// Tree is the znodes of one chroot, sorted by path so that every parent
// comes before its children (the order a restore creates them in). It is
// written to znodes.json in the metadata archive: add fields, never rename.
type Tree struct {
	Chroot  string    `json:"chroot"`
	TakenAt time.Time `json:"taken_at"`
	Znodes  []Znode   `json:"znodes"`
}

// Znode is one znode. Data keeps the difference between a znode created
// with no data (nil, JSON null) and one with empty data ([]byte{}, JSON
// ""), because Kafka reads both and a restore must write back exactly what
// was there.
type Znode struct {
	Path      string `json:"path"`
	Data      []byte `json:"data"`
	ACL       []ACL  `json:"acl"`
	Ephemeral bool   `json:"ephemeral,omitempty"`
	// ACLRedacted is set when ZooKeeper (3.7 and later) hid the password
	// hash of a digest ACL entry, answering "user:x", because the session
	// lacks ADMIN permission on the znode. Writing such an ACL back would
	// lock the znode for good, so a restore must refuse it; authenticate
	// with AddAuth (a digest user with ADMIN, or the super user) before the
	// snapshot to read the real hashes.
	ACLRedacted bool `json:"acl_redacted,omitempty"`
	Stat        Stat `json:"stat"`
}

// ACL is one ZooKeeper ACL entry: permissions bits (zk.PermRead…), scheme
// (world, sasl, digest, ip) and id.
type ACL struct {
	Perms  int32  `json:"perms"`
	Scheme string `json:"scheme"`
	ID     string `json:"id"`
}

// Stat is the znode's stat as read; it is informational (a restore creates
// new znodes with new zxids and versions).
type Stat struct {
	Czxid          int64 `json:"czxid"`
	Mzxid          int64 `json:"mzxid"`
	Pzxid          int64 `json:"pzxid"`
	Ctime          int64 `json:"ctime"` // ms since the epoch
	Mtime          int64 `json:"mtime"` // ms since the epoch
	Version        int32 `json:"version"`
	Cversion       int32 `json:"cversion"`
	Aversion       int32 `json:"aversion"`
	EphemeralOwner int64 `json:"ephemeral_owner,omitempty"`
	DataLength     int32 `json:"data_length"`
	NumChildren    int32 `json:"num_children"`
}

// ZKACL converts the ACL for go-zookeeper's Create and SetACL.
func (z Znode) ZKACL() []zk.ACL {
	if z.ACL == nil {
		return nil
	}
	out := make([]zk.ACL, len(z.ACL))
	for i, a := range z.ACL {
		out[i] = zk.ACL{Perms: a.Perms, Scheme: a.Scheme, ID: a.ID}
	}
	return out
}

// Redacted lists the znodes whose ACL came back redacted (see
// Znode.ACLRedacted), so a backup can warn that they cannot be restored.
func (t *Tree) Redacted() []string {
	var out []string
	for _, z := range t.Znodes {
		if z.ACLRedacted {
			out = append(out, z.Path)
		}
	}
	return out
}

// redactedDigest tells a digest id whose hash ZooKeeper replaced by "x";
// a real hash is the 28-character base64 of a SHA-1.
func redactedDigest(a ACL) bool {
	return a.Scheme == "digest" && strings.HasSuffix(a.ID, ":x")
}

// Get returns the znode at path, or nil.
func (t *Tree) Get(path string) *Znode {
	if t == nil {
		return nil
	}
	for i := range t.Znodes {
		if t.Znodes[i].Path == path {
			return &t.Znodes[i]
		}
	}
	return nil
}

func fromZKACL(acl []zk.ACL) []ACL {
	if acl == nil {
		return nil
	}
	out := make([]ACL, len(acl))
	for i, a := range acl {
		out[i] = ACL{Perms: a.Perms, Scheme: a.Scheme, ID: a.ID}
	}
	return out
}

func fromZKStat(s *zk.Stat) Stat {
	if s == nil {
		return Stat{}
	}
	return Stat{
		Czxid: s.Czxid, Mzxid: s.Mzxid, Pzxid: s.Pzxid, Ctime: s.Ctime, Mtime: s.Mtime,
		Version: s.Version, Cversion: s.Cversion, Aversion: s.Aversion,
		EphemeralOwner: s.EphemeralOwner, DataLength: s.DataLength, NumChildren: s.NumChildren,
	}
}
