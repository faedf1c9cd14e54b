// Package activities holds every activity of kbr's workflows: the I/O steps.
// Workflows refer to them through a nil *Activities so names and signatures
// are checked by the compiler.
package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/kdata"
	"github.com/kbr-project/kbr/internal/lock"
	"github.com/kbr-project/kbr/storage"
	_ "github.com/kbr-project/kbr/storage/all" // every path type
	"github.com/kbr-project/kbr/storage/decorate"
)

// Activities carries what activities share. The zero value works.
type Activities struct {
	Logger *slog.Logger
	// Temporal and TaskQueue let activities start and signal workflows
	// (the cluster lock).
	Temporal  client.Client
	TaskQueue string

	manifests sync.Map // "<target>|<name>" -> *backupset.Manifest (immutable once written)
}

// Error types a workflow can tell apart.
const (
	ErrTypePreflight     = "PreflightFailed"
	ErrTypeBadInput      = "BadInput"
	ErrTypeStorage       = "StoragePermanent"
	ErrTypeTopicGone     = "TopicGone"
	ErrTypeChecksum      = "ChecksumMismatch"
	ErrTypeForeignWrites = "ForeignWrites"
	ErrTypeNonEmpty      = "TargetNotEmpty"
)

// permanent turns errors that retrying cannot fix into non-retryable
// application errors, leaving the rest to the retry policy.
func permanent(err error) error {
	if err == nil {
		return nil
	}
	var ce *backupset.ChecksumError
	switch {
	case errors.As(err, &ce), errors.Is(err, backupset.ErrCorrupt):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeChecksum, err)
	case errors.Is(err, kdata.ErrTopicGone):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeTopicGone, err)
	case errors.Is(err, kdata.ErrForeignWrites):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeForeignWrites, err)
	case storage.IsPermanent(err):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeStorage, err)
	}
	return err
}

func badInput(format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	return temporal.NewNonRetryableApplicationError(msg, ErrTypeBadInput, errors.New(msg))
}

func (a *Activities) log() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
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
	rc, err := b.Open(ctx, f.Name)
	if err != nil {
		return err
	}
	defer rc.Close()
	vr := backupset.NewVerifyingReader(rc, f.Name, f.Size, f.SHA256)
	if err := fn(vr); err != nil {
		return err
	}
	return vr.Drain()
}

// loadManifest reads a manifest, caching it: manifests never change.
func (a *Activities) loadManifest(ctx context.Context, b storage.Backend, name string) (*backupset.Manifest, error) {
	key := b.String() + "|" + name
	if m, ok := a.manifests.Load(key); ok {
		return m.(*backupset.Manifest), nil
	}
	rc, err := b.Open(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("recovery point %s: %w", name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("recovery point %s: %w", name, err)
	}
	m, err := backupset.ReadManifest(name, data)
	if err != nil {
		return nil, storage.Permanent(err) // it names the file
	}
	a.manifests.Store(key, m)
	return m, nil
}

// loadView reads a recovery point as a restore sees it: an incremental
// one with its whole chain flattened (backupset.Flatten), so its Files are
// every file the restore needs.
func (a *Activities) loadView(ctx context.Context, b storage.Backend, name string) (*backupset.Manifest, error) {
	m, err := a.loadManifest(ctx, b, name)
	if err != nil || m.Base == "" {
		return m, err
	}
	chain := []*backupset.Manifest{m}
	seen := map[string]bool{name: true}
	for cur := m; cur.Base != ""; {
		if seen[cur.Base] || len(chain) > 10000 {
			return nil, storage.Permanent(fmt.Errorf("recovery point %s: its chain loops at %s", name, cur.Base))
		}
		seen[cur.Base] = true
		base, err := a.loadManifest(ctx, b, cur.Base)
		if err != nil {
			return nil, fmt.Errorf("recovery point %s needs its base %s: %w", name, cur.Base, err)
		}
		chain = append(chain, base)
		cur = base
	}
	v, err := backupset.Flatten(chain)
	if err != nil {
		return nil, storage.Permanent(fmt.Errorf("recovery point %s: %w", name, err))
	}
	return v, nil
}

func badInputTyped(msg, typ string) error {
	return temporal.NewNonRetryableApplicationError(msg, typ, errors.New(msg))
}

// SignalLockAcquire is the signal a cluster's lock workflow takes requests on.
const SignalLockAcquire = "kbr-lock-acquire"

// LockWorkflowID is the id of a cluster's lock workflow.
func LockWorkflowID(cluster string) string { return "kbr-lock-" + cluster }

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
	_, err := a.Temporal.SignalWithStartWorkflow(ctx, LockWorkflowID(in.Cluster), SignalLockAcquire, in.Request,
		client.StartWorkflowOptions{TaskQueue: a.TaskQueue, WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING},
		"ClusterLockWorkflow", lock.State{Cluster: in.Cluster})
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

// openTarget opens a backup target with the cross-cutting behaviour every
// backend shares: operations logged (debug, warn on failure) and the
// repeatable ones retried over short outages before the activity's own
// retry takes over.
func (a *Activities) openTarget(ctx context.Context, t storage.Target) (storage.Backend, error) {
	b, err := storage.Open(ctx, t)
	if err != nil {
		return nil, err
	}
	return decorate.Retry(decorate.Log(b, a.log()), decorate.DefaultPolicy), nil
}
