package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/kmeta"
	"github.com/kbr-project/kbr/internal/names"
)

// Logical restore step names.
const (
	StepPlan       = "plan"
	StepApplyACLs  = "apply ACLs"
	StepQuotas     = "apply quotas"
	StepSCRAMUsers = "SCRAM users"
)

// LogicalRestoreResult is the plan and, unless a dry run, what was done.
type LogicalRestoreResult struct {
	RecoveryPoint string                 `json:"recovery_point"`
	DryRun        bool                   `json:"dry_run"`
	Plan          activities.LogicalPlan `json:"plan"`
	Topics        []kmeta.TopicResult    `json:"topics,omitempty"`
}

// LogicalRestoreWorkflow restores the logical metadata of a recovery point
// — topics with partition counts and configs, ACLs, client quotas; SCRAM
// users are reported — into a cluster through the Admin API, typically a
// new or empty KRaft cluster. The plan is made and shown first; with
// dry_run nothing else happens. Conflicts (a topic with another partition
// count) refuse the restore before anything is created. Every apply step
// is idempotent, so a retried step does no harm.
func LogicalRestoreWorkflow(ctx workflow.Context, cfg config.LogicalRestore) (*LogicalRestoreResult, error) {
	cfg.ApplyDefaults()
	p := Progress{Kind: "logical restore", Cluster: cfg.Cluster.Name, Status: names.StatusRunning}
	t := newTracker(ctx, &p, StepVerify, StepPlan, StepPrepare, StepApplyACLs, StepQuotas, StepSCRAMUsers)
	if err := workflow.SetQueryHandler(ctx, names.QueryProgress, func() (Progress, error) { return p, nil }); err != nil {
		return nil, err
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, names.SACluster.ValueSet(cfg.Cluster.Name),
		names.SAKind.ValueSet(names.KindLogicalRestore), names.SAStatus.ValueSet(names.StatusRunning)); err != nil {
		return nil, err
	}
	res, err := logicalRun(ctx, cfg, &p, t)
	p.Status = names.StatusSucceeded
	if err != nil {
		p.Status = names.StatusFailed
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, names.SAStatus.ValueSet(p.Status))
	t.end()
	return res, err
}

func logicalRun(ctx workflow.Context, cfg config.LogicalRestore, p *Progress, t *tracker) (*LogicalRestoreResult, error) {
	t.start(StepVerify)
	if err := cfg.Validate(); err != nil {
		t.fail(StepVerify, err)
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), names.ErrBadInput, nil)
	}
	if !cfg.DryRun {
		release, err := clusterLock(ctx, cfg.Cluster.Name, "", names.KindLogicalRestore, cfg.Cluster.LockQueue, p, t)
		if err != nil {
			t.fail(StepVerify, err)
			return nil, err
		}
		defer release()
	}
	if err := announceRecoveryPoint(ctx, &cfg.Source); err != nil {
		t.fail(StepVerify, err)
		return nil, err
	}
	var rp activities.RecoveryPoint
	if err := workflow.ExecuteActivity(longOpts(ctx), a.ResolveRecoveryPoint, activities.VerifyInput{Source: cfg.Source}).Get(ctx, &rp); err != nil {
		t.fail(StepVerify, err)
		return nil, err
	}
	p.RecoveryPoint = rp.Manifest
	t.done(StepVerify, rp.Manifest+": checksums match")

	t.start(StepPlan)
	res := &LogicalRestoreResult{RecoveryPoint: rp.Manifest, DryRun: cfg.DryRun}
	if err := workflow.ExecuteActivity(shortOpts(ctx, 5*time.Minute, 5), a.PlanLogicalRestore,
		activities.LogicalInput{Config: cfg, Manifest: rp.Manifest}).Get(ctx, &res.Plan); err != nil {
		t.fail(StepPlan, err)
		return nil, err
	}
	p.Report = res.Plan
	create := 0
	for _, tp := range res.Plan.Topics {
		if tp.Action == "create" {
			create++
		}
	}
	t.done(StepPlan, fmt.Sprintf("%d topics (%d to create), %d ACLs, %d quotas, %d SCRAM users", len(res.Plan.Topics), create,
		len(res.Plan.ACLs), len(res.Plan.Quotas), len(res.Plan.SCRAMUsers)))
	if len(res.Plan.Conflicts) > 0 {
		err := temporal.NewNonRetryableApplicationError("refused, nothing changed:\n  - "+strings.Join(res.Plan.Conflicts, "\n  - "), names.ErrPreflight, nil)
		t.fail(StepPlan, err)
		return res, err
	}
	if cfg.DryRun {
		for _, s := range []string{StepPrepare, StepApplyACLs, StepQuotas, StepSCRAMUsers} {
			t.skip(s, "dry run")
		}
		return res, nil
	}

	in := activities.LogicalApplyInput{Config: cfg, Plan: res.Plan}
	t.start(StepPrepare)
	if err := workflow.ExecuteActivity(shortOpts(ctx, 10*time.Minute, 5), a.CreatePlannedTopics, in).Get(ctx, &res.Topics); err != nil {
		t.fail(StepPrepare, err)
		return nil, err
	}
	created := 0
	for _, r := range res.Topics {
		if r.Created {
			created++
		}
	}
	t.done(StepPrepare, fmt.Sprintf("%d created, %d already there", created, len(res.Topics)-created))

	t.start(StepApplyACLs)
	if len(res.Plan.ACLs) == 0 {
		t.skip(StepApplyACLs, "none planned")
	} else if err := workflow.ExecuteActivity(shortOpts(ctx, 5*time.Minute, 5), a.ApplyPlannedACLs, in).Get(ctx, nil); err != nil {
		t.fail(StepApplyACLs, err)
		return nil, err
	} else {
		t.done(StepApplyACLs, fmt.Sprintf("%d bindings", len(res.Plan.ACLs)))
	}

	t.start(StepQuotas)
	if len(res.Plan.Quotas) == 0 {
		t.skip(StepQuotas, "none planned")
	} else if err := workflow.ExecuteActivity(shortOpts(ctx, 5*time.Minute, 5), a.ApplyPlannedQuotas, in).Get(ctx, nil); err != nil {
		t.fail(StepQuotas, err)
		return nil, err
	} else {
		t.done(StepQuotas, fmt.Sprintf("%d entities", len(res.Plan.Quotas)))
	}

	if len(res.Plan.SCRAMUsers) == 0 {
		t.skip(StepSCRAMUsers, "none in the backup")
	} else {
		t.start(StepSCRAMUsers)
		t.done(StepSCRAMUsers, fmt.Sprintf("%d users to set passwords for by hand (the backup holds no credentials)", len(res.Plan.SCRAMUsers)))
	}
	return res, nil
}
