package zkmeta

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/kbr-project/kbr/internal/kmeta"
	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// These tests use the real ZooKeeper of the local stack (deploy/stack.sh
// up) and the ZooKeeper-mode Kafka 3.9 cluster that lives in its chroot.

func connectReal(t *testing.T) (*zk.Conn, testenv.Env) {
	t.Helper()
	env := testenv.Load(t)
	servers, _ := SplitConnect(env.ZKConnect)
	c, err := Connect(context.Background(), servers, 10*time.Second)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(c.Close)
	return c, env
}

func randSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// TestSnapshotRealOwnTree snapshots a subtree this test writes, with every
// kind of data and ACL the format must keep.
func TestSnapshotRealOwnTree(t *testing.T) {
	c, _ := connectReal(t)
	root := "/kbr-zkmeta-test-" + randSuffix()
	world := zk.WorldACL(zk.PermAll)
	pw := "pw-" + randSuffix()
	owner := zk.DigestACL(zk.PermAll, "kbr", pw)[0]
	digest := []zk.ACL{{Perms: zk.PermRead, Scheme: "world", ID: "anyone"}, owner}
	bin := []byte{0, 1, 0xff, 0xfe, '\n'}
	create := func(p string, data []byte, flags int32, acl []zk.ACL) {
		t.Helper()
		if _, err := c.Create(p, data, flags, acl); err != nil {
			t.Fatalf("create %s: %v", p, err)
		}
	}
	create(root, nil, 0, world)
	t.Cleanup(func() { deleteTree(t, c, root) })
	create(root+"/nil", nil, 0, world)
	create(root+"/empty", []byte{}, 0, world)
	create(root+"/bin", bin, 0, world)
	create(root+"/bin/locked", []byte("x"), 0, digest)
	create(root+"/eph", []byte("me"), zk.FlagEphemeral, world)

	tr, err := Snapshot(context.Background(), c, root)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	var ps []string
	for _, z := range tr.Znodes {
		ps = append(ps, z.Path)
	}
	want := []string{root, root + "/bin", root + "/bin/locked", root + "/empty", root + "/eph", root + "/nil"}
	if strings.Join(ps, " ") != strings.Join(want, " ") {
		t.Fatalf("paths = %v, want %v", ps, want)
	}
	if z := tr.Get(root + "/nil"); z.Data != nil || z.Ephemeral {
		t.Errorf("nil znode = %+v", z)
	}
	if z := tr.Get(root + "/empty"); z.Data == nil || len(z.Data) != 0 {
		t.Errorf("empty znode data = %#v", z.Data)
	}
	if z := tr.Get(root + "/bin"); !bytes.Equal(z.Data, bin) || z.Stat.NumChildren != 1 || z.Stat.DataLength != int32(len(bin)) {
		t.Errorf("bin znode = %+v", z)
	}
	// Without ADMIN on the znode, ZooKeeper 3.8 hides the digest hash:
	// the snapshot must say so rather than keep an ACL that would lock
	// the znode on restore.
	if z := tr.Get(root + "/bin/locked"); len(z.ACL) != 2 || z.ACL[1] != (ACL{Perms: zk.PermAll, Scheme: "digest", ID: "kbr:x"}) || !z.ACLRedacted {
		t.Errorf("locked znode as anyone = %+v", z)
	}
	if r := tr.Redacted(); len(r) != 1 || r[0] != root+"/bin/locked" {
		t.Errorf("Redacted = %v", r)
	}
	// Authenticated as the digest user, the real hash is read.
	c2, _ := connectReal(t)
	if err := c2.AddAuth("digest", []byte("kbr:"+pw)); err != nil {
		t.Fatalf("AddAuth: %v", err)
	}
	tr2, err := Snapshot(context.Background(), c2, root+"/bin")
	if err != nil {
		t.Fatalf("Snapshot as kbr: %v", err)
	}
	if z := tr2.Get(root + "/bin/locked"); z == nil || z.ACL[1] != (ACL{Perms: owner.Perms, Scheme: owner.Scheme, ID: owner.ID}) || z.ACLRedacted {
		t.Errorf("locked znode as kbr = %+v, want id %s", z, owner.ID)
	}
	if z := tr.Get(root + "/eph"); !z.Ephemeral || z.Stat.EphemeralOwner != c.SessionID() {
		t.Errorf("ephemeral znode = %+v (session %d)", z, c.SessionID())
	}
	if z := tr.Get(root); z.Stat.Ctime == 0 || z.Stat.Czxid == 0 || z.Stat.NumChildren != 4 {
		t.Errorf("root stat = %+v", z.Stat)
	}
	if n, err := Count(context.Background(), c, root); err != nil || n != 6 {
		t.Errorf("Count = %d, %v", n, err)
	}
	if _, err := Snapshot(context.Background(), c, root+"/missing"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing chroot: %v", err)
	}
}

// TestSnapshotRealKafkaChroot snapshots the ZooKeeper-mode cluster's
// chroot after creating a topic through Kafka.
func TestSnapshotRealKafkaChroot(t *testing.T) {
	c, env := connectReal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.ZKModeBootstrap...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topic := "kbr-zkmeta-" + randSuffix()
	retention := "7200000"
	if r, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"retention.ms": &retention}, topic); err != nil || r.Err != nil {
		t.Fatalf("create topic %s: %v %v", topic, err, r.Err)
	}
	defer func() {
		if r, err := adm.DeleteTopic(context.Background(), topic); err != nil || r.Err != nil {
			t.Errorf("delete topic %s: %v %v", topic, err, r.Err)
		}
	}()
	// ZooKeeper-mode brokers learn of a new topic asynchronously: ask
	// until the broker that answers knows it.
	var snap *kmeta.Snapshot
	for deadline := time.Now().Add(20 * time.Second); ; {
		snap, err = kmeta.Take(ctx, cl, kmeta.Options{Topics: func(n string) bool { return n == topic }})
		if err != nil {
			t.Fatalf("kmeta.Take: %v", err)
		}
		if snap.Topic(topic) != nil && snap.Topic(topic).ID != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s never appeared in metadata", topic)
		}
		time.Sleep(200 * time.Millisecond)
	}

	chroot := env.ZKChroot
	tr, err := Snapshot(ctx, c, chroot)
	if err != nil {
		t.Fatalf("Snapshot(%s): %v", chroot, err)
	}
	if tr.Chroot != chroot || tr.Znodes[0].Path != chroot {
		t.Errorf("chroot %q, first znode %q", tr.Chroot, tr.Znodes[0].Path)
	}
	for _, id := range []string{"1", "2", "3"} {
		z := tr.Get(chroot + "/brokers/ids/" + id)
		if z == nil || !z.Ephemeral || !bytes.Contains(z.Data, []byte(`"port":`)) {
			t.Errorf("broker %s znode = %+v", id, z)
		}
	}
	if z := tr.Get(chroot + "/controller"); z == nil || !z.Ephemeral {
		t.Errorf("controller znode = %+v", z)
	}
	z := tr.Get(chroot + "/brokers/topics/" + topic)
	if z == nil || z.Ephemeral {
		t.Fatalf("topic znode = %+v", z)
	}
	var assign struct {
		Partitions map[string][]int32 `json:"partitions"`
		TopicID    string             `json:"topic_id"`
	}
	if err := json.Unmarshal(z.Data, &assign); err != nil {
		t.Fatalf("topic znode data %q: %v", z.Data, err)
	}
	if len(assign.Partitions) != 3 || len(assign.Partitions["0"]) != 3 {
		t.Errorf("assignment = %+v", assign.Partitions)
	}
	if assign.TopicID != snap.Topic(topic).ID {
		t.Errorf("znode topic_id %q, Admin API id %q", assign.TopicID, snap.Topic(topic).ID)
	}
	if z := tr.Get(chroot + "/config/topics/" + topic); z == nil || !bytes.Contains(z.Data, []byte(`"retention.ms":"7200000"`)) {
		t.Errorf("topic config znode = %+v", z)
	}
	for _, z := range tr.Znodes {
		if !strings.HasPrefix(z.Path, chroot) {
			t.Errorf("znode %s outside the chroot", z.Path)
		}
	}
	n, err := Count(ctx, c, chroot)
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	// Other tests may change the cluster between the two walks.
	if diff := n - len(tr.Znodes); diff < -20 || diff > 20 {
		t.Errorf("Count = %d, Snapshot has %d znodes", n, len(tr.Znodes))
	}
	t.Logf("%s: %d znodes", chroot, len(tr.Znodes))
}

// TestConnectRealWrongService points Connect at a Kafka port: something
// answers, but not ZooKeeper, and Connect must still give up in time.
func TestConnectRealWrongService(t *testing.T) {
	env := testenv.Load(t)
	start := time.Now()
	c, err := Connect(context.Background(), env.ZKModeBootstrap[:1], 2*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("a Kafka broker was taken for ZooKeeper")
	}
	if time.Since(start) > 5*time.Second || !strings.Contains(err.Error(), env.ZKModeBootstrap[0]) {
		t.Errorf("after %s: %v", time.Since(start), err)
	}
}

func deleteTree(t *testing.T, c *zk.Conn, p string) {
	kids, _, err := c.Children(p)
	if err == zk.ErrNoNode {
		return
	}
	for _, k := range kids {
		deleteTree(t, c, p+"/"+k)
	}
	if err := c.Delete(p, -1); err != nil && err != zk.ErrNoNode {
		t.Errorf("cleanup: delete %s: %v", p, err)
	}
}

// TestRestoreReal restores a backed-up tree into a scratch chroot of the
// real ZooKeeper that has drifted: znodes added, changed, deleted, an ACL
// changed, and an ephemeral znode that must survive. A second Restore finds
// nothing to do.
func TestRestoreReal(t *testing.T) {
	c, _ := connectReal(t)
	root := "/kbrtest-" + randSuffix()
	world := zk.WorldACL(zk.PermAll)
	readOnly := []zk.ACL{{Perms: zk.PermRead | zk.PermAdmin, Scheme: "world", ID: "anyone"}}
	mk := func(p string, data []byte, flags int32, acl []zk.ACL) {
		t.Helper()
		if _, err := c.Create(p, data, flags, acl); err != nil {
			t.Fatalf("create %s: %v", p, err)
		}
	}
	mk(root, nil, 0, world)
	t.Cleanup(func() { deleteTree(t, c, root) })
	src := root + "/src"
	mk(src, nil, 0, world)
	mk(src+"/brokers", nil, 0, world)
	mk(src+"/brokers/ids", nil, 0, world)
	mk(src+"/brokers/ids/1", []byte("me"), zk.FlagEphemeral, world)
	mk(src+"/brokers/topics", nil, 0, world)
	mk(src+"/brokers/topics/orders", []byte(`{"partitions":{"0":[1]}}`), 0, world)
	mk(src+"/config", []byte{}, 0, world)
	mk(src+"/ro", []byte("r"), 0, readOnly)
	backup, err := Snapshot(context.Background(), c, src)
	if err != nil {
		t.Fatal(err)
	}

	// The live chroot: a copy that drifted.
	dst := root + "/dst"
	mk(dst, nil, 0, world)
	mk(dst+"/brokers", nil, 0, world)
	mk(dst+"/brokers/ids", nil, 0, world)
	mk(dst+"/brokers/ids/7", []byte("live broker"), zk.FlagEphemeral, world)
	mk(dst+"/brokers/topics", nil, 0, world)
	mk(dst+"/brokers/topics/added", []byte("x"), 0, world)
	mk(dst+"/brokers/topics/added/partitions", nil, 0, world)
	mk(dst+"/config", []byte("changed"), 0, world)
	mk(dst+"/ro", []byte("r"), 0, world)

	plan, res, err := Restore(context.Background(), c, backup, dst, ApplyOptions{BatchSize: 2})
	if err != nil {
		t.Fatalf("Restore: %v (plan %q)", err, opsOf(plan))
	}
	if res.Deleted != 2 || res.Created != 1 || res.DataSet != 1 || res.ACLSet != 1 || res.Batches < 2 {
		t.Errorf("applied %+v, plan %q", res, opsOf(plan))
	}
	after, err := Snapshot(context.Background(), c, dst)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, z := range after.Znodes {
		got = append(got, strings.TrimPrefix(z.Path, dst))
	}
	want := []string{"", "/brokers", "/brokers/ids", "/brokers/ids/7", "/brokers/topics", "/brokers/topics/orders", "/config", "/ro"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("after restore: %q, want %q", got, want)
	}
	if z := after.Get(dst + "/config"); z.Data == nil || len(z.Data) != 0 {
		t.Errorf("/config = %q (nil %v), want empty", z.Data, z.Data == nil)
	}
	if z := after.Get(dst + "/ro"); !sameACL(z.ACL, fromZKACL(readOnly)) {
		t.Errorf("/ro ACL = %+v", z.ACL)
	}
	if z := after.Get(dst + "/brokers/topics/orders"); string(z.Data) != `{"partitions":{"0":[1]}}` {
		t.Errorf("orders = %q", z.Data)
	}

	// Sequential children re-created under their old names: the next
	// sequential child must still be numbered above them.
	mk(src+"/queue", nil, 0, world)
	mk(src+"/queue/item-0000000007", []byte("x"), 0, world)
	backup, err = Snapshot(context.Background(), c, src)
	if err != nil {
		t.Fatal(err)
	}
	_, res, err = Restore(context.Background(), c, backup, dst, ApplyOptions{})
	if err != nil || len(res.SequenceCountersFixed) != 1 || res.SequenceCountersFixed[0] != dst+"/queue" {
		t.Fatalf("Restore with a sequential child: %+v, %v", res, err)
	}
	next, err := c.Create(dst+"/queue/item-", nil, zk.FlagSequence, world)
	if err != nil || seqSuffix(next) <= 7 {
		t.Errorf("next sequential child %s (%v), want a number above 7", next, err)
	}
	if err := c.Delete(next, -1); err != nil {
		t.Fatal(err)
	}

	// Idempotent: nothing left to do.
	plan, _, err = Restore(context.Background(), c, backup, dst, ApplyOptions{})
	if err != nil || len(plan.Ops) != 0 {
		t.Errorf("second Restore: ops %q, %v", opsOf(plan), err)
	}

	// Into a chroot that does not exist yet, with a missing parent.
	fresh := root + "/new/kafka"
	if _, _, err := Restore(context.Background(), c, backup, fresh, ApplyOptions{}); err != nil {
		t.Fatalf("Restore into %s: %v", fresh, err)
	}
	if n, err := Count(context.Background(), c, fresh); err != nil || n != 9 {
		t.Errorf("fresh chroot holds %d znodes (%v), want 9 (no ephemeral)", n, err)
	}
}
