package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
)

// backupV1 is BackupWorkflow as it was before format 2 (one activity per
// partition), kept so that runs started then replay; its data-path
// activities are retired and fail such a run, naming what to do.
func backupV1(ctx workflow.Context, cfg config.Backup) (*BackupResult, error) {
	w := &backupRunV1{cfg: cfg}
	if err := w.setup(ctx); err != nil {
		return nil, err
	}
	res, err := w.run(ctx)
	status := names.StatusSucceeded
	if err != nil {
		status = names.StatusFailed
	}
	w.progress.Status = status
	_ = workflow.UpsertTypedSearchAttributes(ctx, names.SAStatus.ValueSet(status))
	if workflow.GetVersion(ctx, "history-memo", workflow.DefaultVersion, 1) == 1 {
		memo := HistoryMemo{Kind: w.kind}
		if res != nil {
			memo.RecoveryPoint, memo.Records, memo.Bytes = res.RecoveryPoint, res.Totals.Records, res.Totals.Bytes
			memo.Path = res.Target + "/" + res.RecoveryPoint
			if len(res.FullPartitions) > 0 {
				memo.Note = fmt.Sprintf("%d partitions copied whole: %s", len(res.FullPartitions), strings.Join(res.FullPartitions[:min(3, len(res.FullPartitions))], "; "))
			}
		}
		if err != nil {
			memo.Error = err.Error()
		}
		_ = workflow.UpsertMemo(ctx, map[string]any{names.MemoHistory: memo})
	}
	w.track.details()
	return res, err
}

// partitionBackup is a partition's manifest entry before its segments.
func v1PartitionBackup(r v1PartitionRange) backupset.PartitionBackup {
	pb := backupset.PartitionBackup{Topic: r.Topic, TopicID: r.TopicID, Partition: r.Partition,
		StartOffset: r.Start, EndOffset: r.End, FullReason: r.FullReason}
	if r.Incremental {
		pb.StartOffset, pb.From, pb.Incremental = r.LogStart, r.Start, true
	}
	return pb
}

type backupRunV1 struct {
	// local: the short steps run as local activities (runs started since
	// the "local-short-steps" version).
	local     bool
	fullParts []string
	kind      string
	cfg       config.Backup
	progress  Progress
	track     *tracker
}

func (w *backupRunV1) setup(ctx workflow.Context) error {
	w.cfg.ApplyDefaults()
	w.local = workflow.GetVersion(ctx, "local-short-steps", workflow.DefaultVersion, 1) == 1
	w.progress = Progress{Kind: names.KindBackup, Cluster: w.cfg.Cluster.Name, Task: w.cfg.Task, Status: names.StatusRunning}
	w.track = newTracker(ctx, &w.progress, StepPreflight, StepMetadataSnapshot, StepConsumerOffsets, StepCut, StepExport, StepManifest, StepRetention)
	if err := workflow.SetQueryHandler(ctx, names.QueryProgress, func() (Progress, error) { return w.progress, nil }); err != nil {
		return err
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx,
		names.SACluster.ValueSet(w.cfg.Cluster.Name), names.SATask.ValueSet(w.cfg.Task),
		names.SAKind.ValueSet(names.KindBackup), names.SAStatus.ValueSet(names.StatusRunning)); err != nil {
		return err
	}
	return nil
}

// short runs one of the backup's short steps (preflight, plan, cut,
// manifest); see shortStep.
func (w *backupRunV1) short(ctx workflow.Context, timeout time.Duration, attempts int32, fn, arg any) workflow.Future {
	return shortStep(ctx, w.local, timeout, attempts, fn, arg)
}

func (w *backupRunV1) run(ctx workflow.Context) (*BackupResult, error) {
	cfg := w.cfg
	t := w.track
	executed := workflow.Now(ctx).UTC().Truncate(time.Second)

	t.start(StepPreflight)
	if err := cfg.Validate(); err != nil {
		t.fail(StepPreflight, err)
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), names.ErrBadInput, nil)
	}
	// One run per cluster at a time, whoever started it (histories recorded
	// before the lock existed replay without it).
	if workflow.GetVersion(ctx, "cluster-lock", workflow.DefaultVersion, 1) == 1 {
		release, err := clusterLock(ctx, cfg.Cluster.Name, cfg.Task, names.KindBackup, cfg.Cluster.LockQueue, &w.progress, t)
		if err != nil {
			t.fail(StepPreflight, err)
			return nil, err
		}
		defer release()
	}
	var pre v1PreflightReport
	if err := w.short(ctx, 5*time.Minute, 3, a.Preflight,
		activities.PreflightInput{Config: cfg, ExecutedAt: executed}).Get(ctx, &pre); err != nil {
		t.fail(StepPreflight, err)
		return nil, err
	}
	w.progress.Report = pre
	w.progress.EstimatedBytes = pre.EstimatedBytes
	if pre.ExecutedAt.After(executed) {
		// An earlier run of the task used this second: names must not collide.
		executed = pre.ExecutedAt
	}

	// The task policy: full, or incremental after the previous recovery point.
	policies := workflow.GetVersion(ctx, "task-policies", workflow.DefaultVersion, 1) == 1
	plan := backupset.RunPlan{Kind: backupset.KindFull, Reason: "policy: full every time"}
	if policies && cfg.Policy != config.PolicyFull && cfg.Has(config.SourceTopicData) {
		if err := w.short(ctx, 10*time.Minute, 5, a.PlanRun, activities.PlanRunInput{
			Target: cfg.Target, TaskDir: pre.TaskDir, Policy: cfg.Policy, FullEvery: cfg.FullEvery, MaxCopies: cfg.MaxCopies,
		}).Get(ctx, &plan); err != nil {
			t.fail(StepPreflight, err)
			return nil, err
		}
	}
	w.kind = plan.Kind
	w.progress.Kind = "backup (" + plan.Kind + ")"
	t.done(StepPreflight, fmt.Sprintf("%d topics, %d partitions, ~%d bytes, ~%s; %s: %s", len(pre.Topics), pre.Partitions, pre.EstimatedBytes, pre.EstimatedDuration, plan.Kind, plan.Reason))

	m := &backupset.Manifest{
		Format: 1, Task: cfg.Task, TaskDir: pre.TaskDir, Cluster: cfg.Cluster.Name,
		ClusterID: pre.ClusterID, KafkaVersion: backupset.SafeVersion(pre.KafkaVersion), Mode: pre.Mode, Kind: plan.Kind,
		Base: plan.Base, Policy: cfg.Policy,
		ExecutedAt: executed, DataSources: cfg.DataSources, Compression: cfg.Options.Compression,
		WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, RunID: workflow.GetInfo(ctx).WorkflowExecution.RunID,
	}
	snapIn := activities.SnapshotInput{Config: cfg, TaskDir: pre.TaskDir, KafkaVersion: m.KafkaVersion, ExecutedAt: executed}

	if cfg.Has(config.SourceMetadata) {
		t.start(StepMetadataSnapshot)
		if err := workflow.ExecuteActivity(shortOpts(ctx, 30*time.Minute, 5), a.SnapshotMetadata, snapIn).Get(ctx, &m.Metadata); err != nil {
			t.fail(StepMetadataSnapshot, err)
			return nil, err
		}
		t.done(StepMetadataSnapshot, m.Metadata.Name)
	} else {
		t.skip(StepMetadataSnapshot, "not a chosen data source")
	}

	// Offsets before the cut: every committed offset is then at or below
	// the exported end offsets, so each one translates to a real position.
	if cfg.Has(config.SourceOffsets) {
		t.start(StepConsumerOffsets)
		if err := workflow.ExecuteActivity(shortOpts(ctx, 10*time.Minute, 5), a.SnapshotOffsets, snapIn).Get(ctx, &m.Offsets); err != nil {
			t.fail(StepConsumerOffsets, err)
			return nil, err
		}
		t.done(StepConsumerOffsets, m.Offsets.Name)
	} else {
		t.skip(StepConsumerOffsets, "not a chosen data source")
	}

	if cfg.Has(config.SourceTopicData) {
		t.start(StepCut)
		var ranges []v1PartitionRange
		cut := v1CutInput{Cluster: cfg.Cluster, Topics: pre.Topics}
		if plan.Kind == backupset.KindIncremental {
			cut.Target, cut.Base = cfg.Target, plan.Base
		}
		if err := w.short(ctx, 5*time.Minute, 5, a.CutOffsets, cut).Get(ctx, &ranges); err != nil {
			t.fail(StepCut, err)
			return nil, err
		}
		var total int64
		for _, r := range ranges {
			total += r.End - r.Start
			if plan.Kind == backupset.KindIncremental && !r.Incremental {
				w.fullParts = append(w.fullParts, fmt.Sprintf("%s[%d]: %s", r.Topic, r.Partition, r.FullReason))
			}
		}
		detail := fmt.Sprintf("%d partitions, %d offsets", len(ranges), total)
		if len(w.fullParts) > 0 {
			detail += fmt.Sprintf("; %d copied whole (%s)", len(w.fullParts), strings.Join(w.fullParts[:min(3, len(w.fullParts))], "; "))
		}
		t.done(StepCut, detail)

		t.start(StepExport)
		dir := pre.TaskDir + "/" + backupset.Name(m.KafkaVersion, backupset.SourceTopicData, executed)
		parts, err := w.export(ctx, dir, ranges)
		if err != nil {
			t.fail(StepExport, err)
			return nil, err
		}
		m.Partitions = parts
		t.done(StepExport, fmt.Sprintf("%d records in %d partitions", w.progress.RecordsDone, len(parts)))
	} else {
		t.skip(StepCut, "not a chosen data source")
		t.skip(StepExport, "not a chosen data source")
	}

	t.start(StepManifest)
	var name string
	if err := w.short(ctx, 10*time.Minute, 5, a.WriteManifest,
		v1ManifestInput{Target: cfg.Target, Manifest: m}).Get(ctx, &name); err != nil {
		t.fail(StepManifest, err)
		return nil, err
	}
	m.ComputeTotals()
	w.progress.RecoveryPoint = name
	_ = workflow.UpsertTypedSearchAttributes(ctx, names.SARecoveryPoint.ValueSet(name))
	t.done(StepManifest, name)
	res := &BackupResult{RecoveryPoint: name, TaskDir: pre.TaskDir, Target: cfg.Target.String(), Totals: m.Totals,
		Kind: plan.Kind, Base: plan.Base, PolicyReason: plan.Reason, FullPartitions: w.fullParts}

	// Retention, still under the cluster lock: a prune cut short leaves
	// only unlisted files, which the next one removes.
	if policies && cfg.MaxCopies > 0 {
		t.start(StepRetention)
		var pr activities.PruneResult
		pctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: time.Hour, HeartbeatTimeout: 30 * time.Second,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 10},
		})
		if err := workflow.ExecuteActivity(pctx, a.PruneTask, activities.PruneInput{
			Target: cfg.Target, TaskDir: pre.TaskDir, MaxCopies: cfg.MaxCopies, Current: name,
		}).Get(ctx, &pr); err != nil {
			// The recovery point exists and is complete; the run says the
			// prune failed and the next run's prune finishes it.
			t.fail(StepRetention, err)
			return res, fmt.Errorf("recovery point %s written, but retention failed: %w", name, err)
		}
		res.Retention = &pr
		detail := fmt.Sprintf("kept %d, deleted %d recovery points (%d files, %d bytes)", len(pr.Kept), len(pr.DeletedManifests), pr.DeletedFiles, pr.DeletedBytes)
		if len(pr.KeptForChain) > 0 {
			detail += fmt.Sprintf("; %d kept beyond max copies for a kept incremental", len(pr.KeptForChain))
		}
		if len(pr.KeptInUse) > 0 {
			detail += fmt.Sprintf("; %d kept beyond max copies while a running restore reads them", len(pr.KeptInUse))
		}
		t.done(StepRetention, detail)
	} else {
		t.skip(StepRetention, "max copies not set: every recovery point kept")
	}
	return res, nil
}

// export runs one activity per partition (format 1), at most Parallelism at once. On
// the first failure it starts no more and waits for those running.
func (w *backupRunV1) export(ctx workflow.Context, dir string, ranges []v1PartitionRange) ([]backupset.PartitionBackup, error) {
	w.progress.PartitionsTotal = len(ranges)
	out := make([]backupset.PartitionBackup, len(ranges))
	actx := longOpts(ctx)
	sel := workflow.NewSelector(ctx)
	var firstErr error
	running, next := 0, 0
	for next < len(ranges) || running > 0 {
		for firstErr == nil && running < w.cfg.Options.Parallelism && next < len(ranges) {
			i, r := next, ranges[next]
			next++
			running++
			if r.End <= r.Start {
				// Nothing to read: settle it here, without an activity.
				out[i] = v1PartitionBackup(r)
				running--
				w.progress.PartitionsDone++
				continue
			}
			f := workflow.ExecuteActivity(actx, a.ExportPartition, v1ExportInput{
				Cluster: w.cfg.Cluster, Target: w.cfg.Target, Options: w.cfg.Options, Dir: dir, Range: r,
			})
			sel.AddFuture(f, func(f workflow.Future) {
				running--
				var p v1ExportProgress
				if err := f.Get(ctx, &p); err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("export %s[%d]: %w", r.Topic, r.Partition, err)
					}
					return
				}
				out[i] = v1PartitionBackup(r)
				out[i].Segments, out[i].Records, out[i].Lost = p.Segments, p.Records, p.Gaps
				w.progress.PartitionsDone++
				w.progress.RecordsDone += p.Records
				w.progress.BytesDone += p.Bytes
				w.track.details()
			})
		}
		if running > 0 {
			sel.Select(ctx)
		} else if firstErr != nil || next >= len(ranges) {
			break
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	if w.progress.PartitionsDone != len(ranges) {
		return nil, errors.New("export ended with partitions unaccounted for")
	}
	return out, nil
}
