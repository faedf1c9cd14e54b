package workflows

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
)

// restoreV1 is RestoreWorkflow as it was before format 2 (one activity per
// partition), kept so that runs started then replay; its data-path
// activities are retired and fail such a run, naming what to do.
func restoreV1(ctx workflow.Context, cfg config.Restore) (*RestoreResult, error) {
	cfg.ApplyDefaults()
	p := Progress{Kind: names.KindRestore, Cluster: cfg.Cluster.Name, Status: names.StatusRunning}
	t := newTracker(ctx, &p, StepVerify, StepPrepare, StepRestoreData, StepCommitOffsets, StepFinish)
	if err := workflow.SetQueryHandler(ctx, names.QueryProgress, func() (Progress, error) { return p, nil }); err != nil {
		return nil, err
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, names.SACluster.ValueSet(cfg.Cluster.Name),
		names.SAKind.ValueSet(names.KindRestore), names.SAStatus.ValueSet(names.StatusRunning)); err != nil {
		return nil, err
	}
	res, err := restoreRunV1(ctx, cfg, &p, t)
	p.Status = names.StatusSucceeded
	if err != nil {
		p.Status = names.StatusFailed
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, names.SAStatus.ValueSet(p.Status))
	t.details()
	return res, err
}

// MaxPlanMemoBytes bounds the compressed restore plan kept in a memo
// (Temporal refuses memos over 2 MiB by default).
const MaxPlanMemoBytes = 1 << 20

func restoreRunV1(ctx workflow.Context, cfg config.Restore, p *Progress, t *tracker) (*RestoreResult, error) {
	t.start(StepVerify)
	if err := cfg.Validate(); err != nil {
		t.fail(StepVerify, err)
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), names.ErrBadInput, nil)
	}
	if workflow.GetVersion(ctx, "cluster-lock", workflow.DefaultVersion, 1) == 1 {
		release, err := clusterLock(ctx, cfg.Cluster.Name, "", names.KindRestore, cfg.Cluster.LockQueue, p, t)
		if err != nil {
			t.fail(StepVerify, err)
			return nil, err
		}
		defer release()
	}
	// Prepare, commit offsets and finish are short local steps in runs
	// since this version.
	local := workflow.GetVersion(ctx, "restore-local-short-steps", workflow.DefaultVersion, 1) == 1
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
	p.Task = rp.Task
	_ = workflow.UpsertTypedSearchAttributes(ctx, names.SATask.ValueSet(rp.Task), names.SARecoveryPoint.ValueSet(rp.Manifest))
	t.done(StepVerify, fmt.Sprintf("%s: %d files, %d records, checksums match", rp.Manifest, rp.Files, rp.Records))

	t.start(StepPrepare)
	var prep v1PrepareResult
	if r := cfg.Resume; r != nil {
		// A retry: the failed run created the topics and fixed each
		// partition's base; producing again skips what landed.
		if r.Manifest != rp.Manifest {
			err := temporal.NewNonRetryableApplicationError(fmt.Sprintf("resume: the failed run restored %s, this one resolves %s", r.Manifest, rp.Manifest), names.ErrBadInput, nil)
			t.fail(StepPrepare, err)
			return nil, err
		}
		if err := r.DecodePlan(&prep); err != nil {
			err = temporal.NewNonRetryableApplicationError("resume: the failed run's plan: "+err.Error(), names.ErrBadInput, nil)
			t.fail(StepPrepare, err)
			return nil, err
		}
	} else if err := shortStep(ctx, local, 10*time.Minute, 5, a.PrepareRestore,
		v1PrepareInput{Config: cfg, Manifest: rp.Manifest}).Get(ctx, &prep); err != nil {
		t.fail(StepPrepare, err)
		return nil, err
	}
	var planWarning string
	switch workflow.GetVersion(ctx, "restore-plan-memo", workflow.DefaultVersion, 2) {
	case 1:
		// What `kbr restore retry` resumes from if this run fails.
		// encoding/json is deterministic (map keys sorted); workflowcheck
		// flags it for the runtime's GC start deep inside reflect.
		//workflowcheck:ignore
		if plan, err := json.Marshal(prep); err == nil {
			_ = workflow.UpsertMemo(ctx, map[string]any{names.MemoRestorePlan: config.RestoreResume{
				FromRunID: workflow.GetInfo(ctx).WorkflowExecution.RunID, Manifest: rp.Manifest, Plan: plan}})
		}
	case 2:
		// The same, compressed, and only when it fits a memo: a memo over
		// Temporal's limit would fail the workflow task, not just the memo.
		resume := config.RestoreResume{FromRunID: workflow.GetInfo(ctx).WorkflowExecution.RunID, Manifest: rp.Manifest}
		err := resume.SetPlan(prep)
		if err == nil && len(resume.PlanGzip) > MaxPlanMemoBytes {
			err = fmt.Errorf("%d bytes compressed, over the %d kept", len(resume.PlanGzip), MaxPlanMemoBytes)
		}
		if err == nil {
			err = workflow.UpsertMemo(ctx, map[string]any{names.MemoRestorePlan: resume})
		}
		if err != nil {
			planWarning = "the restore plan is not kept for `kbr restore retry` (" + err.Error() + "): if this run fails, restore again into empty topics"
			workflow.GetLogger(ctx).Warn(planWarning)
		}
	}
	res := &RestoreResult{RecoveryPoint: rp.Manifest, Warnings: prep.Warnings}
	if planWarning != "" {
		res.Warnings = append(res.Warnings, planWarning)
	}
	for _, tr := range prep.Topics {
		res.Topics = append(res.Topics, TopicMapping{Source: tr.Source, Target: tr.Target, Created: tr.Created, Note: tr.Note})
	}
	for _, pl := range prep.Plans {
		if pl.Note != "" {
			res.Warnings = append(res.Warnings, pl.Target+": "+pl.Note)
		}
	}
	if cfg.Resume != nil {
		t.done(StepPrepare, fmt.Sprintf("resumed: %d topics, %d partitions as run %s prepared them", len(prep.Topics), len(prep.Partitions), cfg.Resume.FromRunID))
	} else {
		t.done(StepPrepare, fmt.Sprintf("%d topics, %d partitions", len(prep.Topics), len(prep.Partitions)))
	}

	t.start(StepRestoreData)
	p.PartitionsTotal = len(prep.Partitions)
	for _, pp := range prep.Partitions {
		p.RecordsTotal += pp.Records
	}
	results := make([]v1RestorePartitionResult, len(prep.Partitions))
	sel := workflow.NewSelector(ctx)
	actx := longOpts(ctx)
	var firstErr error
	running, next := 0, 0
	for next < len(prep.Partitions) || running > 0 {
		for firstErr == nil && running < cfg.Options.Parallelism && next < len(prep.Partitions) {
			i, pl := next, prep.Partitions[next]
			next++
			running++
			f := workflow.ExecuteActivity(actx, a.RestorePartition, v1RestorePartitionInput{Config: cfg, Manifest: rp.Manifest, Plan: pl})
			sel.AddFuture(f, func(f workflow.Future) {
				running--
				if err := f.Get(ctx, &results[i]); err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("restore %s[%d]: %w", pl.TargetTopic, pl.Partition, err)
					}
					return
				}
				p.PartitionsDone++
				p.RecordsDone += results[i].Records
				t.details()
			})
		}
		if running == 0 {
			break
		}
		sel.Select(ctx)
	}
	if firstErr != nil {
		t.fail(StepRestoreData, firstErr)
		return nil, firstErr
	}
	res.Partitions = len(results)
	res.Records = p.RecordsDone
	t.done(StepRestoreData, fmt.Sprintf("%d records in %d partitions", p.RecordsDone, len(results)))

	// Translate every group's offsets through the exact offset map.
	t.start(StepCommitOffsets)
	offsets := v1TranslateGroups(prep, results)
	if len(offsets) == 0 || cfg.SkipGroups {
		t.skip(StepCommitOffsets, "no group offsets in the recovery point, or skip_groups")
	} else {
		in := v1GroupCommitInput{Config: cfg, Manifest: rp.Manifest, Offsets: offsets}
		var gr v1GroupCommitResult
		if err := shortStep(ctx, local, 10*time.Minute, 5, a.CommitGroupOffsets, in).Get(ctx, &gr); err != nil {
			t.fail(StepCommitOffsets, err)
			return nil, err
		}
		res.Groups = gr.Committed
		t.done(StepCommitOffsets, fmt.Sprintf("%d groups", len(gr.Committed)))
	}

	t.start(StepFinish)
	if err := shortStep(ctx, local, 5*time.Minute, 10, a.FinishRestore,
		v1FinishInput{Config: cfg, Retention: prep.Retention}).Get(ctx, nil); err != nil {
		t.fail(StepFinish, err)
		return nil, err
	}
	t.done(StepFinish, "retention.ms as backed up")
	return res, nil
}

// translateGroups maps each group's committed source offsets to target
// offsets, for every partition, including those with no records.
func v1TranslateGroups(prep v1PrepareResult, results []v1RestorePartitionResult) map[string]map[string]map[int32]int64 {
	type key struct {
		topic string
		part  int32
	}
	byPart := map[key]v1RestorePartitionResult{}
	for _, r := range results {
		byPart[key{r.Plan.SourceTopic, r.Plan.Partition}] = r
	}
	out := map[string]map[string]map[int32]int64{}
	groups := make([]string, 0, len(prep.GroupOffsets))
	// The keys are sorted below: the map's order never shows.
	//workflowcheck:ignore
	for g := range prep.GroupOffsets {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		for _, o := range prep.GroupOffsets[g] {
			r, ok := byPart[key{o.Topic, o.Partition}]
			if !ok {
				continue // a topic not restored
			}
			v, ok := r.Translated[strconv.FormatInt(o.Offset, 10)]
			if !ok {
				continue
			}
			if out[g] == nil {
				out[g] = map[string]map[int32]int64{}
			}
			if out[g][r.Plan.TargetTopic] == nil {
				out[g][r.Plan.TargetTopic] = map[int32]int64{}
			}
			out[g][r.Plan.TargetTopic][o.Partition] = v
		}
	}
	return out
}
