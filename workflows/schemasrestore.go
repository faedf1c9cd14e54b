package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
)

// SchemasRestoreResult is what a schemas restore did.
type SchemasRestoreResult struct {
	RecoveryPoint string                           `json:"recovery_point"`
	Schemas       *activities.RestoreSchemasResult `json:"schemas"`
}

// SchemasRestoreWorkflow restores a recovery point's Schema Registry export
// into a registry on its own, without a data restore: the same restore
// schemas step as RestoreWorkflow's (IMPORT mode where the registry has it,
// else registered again in dependency order; the old-to-new id map in the
// result), the recovery point pinned while it is read and its schemas
// file's checksum checked before anything is written. Retried, it repeats
// nothing: every version is looked up first.
func SchemasRestoreWorkflow(ctx workflow.Context, cfg config.SchemasRestore) (*SchemasRestoreResult, error) {
	p := Progress{Kind: "schemas restore", Status: names.StatusRunning}
	t := newTracker(ctx, &p, StepVerify, StepRestoreSchemas)
	if err := workflow.SetQueryHandler(ctx, names.QueryProgress, func() (Progress, error) { return p, nil }); err != nil {
		return nil, err
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, names.SAKind.ValueSet(names.KindSchemasRestore),
		names.SAStatus.ValueSet(names.StatusRunning)); err != nil {
		return nil, err
	}
	res, err := schemasRestoreRun(ctx, cfg, &p, t)
	p.Status = names.StatusSucceeded
	if err != nil {
		p.Status = names.StatusFailed
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, names.SAStatus.ValueSet(p.Status))
	t.end()
	return res, err
}

func schemasRestoreRun(ctx workflow.Context, cfg config.SchemasRestore, p *Progress, t *tracker) (*SchemasRestoreResult, error) {
	cfg.ApplyDefaults()
	res := &SchemasRestoreResult{}
	src := cfg.Source
	pinned := false
	defer func() {
		if pinned {
			dctx, cancel := workflow.NewDisconnectedContext(ctx)
			defer cancel()
			unpin(dctx, src, names.KindSchemasRestore)
		}
	}()
	if err := t.run(StepVerify, func() (string, error) {
		if err := cfg.Validate(); err != nil {
			return "", temporal.NewNonRetryableApplicationError(err.Error(), names.ErrBadInput, nil)
		}
		if err := announceRecoveryPoint(ctx, &src); err != nil {
			return "", err
		}
		if err := pin(ctx, src, names.KindSchemasRestore); err != nil {
			return "", err
		}
		pinned = true
		res.RecoveryPoint, p.RecoveryPoint = src.RecoveryPoint, src.RecoveryPoint
		return src.RecoveryPoint + ": pinned; the schemas file's checksum is checked as it is read", nil
	}); err != nil {
		return nil, err
	}
	if err := t.run(StepRestoreSchemas, func() (string, error) {
		in := activities.RestoreSchemasInput{Config: *cfg.AsRestore(), Manifest: src.RecoveryPoint}
		in.Config.Source = src
		var sr activities.RestoreSchemasResult
		if err := workflow.ExecuteActivity(shortOpts(ctx, 30*time.Minute, 5), a.RestoreSchemas, in).Get(ctx, &sr); err != nil {
			return "", err
		}
		res.Schemas = &sr
		p.Report = res
		return schemasDetail(&sr), nil
	}); err != nil {
		return nil, err
	}
	return res, nil
}

// schemasDetail is the restore schemas step's detail line.
func schemasDetail(sr *activities.RestoreSchemasResult) string {
	detail := fmt.Sprintf("%s: %d subjects, %d versions (%d imported, %d registered, %d there already), %d ids changed",
		sr.Path, sr.Subjects, sr.Versions, sr.Imported, sr.Registered, sr.Existing, sr.Changed)
	if sr.Why != "" {
		detail += "; " + sr.Why
	}
	return detail
}
