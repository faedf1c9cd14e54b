package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
)

// Backup step names, as MRS calls them.
const (
	StepPreflight        = "preflight"
	StepMetadataSnapshot = "metadata snapshot"
	StepConsumerOffsets  = "consumer offsets"
	StepCut              = "fix end offsets"
	StepExport           = "export partitions"
	StepManifest         = "write manifest"
)

// BackupResult is what a successful backup returns.
type BackupResult struct {
	RecoveryPoint string           `json:"recovery_point"` // manifest name on the target
	TaskDir       string           `json:"task_dir"`
	Target        string           `json:"target"`
	Totals        backupset.Totals `json:"totals"`
}

var a *activities.Activities

// BackupWorkflow backs one cluster up: preflight, metadata snapshot,
// consumer offsets, the cut, the partition exports, then the manifest.
// Its input is the same document as `kbr backup run -f` reads.
func BackupWorkflow(ctx workflow.Context, cfg config.Backup) (*BackupResult, error) {
	w := &backupRun{cfg: cfg}
	if err := w.setup(ctx); err != nil {
		return nil, err
	}
	res, err := w.run(ctx)
	status := StatusSucceeded
	if err != nil {
		status = StatusFailed
	}
	w.progress.Status = status
	_ = workflow.UpsertTypedSearchAttributes(ctx, SAStatus.ValueSet(status))
	w.track.details()
	return res, err
}

type backupRun struct {
	cfg      config.Backup
	progress Progress
	track    *tracker
}

func (w *backupRun) setup(ctx workflow.Context) error {
	w.cfg.ApplyDefaults()
	w.progress = Progress{Kind: "backup", Cluster: w.cfg.Cluster.Name, Task: w.cfg.Task, Status: StatusRunning}
	w.track = newTracker(ctx, &w.progress, StepPreflight, StepMetadataSnapshot, StepConsumerOffsets, StepCut, StepExport, StepManifest)
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (Progress, error) { return w.progress, nil }); err != nil {
		return err
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx,
		SACluster.ValueSet(w.cfg.Cluster.Name), SATask.ValueSet(w.cfg.Task),
		SAKind.ValueSet("backup"), SAStatus.ValueSet(StatusRunning)); err != nil {
		return err
	}
	return nil
}

func shortOpts(ctx workflow.Context, timeout time.Duration, attempts int32) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    timeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			MaximumAttempts: attempts,
		},
	})
}

// longOpts is for activities that heartbeat and resume from their last
// heartbeat when retried.
func longOpts(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 48 * time.Hour,
		HeartbeatTimeout:    20 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			MaximumAttempts: 30,
		},
	})
}

func (w *backupRun) run(ctx workflow.Context) (*BackupResult, error) {
	cfg := w.cfg
	t := w.track
	executed := workflow.Now(ctx).UTC().Truncate(time.Second)

	t.start(StepPreflight)
	if err := cfg.Validate(); err != nil {
		t.fail(StepPreflight, err)
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeBadInput, nil)
	}
	// One run per cluster at a time, whoever started it (histories recorded
	// before the lock existed replay without it).
	if workflow.GetVersion(ctx, "cluster-lock", workflow.DefaultVersion, 1) == 1 {
		release, err := clusterLock(ctx, cfg.Cluster.Name, cfg.Task, "backup", cfg.Cluster.LockQueue, &w.progress, t)
		if err != nil {
			t.fail(StepPreflight, err)
			return nil, err
		}
		defer release()
	}
	var pre activities.PreflightReport
	if err := workflow.ExecuteActivity(shortOpts(ctx, 5*time.Minute, 3), a.Preflight,
		activities.PreflightInput{Config: cfg, ExecutedAt: executed}).Get(ctx, &pre); err != nil {
		t.fail(StepPreflight, err)
		return nil, err
	}
	w.progress.Report = pre
	w.progress.EstimatedBytes = pre.EstimatedBytes
	t.done(StepPreflight, fmt.Sprintf("%d topics, %d partitions, ~%d bytes, ~%s", len(pre.Topics), pre.Partitions, pre.EstimatedBytes, pre.EstimatedDuration))

	m := &backupset.Manifest{
		Format: backupset.FormatVersion, Task: cfg.Task, TaskDir: pre.TaskDir, Cluster: cfg.Cluster.Name,
		ClusterID: pre.ClusterID, KafkaVersion: backupset.SafeVersion(pre.KafkaVersion), Mode: pre.Mode, Kind: "full",
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
		var ranges []activities.PartitionRange
		if err := workflow.ExecuteActivity(shortOpts(ctx, 5*time.Minute, 5), a.CutOffsets,
			activities.CutInput{Cluster: cfg.Cluster, Topics: pre.Topics}).Get(ctx, &ranges); err != nil {
			t.fail(StepCut, err)
			return nil, err
		}
		var total int64
		for _, r := range ranges {
			total += r.End - r.Start
		}
		t.done(StepCut, fmt.Sprintf("%d partitions, %d offsets", len(ranges), total))

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
	if err := workflow.ExecuteActivity(shortOpts(ctx, 10*time.Minute, 5), a.WriteManifest,
		activities.ManifestInput{Target: cfg.Target, Manifest: m}).Get(ctx, &name); err != nil {
		t.fail(StepManifest, err)
		return nil, err
	}
	m.ComputeTotals()
	w.progress.RecoveryPoint = name
	_ = workflow.UpsertTypedSearchAttributes(ctx, SARecoveryPoint.ValueSet(name))
	t.done(StepManifest, name)
	return &BackupResult{RecoveryPoint: name, TaskDir: pre.TaskDir, Target: cfg.Target.String(), Totals: m.Totals}, nil
}

// export runs one activity per partition, at most Parallelism at once. On
// the first failure it starts no more and waits for those running.
func (w *backupRun) export(ctx workflow.Context, dir string, ranges []activities.PartitionRange) ([]backupset.PartitionBackup, error) {
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
				out[i] = backupset.PartitionBackup{Topic: r.Topic, TopicID: r.TopicID, Partition: r.Partition, StartOffset: r.Start, EndOffset: r.End}
				running--
				w.progress.PartitionsDone++
				continue
			}
			f := workflow.ExecuteActivity(actx, a.ExportPartition, activities.ExportInput{
				Cluster: w.cfg.Cluster, Target: w.cfg.Target, Options: w.cfg.Options, Dir: dir, Range: r,
			})
			sel.AddFuture(f, func(f workflow.Future) {
				running--
				var p activities.ExportProgress
				if err := f.Get(ctx, &p); err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("export %s[%d]: %w", r.Topic, r.Partition, err)
					}
					return
				}
				out[i] = backupset.PartitionBackup{Topic: r.Topic, TopicID: r.TopicID, Partition: r.Partition,
					StartOffset: r.Start, EndOffset: r.End, Segments: p.Segments, Records: p.Records, Lost: p.Gaps}
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
