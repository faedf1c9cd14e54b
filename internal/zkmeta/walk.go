package zkmeta

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// walkers bounds the requests in flight: enough to hide round trips on a
// tree of 100 000 znodes, few enough not to burden a production ensemble.
const walkers = 8

// reader is the part of *zk.Conn the walk uses, so tests can feed it a
// tree that changes under it.
type reader interface {
	Get(path string) ([]byte, *zk.Stat, error)
	GetACL(path string) ([]zk.ACL, *zk.Stat, error)
	Children(path string) ([]string, *zk.Stat, error)
}

// Snapshot reads every znode under chroot, the chroot included, with its
// data, ACL, stat and ephemeral flag. A znode deleted during the walk
// (ZooKeeper answers NoNode) is skipped with its subtree: it no longer
// exists, which is what the snapshot should say. A missing chroot is an
// error. With chroot "/", ZooKeeper's own /zookeeper subtree (quotas,
// ensemble config) is left out: it is not Kafka's and cannot be restored.
func Snapshot(ctx context.Context, c *zk.Conn, chroot string) (*Tree, error) {
	if c == nil {
		return nil, errors.New("snapshot of ZooKeeper: no connection")
	}
	return snapshot(ctx, c, chroot)
}

func snapshot(ctx context.Context, r reader, chroot string) (*Tree, error) {
	chroot = normChroot(chroot)
	t := &Tree{Chroot: chroot, TakenAt: time.Now().UTC().Round(0)}
	var mu sync.Mutex
	err := walk(ctx, chroot, func(path string) ([]string, bool, error) {
		data, stat, err := r.Get(path)
		if err != nil {
			return nil, false, fmt.Errorf("read znode %s: %w", path, err)
		}
		acl, _, err := r.GetACL(path)
		if err != nil {
			return nil, false, fmt.Errorf("read ACL of znode %s: %w", path, err)
		}
		kids, _, err := r.Children(path)
		if err != nil {
			return nil, false, fmt.Errorf("list children of znode %s: %w", path, err)
		}
		z := Znode{Path: path, Data: data, ACL: fromZKACL(acl), Stat: fromZKStat(stat)}
		z.Ephemeral = z.Stat.EphemeralOwner != 0
		for _, a := range z.ACL {
			z.ACLRedacted = z.ACLRedacted || redactedDigest(a)
		}
		mu.Lock()
		t.Znodes = append(t.Znodes, z)
		mu.Unlock()
		return kids, true, nil
	})
	if err != nil {
		return nil, err
	}
	// Lexical order puts a parent before its descendants, since its path
	// is their prefix.
	sort.Slice(t.Znodes, func(i, j int) bool { return t.Znodes[i].Path < t.Znodes[j].Path })
	return t, nil
}

// Count returns the number of znodes under chroot, the chroot included.
// The preflight compares it with the open-file limits before a backup.
func Count(ctx context.Context, c *zk.Conn, chroot string) (int, error) {
	if c == nil {
		return 0, errors.New("count znodes: no connection")
	}
	return count(ctx, c, chroot)
}

func count(ctx context.Context, r reader, chroot string) (int, error) {
	var mu sync.Mutex
	n := 0
	err := walk(ctx, normChroot(chroot), func(path string) ([]string, bool, error) {
		kids, _, err := r.Children(path)
		if err != nil {
			return nil, false, fmt.Errorf("list children of znode %s: %w", path, err)
		}
		mu.Lock()
		n++
		mu.Unlock()
		return kids, true, nil
	})
	return n, err
}

// visitFunc reads one znode and returns its child names.
type visitFunc func(path string) (children []string, exists bool, err error)

// walk visits root and every descendant with a fixed pool of workers and a
// shared queue, so memory grows with the tree and not with goroutines. A
// NoNode error skips that znode, except for root.
func walk(ctx context.Context, root string, visit visitFunc) error {
	var (
		mu      sync.Mutex
		cond    = sync.NewCond(&mu)
		queue   = []string{root}
		active  int
		walkErr error
	)
	fail := func(err error) {
		if walkErr == nil {
			walkErr = err
		}
		cond.Broadcast()
	}
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		fail(fmt.Errorf("walk znodes under %s: %w", root, ctx.Err()))
		mu.Unlock()
	})
	defer stop()

	var wg sync.WaitGroup
	for range walkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				for len(queue) == 0 && active > 0 && walkErr == nil {
					cond.Wait()
				}
				if walkErr != nil || len(queue) == 0 {
					cond.Broadcast()
					mu.Unlock()
					return
				}
				path := queue[len(queue)-1]
				queue = queue[:len(queue)-1]
				active++
				mu.Unlock()

				kids, _, err := visit(path)
				noNode := errors.Is(err, zk.ErrNoNode)

				mu.Lock()
				active--
				switch {
				case noNode && path == root:
					fail(fmt.Errorf("znode %s does not exist", root))
				case noNode:
					// Deleted during the walk: nothing to record.
				case err != nil:
					fail(err)
				default:
					for _, k := range kids {
						child := joinPath(path, k)
						if child == "/zookeeper" {
							continue
						}
						queue = append(queue, child)
					}
				}
				cond.Broadcast()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return walkErr
}

func joinPath(parent, child string) string {
	if parent == "/" {
		return "/" + child
	}
	return parent + "/" + child
}
