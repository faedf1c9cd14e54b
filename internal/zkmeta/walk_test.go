package zkmeta

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// fakeZK is an in-memory tree behind the reader interface that records
// how many calls are in flight at once.
type fakeZK struct {
	mu             sync.Mutex
	nodes          map[string]*fakeNode
	inFlight, peak int
}

type fakeNode struct {
	data  []byte
	owner int64
}

func newFake(paths map[string][]byte) *fakeZK {
	f := &fakeZK{nodes: map[string]*fakeNode{}}
	for p, d := range paths {
		f.nodes[p] = &fakeNode{data: d}
	}
	return f
}

func (f *fakeZK) enter() func() {
	f.mu.Lock()
	f.inFlight++
	f.peak = max(f.peak, f.inFlight)
	f.mu.Unlock()
	time.Sleep(time.Millisecond)
	return func() { f.mu.Lock(); f.inFlight--; f.mu.Unlock() }
}

func (f *fakeZK) Get(p string) ([]byte, *zk.Stat, error) {
	defer f.enter()()
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nodes[p]
	if !ok {
		return nil, nil, zk.ErrNoNode
	}
	return n.data, &zk.Stat{EphemeralOwner: n.owner, DataLength: int32(len(n.data))}, nil
}

func (f *fakeZK) GetACL(p string) ([]zk.ACL, *zk.Stat, error) {
	defer f.enter()()
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.nodes[p]; !ok {
		return nil, nil, zk.ErrNoNode
	}
	return zk.WorldACL(zk.PermAll), &zk.Stat{}, nil
}

func (f *fakeZK) Children(p string) ([]string, *zk.Stat, error) {
	defer f.enter()()
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.nodes[p]; !ok {
		return nil, nil, zk.ErrNoNode
	}
	var kids []string
	for q := range f.nodes {
		if q != p && path.Dir(q) == p {
			kids = append(kids, path.Base(q))
		}
	}
	return kids, &zk.Stat{}, nil
}

func (f *fakeZK) delete(prefix string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for q := range f.nodes {
		if q == prefix || strings.HasPrefix(q, prefix+"/") {
			delete(f.nodes, q)
		}
	}
}

func paths(t *Tree) []string {
	var ps []string
	for _, z := range t.Znodes {
		ps = append(ps, z.Path)
	}
	return ps
}

func TestSnapshotFakeTree(t *testing.T) {
	f := newFake(map[string][]byte{
		"/":          nil,
		"/zookeeper": nil, "/zookeeper/quota": nil,
		"/kafka": nil, "/kafka/brokers": {}, "/kafka/brokers/ids": nil,
		"/kafka/brokers/ids/1":  []byte(`{"host":"a"}`),
		"/kafka/brokers/topics": nil, "/kafka/brokers/topics/t": {0, 1, 2},
		"/kafka-other": nil,
	})
	f.nodes["/kafka/brokers/ids/1"].owner = 42

	tr, err := snapshot(context.Background(), f, "/kafka/")
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	want := []string{"/kafka", "/kafka/brokers", "/kafka/brokers/ids", "/kafka/brokers/ids/1", "/kafka/brokers/topics", "/kafka/brokers/topics/t"}
	if got := paths(tr); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("paths = %v, want %v", got, want)
	}
	if tr.Chroot != "/kafka" {
		t.Errorf("chroot = %q", tr.Chroot)
	}
	if z := tr.Get("/kafka"); z.Data != nil {
		t.Errorf("nil data became %#v", z.Data)
	}
	if z := tr.Get("/kafka/brokers"); z.Data == nil || len(z.Data) != 0 {
		t.Errorf("empty data became %#v", z.Data)
	}
	if z := tr.Get("/kafka/brokers/topics/t"); !bytes.Equal(z.Data, []byte{0, 1, 2}) || z.Ephemeral {
		t.Errorf("topic znode = %+v", z)
	}
	if z := tr.Get("/kafka/brokers/ids/1"); !z.Ephemeral || z.Stat.EphemeralOwner != 42 {
		t.Errorf("broker znode = %+v", z)
	}
	if z := tr.Get("/kafka"); len(z.ACL) != 1 || z.ACL[0] != (ACL{Perms: zk.PermAll, Scheme: "world", ID: "anyone"}) {
		t.Errorf("ACL = %+v", z.ACL)
	}

	// From the root, ZooKeeper's own subtree is left out.
	all, err := snapshot(context.Background(), f, "")
	if err != nil {
		t.Fatalf("snapshot of /: %v", err)
	}
	if len(all.Znodes) != 8 || all.Znodes[0].Path != "/" || all.Get("/zookeeper") != nil {
		t.Errorf("snapshot of / = %v", paths(all))
	}
	if n, err := count(context.Background(), f, "/"); err != nil || n != 8 {
		t.Errorf("count of / = %d, %v", n, err)
	}
	if n, err := count(context.Background(), f, "/kafka"); err != nil || n != 6 {
		t.Errorf("count of /kafka = %d, %v", n, err)
	}
}

func TestSnapshotSkipsVanishedZnodes(t *testing.T) {
	tree := map[string][]byte{"/c": nil}
	for i := range 50 {
		tree[fmt.Sprintf("/c/n%02d", i)] = []byte{byte(i)}
		tree[fmt.Sprintf("/c/n%02d/leaf", i)] = nil
	}
	// n07 (with its leaf) vanishes right after /c is listed, and n13's
	// leaf right after n13 is listed: listed, then gone before being
	// read, the race a live cluster has when a topic is deleted during
	// a backup.
	r := &deleteAfterList{fakeZK: newFake(tree), victims: map[string]string{"/c": "/c/n07", "/c/n13": "/c/n13/leaf"}}
	tr, err := snapshot(context.Background(), r, "/c")
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	ps := paths(tr)
	if !sort.StringsAreSorted(ps) {
		t.Errorf("not sorted: %v", ps)
	}
	if len(ps) != 1+2*50-3 {
		t.Errorf("%d znodes, want %d", len(ps), 1+2*50-3)
	}
	for _, gone := range []string{"/c/n07", "/c/n07/leaf", "/c/n13/leaf"} {
		if tr.Get(gone) != nil {
			t.Errorf("%s was deleted before it was read but is in the snapshot", gone)
		}
	}
	if tr.Get("/c/n13") == nil || tr.Get("/c/n49/leaf") == nil {
		t.Errorf("surviving znodes missing: %v", ps)
	}
	if r.peak > walkers {
		t.Errorf("peak concurrency %d > %d", r.peak, walkers)
	}
	if r.peak < 2 {
		t.Errorf("walk did not run concurrently (peak %d)", r.peak)
	}
}

// deleteAfterList deletes a victim subtree right after its parent is
// listed.
type deleteAfterList struct {
	*fakeZK
	victims map[string]string // parent → victim
}

func (d *deleteAfterList) Children(p string) ([]string, *zk.Stat, error) {
	kids, st, err := d.fakeZK.Children(p)
	if v, ok := d.victims[p]; ok {
		d.delete(v)
	}
	return kids, st, err
}

func TestSnapshotErrors(t *testing.T) {
	f := newFake(map[string][]byte{"/": nil, "/a": nil})
	if _, err := snapshot(context.Background(), f, "/missing"); err == nil || !strings.Contains(err.Error(), "znode /missing does not exist") {
		t.Errorf("missing chroot: %v", err)
	}
	if _, err := count(context.Background(), f, "/missing"); err == nil || !strings.Contains(err.Error(), "/missing") {
		t.Errorf("count of missing chroot: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := snapshot(ctx, f, "/"); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("cancelled walk: %v", err)
	}
	broken := &failing{fakeZK: f}
	if _, err := snapshot(context.Background(), broken, "/"); err == nil || !strings.Contains(err.Error(), "read ACL of znode /a: zk: connection closed") {
		t.Errorf("failing GetACL: %v", err)
	}
	if _, err := Snapshot(context.Background(), nil, "/"); err == nil {
		t.Errorf("nil conn accepted")
	}
}

type failing struct{ *fakeZK }

func (f *failing) GetACL(p string) ([]zk.ACL, *zk.Stat, error) {
	if p == "/a" {
		return nil, nil, zk.ErrConnectionClosed
	}
	return f.fakeZK.GetACL(p)
}

func TestSplitConnect(t *testing.T) {
	for in, want := range map[string]string{
		"h1:2181,h2:2181/kafka": "[h1:2181 h2:2181] /kafka",
		"h1:2181":               "[h1:2181] /",
		"h1:2181/kafka/":        "[h1:2181] /kafka",
		" h1:2181 , h2 /":       "[h1:2181 h2] /",
	} {
		s, c := SplitConnect(in)
		if got := fmt.Sprint(s, " ", c); got != want {
			t.Errorf("SplitConnect(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestConnectBounded connects to a port nobody listens on: Connect must
// give up within its timeout, name the server, and print nothing through
// the standard logger.
func TestConnectBounded(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	var logged bytes.Buffer
	log.SetOutput(&logged)
	defer log.SetOutput(os.Stderr)

	start := time.Now()
	c, err := Connect(context.Background(), []string{addr}, 1500*time.Millisecond)
	took := time.Since(start)
	if err == nil {
		c.Close()
		t.Fatalf("connected to %s, where nothing listens", addr)
	}
	if took > 4*time.Second {
		t.Errorf("Connect took %s with a 1.5s timeout", took)
	}
	for _, want := range []string{"connect to ZooKeeper " + addr, "no session within 1.5s", "connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	time.Sleep(200 * time.Millisecond) // let the closed loop finish
	if logged.Len() > 0 {
		t.Errorf("go-zookeeper logged through the standard logger: %q", logged.String())
	}

	// A cancelled context ends the wait too.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := Connect(ctx, []string{addr}, time.Minute); err == nil || time.Since(start) > 3*time.Second {
		t.Errorf("Connect with a short context: %v after %s", err, time.Since(start))
	}
	if _, err := Connect(context.Background(), nil, time.Second); err == nil {
		t.Errorf("no servers accepted")
	}
}
