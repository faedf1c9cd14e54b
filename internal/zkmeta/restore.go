package zkmeta

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-zookeeper/zk"
)

// OpKind is what a restore does to one znode.
type OpKind string

// Restore operations, applied in this order: deletes (deepest first),
// creates (parents first), data, then ACLs (last, so a restrictive ACL
// restored on a parent cannot block the creation of its children).
const (
	OpDelete  OpKind = "delete"
	OpCreate  OpKind = "create"
	OpSetData OpKind = "set-data"
	OpSetACL  OpKind = "set-acl"
)

// Op is one step of a RestorePlan. Path is the live path (under the
// target chroot).
type Op struct {
	Kind OpKind `json:"kind"`
	Path string `json:"path"`
	Data []byte `json:"data,omitempty"`
	ACL  []ACL  `json:"acl,omitempty"`
}

// RestorePlan turns a live chroot into the backed-up one.
type RestorePlan struct {
	Chroot string `json:"chroot"`
	Ops    []Op   `json:"ops"`
	// Skipped lists backed-up znodes left to the brokers (ephemeral ones:
	// /brokers/ids/*, /controller and anything flagged ephemeral).
	Skipped []string `json:"skipped,omitempty"`
	// Unchanged counts znodes already as backed up.
	Unchanged int `json:"unchanged"`
	// Notifications counts backed-up change notifications not restored
	// (see Notification).
	Notifications int `json:"notifications,omitempty"`
}

// Count returns how many ops of a kind the plan holds.
func (p *RestorePlan) Count(k OpKind) int {
	n := 0
	for _, o := range p.Ops {
		if o.Kind == k {
			n++
		}
	}
	return n
}

// RedactedError refuses a restore of znodes whose ACLs were redacted when
// the backup was taken (see Znode.ACLRedacted).
type RedactedError struct{ Paths []string }

func (e *RedactedError) Error() string {
	return fmt.Sprintf("%d znodes have ACLs that ZooKeeper redacted at backup time (digest hashes shown as x), and restoring them would lock them for good: %s; take the backup again with a session that has ADMIN permission on them (a digest user or the super user)",
		len(e.Paths), strings.Join(e.Paths, ", "))
}

// LeftToBrokers tells the znodes a restore never writes or deletes, by
// their path relative to the chroot ("/brokers/ids/1"): brokers create
// them (ephemeral) when they start.
func LeftToBrokers(rel string) bool {
	return rel == "/controller" || strings.HasPrefix(rel, "/brokers/ids/")
}

// rel makes a path relative to its chroot ("/kafka/brokers" -> "/brokers",
// the chroot itself -> "/"). It is false for a path outside the chroot,
// which is cut only on a "/" boundary: /kafkaX/a is not in /kafka.
func rel(chroot, path string) (string, bool) {
	chroot = normChroot(chroot)
	if chroot == "/" {
		return path, strings.HasPrefix(path, "/")
	}
	if path == chroot {
		return "/", true
	}
	if !strings.HasPrefix(path, chroot+"/") {
		return "", false
	}
	return path[len(chroot):], true
}

func abs(chroot, r string) string {
	chroot = normChroot(chroot)
	if chroot == "/" {
		return r
	}
	if r == "/" {
		return chroot
	}
	return chroot + r
}

func depth(p string) int { return strings.Count(p, "/") }

// PlanRestore compares the backed-up tree with the live one (nil when the
// live chroot does not exist) and returns the operations that make the
// live chroot, target, hold the backed-up znodes: missing ones created,
// data and ACLs set where they differ, persistent znodes added since the
// backup deleted. Ephemeral znodes are neither written nor deleted: the
// brokers own them. A backup may be restored under another chroot; paths
// map relative to the chroots. Znodes whose ACLs were redacted at backup
// time make the whole plan fail, naming them.
func PlanRestore(backup, live *Tree, target string) (*RestorePlan, error) {
	if backup == nil {
		return nil, errors.New("plan znode restore: the backup holds no znodes (a KRaft cluster's backup?)")
	}
	// Every path comes from a file: a crafted one must not reach outside
	// the target chroot (or into ZooKeeper's own subtree).
	if err := backup.Validate(); err != nil {
		return nil, fmt.Errorf("plan znode restore: the backup's znodes: %w", err)
	}
	target = normChroot(target)
	if err := ValidPath(target); err != nil {
		return nil, fmt.Errorf("plan znode restore: target chroot %w", err)
	}
	plan := &RestorePlan{Chroot: target}
	if red := backup.Redacted(); len(red) > 0 {
		return nil, &RedactedError{Paths: red}
	}
	want := map[string]*Znode{} // by relative path
	for i := range backup.Znodes {
		z := &backup.Znodes[i]
		r, _ := rel(backup.Chroot, z.Path) // inside: Validate checked it
		if a := abs(target, r); zookeeperOwn(a) {
			return nil, fmt.Errorf("plan znode restore: the backup's znode %s would be restored as %s, in ZooKeeper's own /zookeeper subtree", z.Path, a)
		}
		if z.Ephemeral || LeftToBrokers(r) {
			plan.Skipped = append(plan.Skipped, r)
			continue
		}
		if Notification(r) {
			plan.Notifications++
			continue
		}
		want[r] = z
	}
	have := map[string]*Znode{}
	if live != nil {
		for i := range live.Znodes {
			z := &live.Znodes[i]
			r, ok := rel(live.Chroot, z.Path)
			if !ok {
				return nil, fmt.Errorf("plan znode restore: live znode %q is outside the chroot %s", z.Path, normChroot(live.Chroot))
			}
			have[r] = z
		}
	}

	// Deletes: persistent live znodes the backup does not have. An
	// ephemeral one goes too when an ancestor is deleted (it would block
	// the delete); otherwise the brokers own it.
	deleted := map[string]bool{}
	var dels []string
	rels := make([]string, 0, len(have))
	for r := range have {
		rels = append(rels, r)
	}
	sort.Strings(rels) // parents before children
	for _, r := range rels {
		z := have[r]
		if _, ok := want[r]; ok {
			continue
		}
		parentGone := deleted[parent(r)]
		if !parentGone && (z.Ephemeral || LeftToBrokers(r) || Notification(r)) {
			continue
		}
		if r == "/" {
			continue // the chroot itself stays, whatever the backup says
		}
		deleted[r] = true
		dels = append(dels, r)
	}
	sort.SliceStable(dels, func(i, j int) bool {
		if di, dj := depth(dels[i]), depth(dels[j]); di != dj {
			return di > dj
		}
		return dels[i] > dels[j]
	})
	for _, r := range dels {
		plan.Ops = append(plan.Ops, Op{Kind: OpDelete, Path: abs(target, r)})
	}

	// Creates, parents first; a chroot below the root gets its missing
	// ancestors (with open ACLs, as Kafka creates them).
	wrels := make([]string, 0, len(want))
	for r := range want {
		wrels = append(wrels, r)
	}
	sort.Slice(wrels, func(i, j int) bool {
		if di, dj := depth(wrels[i]), depth(wrels[j]); di != dj {
			return di < dj
		}
		return wrels[i] < wrels[j]
	})
	var sets, acls []Op
	for _, r := range wrels {
		z := want[r]
		h, ok := have[r]
		if !ok || deleted[r] {
			plan.Ops = append(plan.Ops, Op{Kind: OpCreate, Path: abs(target, r), Data: z.Data, ACL: z.ACL})
			continue
		}
		same := true
		if (h.Data == nil) != (z.Data == nil) || !bytes.Equal(h.Data, z.Data) {
			sets = append(sets, Op{Kind: OpSetData, Path: abs(target, r), Data: z.Data})
			same = false
		}
		if !sameACL(h.ACL, z.ACL) {
			acls = append(acls, Op{Kind: OpSetACL, Path: abs(target, r), ACL: z.ACL})
			same = false
		}
		if same {
			plan.Unchanged++
		}
	}
	plan.Ops = append(plan.Ops, sets...)
	plan.Ops = append(plan.Ops, acls...)
	sort.Strings(plan.Skipped)
	return plan, nil
}

func parent(r string) string {
	i := strings.LastIndexByte(r, '/')
	if i <= 0 {
		return "/"
	}
	return r[:i]
}

func sameACL(a, b []ACL) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ApplyOptions bound how a plan is applied.
type ApplyOptions struct {
	// BatchSize is the most operations in one ZooKeeper multi (default 500).
	BatchSize int
	// BatchBytes bounds the data of one multi, below ZooKeeper's
	// jute.maxbuffer of 1 MiB (default 512 KiB).
	BatchBytes int
	// Progress, when set, is called after each batch with the ops done.
	Progress func(done int)
}

// Applied counts what Apply did.
type Applied struct {
	Deleted int `json:"deleted"`
	Created int `json:"created"`
	DataSet int `json:"data_set"`
	ACLSet  int `json:"acl_set"`
	Batches int `json:"batches"`
	// SequenceCountersFixed lists parents whose sequential-child counter
	// was moved past restored children (see AdvanceSequenceCounters).
	SequenceCountersFixed []string `json:"sequence_counters_fixed,omitempty"`
}

// writer is the part of *zk.Conn that Apply uses.
type writer interface {
	Multi(ops ...interface{}) ([]zk.MultiResponse, error)
	SetACL(path string, acl []zk.ACL, version int32) (*zk.Stat, error)
}

// Apply runs a plan: deletes, creates and data changes in ZooKeeper multi
// transactions of at most BatchSize operations (each batch all or
// nothing), then the ACLs one by one (ZooKeeper's multi has no setACL).
// Applying a plan twice fails on the first op that no longer fits; callers
// that retry plan again from the live tree, which makes the restore
// idempotent.
func Apply(ctx context.Context, c *zk.Conn, plan *RestorePlan, opt ApplyOptions) (Applied, error) {
	if c == nil {
		return Applied{}, errors.New("apply znode restore: no connection")
	}
	return apply(ctx, c, plan, opt)
}

func apply(ctx context.Context, c writer, plan *RestorePlan, opt ApplyOptions) (Applied, error) {
	if opt.BatchSize <= 0 {
		opt.BatchSize = 500
	}
	if opt.BatchBytes <= 0 {
		opt.BatchBytes = 512 << 10
	}
	var res Applied
	done := 0
	var batch []interface{}
	var batchOps []Op
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		resp, err := c.Multi(batch...)
		if err != nil {
			return fmt.Errorf("restore znodes: batch of %d operations from %s %s: %w%s", len(batch), batchOps[0].Kind, batchOps[0].Path, err, multiCulprit(resp, batchOps))
		}
		for _, o := range batchOps {
			switch o.Kind {
			case OpDelete:
				res.Deleted++
			case OpCreate:
				res.Created++
			case OpSetData:
				res.DataSet++
			}
		}
		res.Batches++
		done += len(batch)
		if opt.Progress != nil {
			opt.Progress(done)
		}
		batch, batchOps, size = nil, nil, 0
		return nil
	}
	for _, o := range plan.Ops {
		var req interface{}
		switch o.Kind {
		case OpDelete:
			req = &zk.DeleteRequest{Path: o.Path, Version: -1}
		case OpCreate:
			acl := Znode{ACL: o.ACL}.ZKACL()
			if len(acl) == 0 {
				acl = zk.WorldACL(zk.PermAll)
			}
			req = &zk.CreateRequest{Path: o.Path, Data: o.Data, Acl: acl}
		case OpSetData:
			req = &zk.SetDataRequest{Path: o.Path, Data: o.Data, Version: -1}
		case OpSetACL:
			continue
		default:
			return res, fmt.Errorf("restore znodes: unknown operation %q", o.Kind)
		}
		n := len(o.Path) + len(o.Data) + 64
		if len(batch) > 0 && (len(batch) >= opt.BatchSize || size+n > opt.BatchBytes) {
			if err := flush(); err != nil {
				return res, err
			}
		}
		batch = append(batch, req)
		batchOps = append(batchOps, o)
		size += n
	}
	if err := flush(); err != nil {
		return res, err
	}
	for _, o := range plan.Ops {
		if o.Kind != OpSetACL {
			continue
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if _, err := c.SetACL(o.Path, Znode{ACL: o.ACL}.ZKACL(), -1); err != nil {
			return res, fmt.Errorf("restore znodes: set ACL of %s: %w", o.Path, err)
		}
		res.ACLSet++
		done++
		if opt.Progress != nil && res.ACLSet%100 == 0 {
			opt.Progress(done)
		}
	}
	return res, nil
}

// multiCulprit names the operation a failed multi blamed.
func multiCulprit(resp []zk.MultiResponse, ops []Op) string {
	for i, r := range resp {
		if r.Error != nil && !errors.Is(r.Error, zk.ErrAPIError) && i < len(ops) {
			return fmt.Sprintf(" (%s %s: %v)", ops[i].Kind, ops[i].Path, r.Error)
		}
	}
	return ""
}

// Restore makes the live chroot hold the backed-up znodes: it snapshots
// the live chroot, plans, and applies. Run again after a failure, it plans
// from what is there now, so it never repeats what was done.
func Restore(ctx context.Context, c *zk.Conn, backup *Tree, target string, opt ApplyOptions) (*RestorePlan, Applied, error) {
	live, err := snapshotOrNil(ctx, c, target)
	if err != nil {
		return nil, Applied{}, err
	}
	plan, err := PlanRestore(backup, live, target)
	if err != nil {
		return nil, Applied{}, err
	}
	if live == nil {
		if err := ensureAncestors(c, normChroot(target)); err != nil {
			return plan, Applied{}, err
		}
	}
	res, err := Apply(ctx, c, plan, opt)
	if err != nil {
		return plan, res, err
	}
	fixed, err := AdvanceSequenceCounters(ctx, c, sequentialParents(plan))
	res.SequenceCountersFixed = fixed
	return plan, res, err
}

// snapshotOrNil is Snapshot, with nil for a chroot that does not exist.
func snapshotOrNil(ctx context.Context, c *zk.Conn, chroot string) (*Tree, error) {
	ok, _, err := c.Exists(normChroot(chroot))
	if err != nil {
		return nil, fmt.Errorf("znode %s: %w", chroot, err)
	}
	if !ok {
		return nil, nil
	}
	return Snapshot(ctx, c, chroot)
}

// ensureAncestors creates the missing parents of a chroot ("/a" for
// "/a/b") with open ACLs, as Kafka creates its chroot.
func ensureAncestors(c *zk.Conn, chroot string) error {
	parts := strings.Split(strings.TrimPrefix(chroot, "/"), "/")
	for i := 1; i < len(parts); i++ {
		p := "/" + strings.Join(parts[:i], "/")
		if _, err := c.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("restore znodes: create %s: %w", p, err)
		}
	}
	return nil
}

// notificationQueues are Kafka's change-notification parents: brokers
// append sequential children (config_change_0000000042) and each broker
// processes only those above the highest number it has seen. Their
// children are signals, not state: a restore neither writes nor deletes
// them (brokers reload the entities from their znodes at start), because a
// child re-created under its old name does not move the parent's sequence
// counter, and the next notification would get a number already used or
// lower than the last seen — and be ignored by every broker.
var notificationQueues = []string{"/config/changes", "/kafka-acl-changes", "/kafka-acl-extended-changes",
	"/isr_change_notification", "/log_dir_event_notification"}

// Notification tells a child of a change-notification queue, by its path
// relative to the chroot.
func Notification(rel string) bool {
	for _, q := range notificationQueues {
		if strings.HasPrefix(rel, q+"/") {
			return true
		}
	}
	return false
}

// seqSuffix returns the sequence number a sequential znode's name ends
// with (ZooKeeper appends 10 digits), or -1.
func seqSuffix(name string) int64 {
	if len(name) < 10 {
		return -1
	}
	var n int64
	for _, c := range name[len(name)-10:] {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// maxBumps bounds the create/delete pairs AdvanceSequenceCounters issues
// for one parent.
const maxBumps = 100000

// AdvanceSequenceCounters makes sure that, under each given parent, the
// next sequential child gets a number above seq (the highest sequence
// number of the children a restore re-created by name). ZooKeeper numbers
// sequential children with a per-parent counter that counts child
// creations, which re-creating children under their old names does not
// bring up to their numbers. It cannot be read, only bounded: it is at
// least the number of children there are now, so seq+1-len(children)
// creations of a scratch child (each deleted in the same multi, never
// visible to a reader) push it past seq; overshooting only leaves a gap
// in the numbering. It returns the parents it advanced.
func AdvanceSequenceCounters(ctx context.Context, c *zk.Conn, parents map[string]int64) ([]string, error) {
	names := make([]string, 0, len(parents))
	for p := range parents {
		names = append(names, p)
	}
	sort.Strings(names)
	var fixed []string
	for _, p := range names {
		kids, _, err := c.Children(p)
		if err != nil {
			return fixed, fmt.Errorf("sequence counter of %s: %w", p, err)
		}
		need := parents[p] + 1 - int64(len(kids))
		if need <= 0 {
			continue
		}
		if need > maxBumps {
			return fixed, fmt.Errorf("sequence counter of %s: %d creations needed to pass %d, more than the %d allowed; restore this subtree by hand", p, need, parents[p], maxBumps)
		}
		scratch := joinPath(p, "kbr-sequence-bump")
		for need > 0 {
			if err := ctx.Err(); err != nil {
				return fixed, err
			}
			n := min(need, 200)
			ops := make([]interface{}, 0, 2*n)
			for i := int64(0); i < n; i++ {
				ops = append(ops, &zk.CreateRequest{Path: scratch, Acl: zk.WorldACL(zk.PermAll)}, &zk.DeleteRequest{Path: scratch, Version: -1})
			}
			if _, err := c.Multi(ops...); err != nil {
				return fixed, fmt.Errorf("advance the sequence counter of %s: %w", p, err)
			}
			need -= n
		}
		fixed = append(fixed, p)
	}
	return fixed, nil
}

// sequentialParents maps each parent under which a plan creates children
// named like sequential znodes to the highest such number.
func sequentialParents(plan *RestorePlan) map[string]int64 {
	out := map[string]int64{}
	for _, o := range plan.Ops {
		if o.Kind != OpCreate {
			continue
		}
		i := strings.LastIndexByte(o.Path, '/')
		if s := seqSuffix(o.Path[i+1:]); s >= 0 {
			par := o.Path[:max(i, 1)]
			if cur, ok := out[par]; !ok || s > cur {
				out[par] = s
			}
		}
	}
	return out
}
