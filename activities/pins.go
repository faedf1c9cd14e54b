package activities

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/storage"
)

// A pin is a file a restore (or a verify) writes on the backup target
// before it reads a recovery point, and removes when it succeeds. Retention
// keeps every pinned recovery point with its chain, so neither a restore
// that just started nor a failed one waiting for `kbr restore retry` loses
// what it reads. The pin lives in the task folder, in pins/, named by the
// restore's id; it is not a kbr data file, so no prune deletes it.

// Pin is the content of a pin file.
type Pin struct {
	Manifest   string    `json:"manifest"`
	WorkflowID string    `json:"workflow_id"`
	Kind       string    `json:"kind"`
	PinnedAt   time.Time `json:"pinned_at"`
}

// PinInput pins or unpins a recovery point for a run.
type PinInput struct {
	Target     storage.Target `json:"target"`
	Manifest   string         `json:"manifest"`
	WorkflowID string         `json:"workflow_id"`
	Kind       string         `json:"kind"`
}

// PinMaxAge is how long a pin of a run that ended without succeeding is
// kept: Temporal keeps the run (and `kbr restore retry` can resume it) as
// long.
const PinMaxAge = 30 * 24 * time.Hour

func pinName(manifest, workflowID string) (string, error) {
	dir, _, _, ok := backupset.ParseManifestName(manifest)
	if !ok {
		return "", fmt.Errorf("pin: %q is not a manifest name", manifest)
	}
	id := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			return r
		}
		return '_'
	}, workflowID)
	return path.Join(dir, "pins", id+".json"), nil
}

// PinRecoveryPoint writes the run's pin of a recovery point, durably,
// before the run reads it.
func (a *Activities) PinRecoveryPoint(ctx context.Context, in PinInput) error {
	name, err := pinName(in.Manifest, in.WorkflowID)
	if err != nil {
		return badInput("%v", err)
	}
	b, release, err := a.target(ctx, in.Target)
	if err != nil {
		return err
	}
	defer release()
	_, err = writeJSON(ctx, b, name, Pin{Manifest: in.Manifest, WorkflowID: in.WorkflowID, Kind: in.Kind, PinnedAt: time.Now().UTC()})
	return permanent(err)
}

// UnpinRecoveryPoint removes the run's pin: it succeeded.
func (a *Activities) UnpinRecoveryPoint(ctx context.Context, in PinInput) error {
	name, err := pinName(in.Manifest, in.WorkflowID)
	if err != nil {
		return badInput("%v", err)
	}
	b, release, err := a.target(ctx, in.Target)
	if err != nil {
		return err
	}
	defer release()
	return permanent(b.Delete(ctx, name))
}

// pinnedRecoveryPoints reads the task folder's pins. A pin whose run
// succeeded, or is gone from Temporal, or ended unsuccessfully more than
// PinMaxAge ago, is stale: it is removed and pins nothing.
func (a *Activities) pinnedRecoveryPoints(ctx context.Context, b storage.Backend, taskDir string) (map[string]bool, error) {
	files, err := b.List(ctx, taskDir+"/pins/")
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return map[string]bool{}, nil
		}
		return nil, err
	}
	out := map[string]bool{}
	for _, f := range files {
		var p Pin
		if err := readJSON(ctx, b, f.Name, &p); err != nil {
			return nil, fmt.Errorf("pin %s: %w", f.Name, err)
		}
		if a.pinStale(ctx, p) {
			_ = b.Delete(ctx, f.Name)
			continue
		}
		out[p.Manifest] = true
	}
	return out, nil
}

func (a *Activities) pinStale(ctx context.Context, p Pin) bool {
	if a.Temporal == nil {
		return false
	}
	d, err := a.Temporal.DescribeWorkflowExecution(ctx, p.WorkflowID, "")
	if err != nil {
		var nf *serviceerror.NotFound
		return errors.As(err, &nf) && time.Since(p.PinnedAt) > time.Hour
	}
	info := d.GetWorkflowExecutionInfo()
	switch info.GetStatus() {
	case enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return false
	case enums.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return true
	}
	closed := info.GetCloseTime().AsTime()
	return time.Since(closed) > PinMaxAge
}
