package zkmeta

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/go-zookeeper/zk"
)

var open = []ACL{{Perms: zk.PermAll, Scheme: "world", ID: "anyone"}}

func tree(chroot string, zs ...Znode) *Tree {
	for i := range zs {
		if zs[i].ACL == nil {
			zs[i].ACL = open
		}
	}
	return &Tree{Chroot: chroot, Znodes: zs}
}

func opsOf(p *RestorePlan) []string {
	var out []string
	for _, o := range p.Ops {
		out = append(out, string(o.Kind)+" "+o.Path)
	}
	return out
}

// TestPlanRestore checks the plan's order and what it leaves alone: the
// brokers' ephemeral znodes (backed up or live) are never written or
// deleted, deletes go deepest first, creates parents first, ACLs last.
func TestPlanRestore(t *testing.T) {
	t.Parallel()
	backup := tree("/kafka",
		Znode{Path: "/kafka", Data: nil},
		Znode{Path: "/kafka/brokers"},
		Znode{Path: "/kafka/brokers/ids"},
		Znode{Path: "/kafka/brokers/ids/1", Data: []byte("b1"), Ephemeral: true},
		Znode{Path: "/kafka/brokers/topics"},
		Znode{Path: "/kafka/brokers/topics/orders", Data: []byte(`{"p":1}`)},
		Znode{Path: "/kafka/cluster"},
		Znode{Path: "/kafka/cluster/id", Data: []byte(`{"id":"old"}`)},
		Znode{Path: "/kafka/config", Data: []byte{}},
		Znode{Path: "/kafka/controller", Data: []byte("c")}, // flagged persistent by mistake: still skipped
		Znode{Path: "/kafka/locked", ACL: []ACL{{Perms: zk.PermRead, Scheme: "world", ID: "anyone"}}},
	)
	live := tree("/restored",
		Znode{Path: "/restored"},
		Znode{Path: "/restored/brokers"},
		Znode{Path: "/restored/brokers/ids"},
		Znode{Path: "/restored/brokers/ids/2", Ephemeral: true},
		Znode{Path: "/restored/brokers/topics"},
		Znode{Path: "/restored/brokers/topics/new", Data: []byte("x")},
		Znode{Path: "/restored/brokers/topics/new/partitions"},
		Znode{Path: "/restored/brokers/topics/new/partitions/0"},
		Znode{Path: "/restored/brokers/topics/new/partitions/0/state", Ephemeral: true},
		Znode{Path: "/restored/cluster"},
		Znode{Path: "/restored/cluster/id", Data: []byte(`{"id":"new"}`)},
		Znode{Path: "/restored/config", Data: nil}, // nil vs empty differ
		Znode{Path: "/restored/controller", Data: []byte("live"), Ephemeral: true},
		Znode{Path: "/restored/locked"},
	)
	p, err := PlanRestore(backup, live, "/restored/")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"delete /restored/brokers/topics/new/partitions/0/state",
		"delete /restored/brokers/topics/new/partitions/0",
		"delete /restored/brokers/topics/new/partitions",
		"delete /restored/brokers/topics/new",
		"create /restored/brokers/topics/orders",
		"set-data /restored/config",
		"set-data /restored/cluster/id",
		"set-acl /restored/locked",
	}
	if got := opsOf(p); !reflect.DeepEqual(got, want) {
		t.Errorf("ops:\n got %q\nwant %q", got, want)
	}
	if !reflect.DeepEqual(p.Skipped, []string{"/brokers/ids/1", "/controller"}) {
		t.Errorf("skipped = %q", p.Skipped)
	}
	if p.Unchanged != 5 {
		t.Errorf("unchanged = %d, want 5 (the chroot, brokers, ids, topics, cluster)", p.Unchanged)
	}
	if s := p.Ops[5]; s.Data == nil || len(s.Data) != 0 {
		t.Errorf("set-data of /config must write empty, not nil: %+v", s)
	}
}

func TestPlanRestoreIntoMissingChroot(t *testing.T) {
	t.Parallel()
	backup := tree("/", Znode{Path: "/"}, Znode{Path: "/a"}, Znode{Path: "/a/b"}, Znode{Path: "/c"})
	p, err := PlanRestore(backup, nil, "/x")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"create /x", "create /x/a", "create /x/c", "create /x/a/b"}
	if got := opsOf(p); !reflect.DeepEqual(got, want) {
		t.Errorf("ops = %q, want %q", got, want)
	}
}

func TestPlanRestoreRefusesRedacted(t *testing.T) {
	t.Parallel()
	backup := tree("/k", Znode{Path: "/k"}, Znode{Path: "/k/secret", ACLRedacted: true, ACL: []ACL{{Perms: zk.PermAll, Scheme: "digest", ID: "u:x"}}})
	_, err := PlanRestore(backup, nil, "/k")
	var re *RedactedError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "/k/secret") {
		t.Fatalf("got %v, want a RedactedError naming /k/secret", err)
	}
}

type fakeWriter struct {
	multis [][]interface{}
	acls   []string
}

func (f *fakeWriter) Multi(ops ...interface{}) ([]zk.MultiResponse, error) {
	f.multis = append(f.multis, ops)
	return make([]zk.MultiResponse, len(ops)), nil
}

func (f *fakeWriter) SetACL(path string, acl []zk.ACL, version int32) (*zk.Stat, error) {
	f.acls = append(f.acls, path)
	return &zk.Stat{}, nil
}

// TestApplyBatches checks that no multi exceeds the batch size or the
// byte bound.
func TestApplyBatches(t *testing.T) {
	t.Parallel()
	p := &RestorePlan{}
	for i := 0; i < 25; i++ {
		p.Ops = append(p.Ops, Op{Kind: OpCreate, Path: "/n" + strings.Repeat("x", i), Data: make([]byte, 100)})
	}
	p.Ops = append(p.Ops, Op{Kind: OpSetACL, Path: "/n", ACL: open})
	f := &fakeWriter{}
	res, err := apply(context.Background(), f, p, ApplyOptions{BatchSize: 10, BatchBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.multis) != 3 || len(f.multis[0]) != 10 || len(f.multis[2]) != 5 || res.Created != 25 || res.ACLSet != 1 || res.Batches != 3 {
		t.Errorf("batches %d, res %+v", len(f.multis), res)
	}
	f = &fakeWriter{}
	if _, err := apply(context.Background(), f, p, ApplyOptions{BatchSize: 100, BatchBytes: 500}); err != nil {
		t.Fatal(err)
	}
	for _, m := range f.multis {
		if len(m) > 3 {
			t.Errorf("a batch of %d ops exceeds the 500-byte bound", len(m))
		}
	}
}

// TestPlanRestoreLeavesNotifications guards the bug where restored change
// notifications (config_change_NNNNNNNNNN) left the parent's sequence
// counter behind: brokers then ignored every new config or ACL change.
func TestPlanRestoreLeavesNotifications(t *testing.T) {
	t.Parallel()
	backup := tree("/k", Znode{Path: "/k"}, Znode{Path: "/k/config"}, Znode{Path: "/k/config/changes"},
		Znode{Path: "/k/config/changes/config_change_0000000041"}, Znode{Path: "/k/kafka-acl-changes"},
		Znode{Path: "/k/kafka-acl-changes/acl_changes_0000000007"})
	live := tree("/k", Znode{Path: "/k"}, Znode{Path: "/k/config"}, Znode{Path: "/k/config/changes"},
		Znode{Path: "/k/config/changes/config_change_0000000090"})
	p, err := PlanRestore(backup, live, "/k")
	if err != nil {
		t.Fatal(err)
	}
	if got := opsOf(p); !reflect.DeepEqual(got, []string{"create /k/kafka-acl-changes"}) {
		t.Errorf("ops = %q, want only the queue's parent", got)
	}
	if p.Notifications != 2 {
		t.Errorf("notifications = %d, want 2", p.Notifications)
	}
}

// TestPlanRestoreRefusesPathsOutsideChroot guards the chroot escape: rel()
// trimmed the chroot with no "/" boundary, so a backup of chroot /kafka
// holding /kafkaX/evil planned "create /restoredX/evil", outside the
// target chroot. Every path the backup names must be a clean ZooKeeper
// path inside its chroot, and the plan names the first that is not.
func TestPlanRestoreRefusesPathsOutsideChroot(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, chroot, path, want string
	}{
		{"prefix without a / boundary", "/kafka", "/kafkaX/evil", `"/kafkaX/evil" is outside the chroot /kafka`},
		{"sibling of the chroot", "/kafka", "/other", `"/other" is outside the chroot /kafka`},
		{"dot-dot segment", "/kafka", "/kafka/../etc", `"/kafka/../etc" has a ".." segment`},
		{"dot segment", "/kafka", "/kafka/./a", `"/kafka/./a" has a "." segment`},
		{"empty segment", "/kafka", "/kafka//a", `"/kafka//a" has an empty segment`},
		{"trailing slash", "/kafka", "/kafka/a/", `"/kafka/a/" has an empty segment`},
		{"relative", "/kafka", "kafka/a", `"kafka/a" is not absolute`},
		{"empty", "/kafka", "", `"" is not absolute`},
		{"NUL", "/kafka", "/kafka/a\x00b", `has a control character`},
		{"chroot with dot-dot", "/kafka/..", "/kafka/../x", `chroot "/kafka/.." has a ".." segment`},
		{"ZooKeeper's own subtree", "/", "/zookeeper/quota", `"/zookeeper/quota" is in ZooKeeper's own /zookeeper`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			backup := &Tree{Chroot: c.chroot, Znodes: []Znode{{Path: c.path, ACL: open}}}
			p, err := PlanRestore(backup, nil, "/restored")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				var ops []string
				if p != nil {
					ops = opsOf(p)
				}
				t.Fatalf("got ops %q, err %v; want an error containing %q", ops, err, c.want)
			}
		})
	}
	// Restored at the root, a backed-up /kafka/zookeeper would land in
	// ZooKeeper's own subtree.
	backup := tree("/kafka", Znode{Path: "/kafka"}, Znode{Path: "/kafka/zookeeper"})
	if p, err := PlanRestore(backup, nil, "/"); err == nil || !strings.Contains(err.Error(), "/zookeeper") {
		t.Fatalf("restore to / planned %v, err %v; want a refusal naming /zookeeper", p, err)
	}
	// A bad target chroot is refused too.
	if _, err := PlanRestore(tree("/k", Znode{Path: "/k"}), nil, "/a/../b"); err == nil || !strings.Contains(err.Error(), `".." segment`) {
		t.Fatalf("target /a/../b: err %v", err)
	}
	// Twice the same path: which one to restore?
	dup := tree("/k", Znode{Path: "/k"}, Znode{Path: "/k/a", Data: []byte("1")}, Znode{Path: "/k/a", Data: []byte("2")})
	if _, err := PlanRestore(dup, nil, "/k"); err == nil || !strings.Contains(err.Error(), `"/k/a" appears twice`) {
		t.Fatalf("duplicate path: err %v", err)
	}
}

func TestValidPath(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"/", "/a", "/kafka/brokers/ids/1", "/a-b_c.d/ü", "/config/changes/config_change_0000000041", "/a/..b", "/a/b.."} {
		if err := ValidPath(p); err != nil {
			t.Errorf("ValidPath(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"", "a", "//", "/a/", "/a//b", "/.", "/..", "/a/../b", "/a\x01", "/a\x7f", "/\xff", "/a\u00850"} {
		if err := ValidPath(p); err == nil {
			t.Errorf("ValidPath(%q) = nil, want an error", p)
		}
	}
}
