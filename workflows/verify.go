package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/names"
)

// VerifyWorkflow re-reads every file of a recovery point and checks its size
// and SHA-256; a damaged or missing file fails it with every such file named.
func VerifyWorkflow(ctx workflow.Context, in activities.VerifyInput) (*activities.RecoveryPoint, error) {
	p := Progress{Kind: names.KindVerify, Status: names.StatusRunning}
	t := newTracker(ctx, &p, StepVerify)
	if err := workflow.SetQueryHandler(ctx, names.QueryProgress, func() (Progress, error) { return p, nil }); err != nil {
		return nil, err
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, names.SAKind.ValueSet(names.KindVerify), names.SAStatus.ValueSet(names.StatusRunning))
	t.start(StepVerify)
	// Announced like a restore's, so a prune does not delete what is being
	// verified and make it look damaged.
	err := announceRecoveryPoint(ctx, &in.Source)
	var rp activities.RecoveryPoint
	if workflow.GetVersion(ctx, "verify-in-shares", workflow.DefaultVersion, 1) == 1 {
		// Pinned while it reads, checked in shares across workers.
		if err == nil {
			err = pin(ctx, in.Source, names.KindVerify)
		}
		var vp activities.VerifyPlan
		if err == nil {
			err = workflow.ExecuteActivity(longOpts(ctx), a.PlanVerify, in).Get(ctx, &vp)
		}
		if err == nil {
			rp = *vp.Summary
			_, err = verifyAll(ctx, in.Source.Target, vp, 4)
		}
		if in.Source.RecoveryPoint != "latest" {
			unpin(ctx, in.Source, names.KindVerify)
		}
	} else if err == nil {
		err = workflow.ExecuteActivity(longOpts(ctx), a.ResolveRecoveryPoint, in).Get(ctx, &rp)
	}
	p.Status = names.StatusSucceeded
	if err != nil {
		p.Status = names.StatusFailed
		t.fail(StepVerify, err)
	} else {
		p.RecoveryPoint = rp.Manifest
		t.done(StepVerify, "every file matches its size and SHA-256")
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, names.SAStatus.ValueSet(p.Status))
	t.end()
	if err != nil {
		return nil, err
	}
	return &rp, nil
}
