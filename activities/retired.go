package activities

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/names"
)

// The activities of the data path before format 2 (one activity per
// partition, format 1 segment files). Runs started by an earlier kbr still
// replay (workflows keep their code for that), but can no longer go on:
// these stand in for their activities and fail them, naming what to do.
// A backup is started again; a restore is resumed with `kbr restore retry`,
// which continues on the batched data path.

func retired(name, what string) error {
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("%s: this run was started by an earlier kbr whose data path is retired; %s", name, what), names.ErrRetired, nil)
}

const (
	rerunBackup  = "start the backup again"
	retryRestore = "resume it with `kbr restore retry` (it goes on with what landed) or restore again"
)

// Preflight is retired (BackupPreflight replaced it).
func (a *Activities) Preflight(ctx context.Context, _ any) (any, error) {
	return nil, retired("Preflight", rerunBackup)
}

// PlanRun is retired (PlanBackupRun replaced it).
func (a *Activities) PlanRun(ctx context.Context, _ any) (any, error) {
	return nil, retired("PlanRun", rerunBackup)
}

// CutOffsets is retired (PlanExport replaced it).
func (a *Activities) CutOffsets(ctx context.Context, _ any) (any, error) {
	return nil, retired("CutOffsets", rerunBackup)
}

// ExportPartition is retired (ExportUnit replaced it).
func (a *Activities) ExportPartition(ctx context.Context, _ any) (any, error) {
	return nil, retired("ExportPartition", rerunBackup)
}

// WriteManifest is retired (WriteIndex replaced it).
func (a *Activities) WriteManifest(ctx context.Context, _ any) (any, error) {
	return nil, retired("WriteManifest", rerunBackup)
}

// PrepareRestore is retired (PrepareImport replaced it).
func (a *Activities) PrepareRestore(ctx context.Context, _ any) (any, error) {
	return nil, retired("PrepareRestore", retryRestore)
}

// RestorePartition is retired (ImportUnit replaced it).
func (a *Activities) RestorePartition(ctx context.Context, _ any) (any, error) {
	return nil, retired("RestorePartition", retryRestore)
}

// CommitGroupOffsets is retired (ImportUnit commits each unit's groups).
func (a *Activities) CommitGroupOffsets(ctx context.Context, _ any) (any, error) {
	return nil, retired("CommitGroupOffsets", retryRestore)
}

// FinishRestore is retired (FinishImport replaced it).
func (a *Activities) FinishRestore(ctx context.Context, _ any) (any, error) {
	return nil, retired("FinishRestore", retryRestore)
}
