package zkmeta

import (
	"time"

	"github.com/go-zookeeper/zk"
)

// Tree is the znodes of one chroot, sorted by path so that every parent
// comes before its children (the order a restore creates them in). It is
// written to znodes.json in the metadata archive: add fields, never rename.
type Tree struct {
	Chroot  string    `json:"chroot"`
	TakenAt time.Time `json:"takenAt"`
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
	Stat      Stat   `json:"stat"`
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
	EphemeralOwner int64 `json:"ephemeralOwner,omitempty"`
	DataLength     int32 `json:"dataLength"`
	NumChildren    int32 `json:"numChildren"`
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
