// Package activities holds every activity of kbr's workflows: the I/O steps.
// Workflows refer to them through a nil *Activities so names and signatures
// are checked by the compiler.
package activities

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/catalog"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/kclient"
	"github.com/kbr-project/kbr/internal/kdata"
	"github.com/kbr-project/kbr/internal/lock"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/internal/pool"
	"github.com/kbr-project/kbr/internal/secret"
	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/decorate"
)

// Activities carries what activities share: the worker's Temporal client,
// and its pools of Kafka clients and storage sessions, reused across
// activities (no handshake per partition or per unit). The zero value works.
type Activities struct {
	Logger *slog.Logger
	// Temporal and TaskQueue let activities start and signal workflows
	// (the cluster lock).
	Temporal  client.Client
	TaskQueue string
	// IdleClose is how long a pooled client or session may go unused
	// before it is closed (default one minute).
	IdleClose time.Duration
	// Storage opens backup targets (storage/all.Registry() in the binary).
	Storage *storage.Registry
	// RestoreBufferBytes bounds the record batches all the restore units
	// of this worker hold at once, read and not yet acknowledged (default
	// DefaultRestoreBufferBytes): the worker's memory does not grow with
	// a restore's parallelism.
	RestoreBufferBytes int64

	once      sync.Once
	clients   *pool.Pool[*kgo.Client]
	targets   *pool.Pool[storage.Backend]
	manifests sync.Map // "<target>|<name>" -> *backupset.Manifest (immutable once written)
	offsets   sync.Map // "<target>|<name>" -> *backupset.OffsetsFile
	views     viewCache
	budget    *kdata.Budget
}

// DefaultRestoreBufferBytes is the worker's default RestoreBufferBytes.
const DefaultRestoreBufferBytes = 64 << 20

func (a *Activities) init() {
	a.once.Do(func() {
		idle := a.IdleClose
		if idle <= 0 {
			idle = time.Minute
		}
		a.clients = pool.New(idle, func(c *kgo.Client) { c.Close() })
		a.targets = pool.New(idle, func(b storage.Backend) { _ = b.Close() })
		a.views.max = 4
		n := a.RestoreBufferBytes
		if n <= 0 {
			n = DefaultRestoreBufferBytes
		}
		a.budget = kdata.NewBudget(n)
	})
}

// Close closes every pooled client and session of a (the worker is
// stopping). It is a function, not a method: every method of Activities is
// an activity.
func Close(a *Activities) {
	a.init()
	a.clients.Close()
	a.targets.Close()
}

// permanent turns errors that retrying cannot fix into non-retryable
// application errors, leaving the rest to the retry policy.
func permanent(err error) error {
	if err == nil {
		return nil
	}
	var ce *backupset.ChecksumError
	var app *temporal.ApplicationError
	switch {
	case errors.As(err, &app):
		return err
	case errors.As(err, &ce), errors.Is(err, backupset.ErrCorrupt), errors.Is(err, backupset.ErrPackCorrupt), errors.Is(err, backupset.ErrManifest):
		return temporal.NewNonRetryableApplicationError(err.Error(), names.ErrChecksum, err)
	case errors.Is(err, kdata.ErrTopicGone):
		return temporal.NewNonRetryableApplicationError(err.Error(), names.ErrTopicGone, err)
	case errors.Is(err, kdata.ErrForeignWrites):
		return temporal.NewNonRetryableApplicationError(err.Error(), names.ErrForeignWrites, err)
	case storage.IsPermanent(err):
		return temporal.NewNonRetryableApplicationError(err.Error(), names.ErrStorage, err)
	}
	return err
}

func badInput(format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	return temporal.NewNonRetryableApplicationError(msg, names.ErrBadInput, errors.New(msg))
}

func badInputTyped(msg, typ string) error {
	return temporal.NewNonRetryableApplicationError(msg, typ, errors.New(msg))
}

func (a *Activities) log() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}

// kafka returns the worker's client of a cluster and its release. The
// client is shared: never Close it, and set no per-call options on it.
func (a *Activities) kafka(ctx context.Context, c config.Cluster) (*kgo.Client, func(), error) {
	a.init()
	key, err := clusterKey(c)
	if err != nil {
		return nil, nil, badInput("%v", err)
	}
	cl, release, err := a.clients.Get(ctx, key, func(context.Context) (*kgo.Client, error) { return kclient.New(c) })
	if err != nil {
		return nil, nil, badInput("%v", err)
	}
	return cl, release, nil
}

// target returns the worker's session of a backup target, decorated with
// the behaviour every backend shares (operations logged, the repeatable ones
// retried over short outages), and its release. Never Close it.
func (a *Activities) target(ctx context.Context, t storage.Target) (storage.Backend, func(), error) {
	a.init()
	key := targetKey(t)
	b, release, err := a.targets.Get(ctx, key, func(ctx context.Context) (storage.Backend, error) { return a.openTarget(ctx, t) })
	if err != nil {
		return nil, nil, permanent(err)
	}
	return b, release, nil
}

// openTarget opens a backup target on its own (not pooled).
func (a *Activities) openTarget(ctx context.Context, t storage.Target) (storage.Backend, error) {
	b, err := a.Storage.Open(ctx, t)
	if err != nil {
		return nil, err
	}
	return decorate.Retry(decorate.Log(b, a.log()), decorate.DefaultPolicy), nil
}

// clusterKey identifies a cluster's client: its settings, and a hash of the
// credentials they reference, so a changed password or certificate opens a
// new client. The key holds no secret.
func clusterKey(c config.Cluster) (string, error) {
	h := sha256.New()
	c.LockQueue = 0
	if err := json.NewEncoder(h).Encode(c); err != nil {
		return "", err
	}
	if s := c.SASL; s != nil {
		hashRef(h, s.Password)
	}
	if t := c.TLS; t != nil {
		for _, f := range []string{t.CAFile, t.CertFile, t.KeyFile} {
			hashFile(h, f)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func targetKey(t storage.Target) string {
	h := sha256.New()
	_ = json.NewEncoder(h).Encode(t)
	for _, r := range []secret.Ref{t.Password, t.PrivateKey, t.AccessKey, t.SecretKey} {
		hashRef(h, r)
	}
	if k := t.Kerberos; k != nil {
		hashFile(h, k.Keytab)
		hashFile(h, k.Krb5Conf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func hashRef(w io.Writer, r secret.Ref) {
	if !r.IsSet() {
		return
	}
	v, err := r.Resolve("")
	if err != nil {
		fmt.Fprintf(w, "err:%v\x00", err)
		return
	}
	fmt.Fprintf(w, "%d:%s\x00", len(v), v)
}

func hashFile(w io.Writer, name string) {
	if name == "" {
		return
	}
	b, err := os.ReadFile(name)
	if err != nil {
		fmt.Fprintf(w, "err:%v\x00", err)
		return
	}
	fmt.Fprintf(w, "%d:%x\x00", len(b), sha256.Sum256(b))
}

// writeHashed writes a file through fn and returns its manifest entry.
func writeHashed(ctx context.Context, b storage.Backend, name string, fn func(io.Writer) error) (*backupset.FileEntry, error) {
	w, err := b.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	cw := &counter{w: io.MultiWriter(w, h)}
	if err := fn(cw); err != nil {
		_ = w.Abort()
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	if err := w.Commit(); err != nil {
		return nil, err
	}
	return &backupset.FileEntry{Name: name, Size: cw.n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// writeJSON writes v as a file and returns its manifest entry.
func writeJSON(ctx context.Context, b storage.Backend, name string, v any) (*backupset.FileEntry, error) {
	return writeHashed(ctx, b, name, func(w io.Writer) error { return json.NewEncoder(w).Encode(v) })
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// readVerified opens a file and checks it against its manifest entry while
// fn reads it; fn must read to the end.
func readVerified(ctx context.Context, b storage.Backend, f backupset.FileEntry, fn func(io.Reader) error) error {
	return catalog.ReadVerified(ctx, b, f, fn)
}

// MaxManifestBytes bounds a manifest index or part a reader loads.
const MaxManifestBytes = catalog.MaxManifestBytes

// loadManifest reads a manifest (the index, for format 2), caching it:
// manifests never change. Errors name the file.
func (a *Activities) loadManifest(ctx context.Context, b storage.Backend, name string) (*backupset.Manifest, error) {
	key := b.String() + "|" + name
	if m, ok := a.manifests.Load(key); ok {
		return m.(*backupset.Manifest), nil
	}
	m, err := catalog.Manifest(ctx, b, name)
	if err != nil {
		return nil, err
	}
	a.manifests.Store(key, m)
	return m, nil
}

// loadParts reads every part of a format 2 manifest.
func loadParts(ctx context.Context, b storage.Backend, name string, m *backupset.Manifest) ([]*backupset.Part, error) {
	return catalog.Parts(ctx, b, name, m)
}

// loadRecoveryPoint reads a manifest and, for format 2, its parts.
func (a *Activities) loadRecoveryPoint(ctx context.Context, b storage.Backend, name string) (backupset.Loaded, error) {
	return catalog.RecoveryPoint(ctx, b, name, a.loadManifest)
}

// loadView reads a recovery point as a restore sees it (backupset.Flatten),
// cached per worker: a restore's units all read the same view.
func (a *Activities) loadView(ctx context.Context, b storage.Backend, name string) (*backupset.View, error) {
	a.init()
	key := b.String() + "|" + name
	if v := a.views.get(key); v != nil {
		return v, nil
	}
	v, err := catalog.View(ctx, b, name, a.loadManifest)
	if err != nil {
		return nil, err
	}
	a.views.put(key, v)
	return v, nil
}

// viewCache keeps the last few views.
type viewCache struct {
	mu  sync.Mutex
	max int
	ll  list.List
	m   map[string]*list.Element
}

type viewEntry struct {
	key string
	v   *backupset.View
}

func (c *viewCache) get(key string) *backupset.View {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*viewEntry).v
	}
	return nil
}

func (c *viewCache) put(key string, v *backupset.View) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*list.Element{}
	}
	if e, ok := c.m[key]; ok {
		e.Value.(*viewEntry).v = v
		return
	}
	c.m[key] = c.ll.PushFront(&viewEntry{key, v})
	for c.ll.Len() > max(1, c.max) {
		e := c.ll.Back()
		c.ll.Remove(e)
		delete(c.m, e.Value.(*viewEntry).key)
	}
}

// LockRequestInput asks a cluster's lock workflow for the lock.
type LockRequestInput struct {
	Cluster string       `json:"cluster"`
	Request lock.Request `json:"request"`
}

// RequestClusterLock signals the cluster's lock workflow, starting it if it
// is not running (signal-with-start is atomic, so two requesters never
// start two locks).
func (a *Activities) RequestClusterLock(ctx context.Context, in LockRequestInput) error {
	if a.Temporal == nil {
		return errors.New("this worker has no Temporal client for the cluster lock")
	}
	_, err := a.Temporal.SignalWithStartWorkflow(ctx, names.LockWorkflowID(in.Cluster), names.SignalLockAcquire, in.Request,
		client.StartWorkflowOptions{TaskQueue: a.TaskQueue, WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING},
		names.ClusterLockWorkflow, lock.State{Cluster: in.Cluster})
	return err
}

// IsRunning reports whether a workflow run is still running.
func (a *Activities) IsRunning(ctx context.Context, workflowID, runID string) (bool, error) {
	d, err := a.Temporal.DescribeWorkflowExecution(ctx, workflowID, runID)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return false, nil
		}
		return false, err
	}
	return d.GetWorkflowExecutionInfo().GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
}
