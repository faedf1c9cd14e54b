package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/internal/schemareg/wire"
)

// Backup step names, as MRS calls them.
const (
	StepPreflight        = "preflight"
	StepMetadataSnapshot = "metadata snapshot"
	StepConsumerOffsets  = "consumer offsets"
	StepCut              = "fix end offsets"
	StepExport           = "export partitions"
	StepSchemas          = "schema registry"
	StepManifest         = "write manifest"
	StepRetention        = "retention"
)

// BackupResult is what a successful backup returns.
type BackupResult struct {
	RecoveryPoint string           `json:"recovery_point"` // manifest name on the target
	TaskDir       string           `json:"task_dir"`
	Target        string           `json:"target"`
	Totals        backupset.Totals `json:"totals"`
	Kind          string           `json:"kind,omitempty"` // full | incremental
	Base          string           `json:"base,omitempty"`
	PolicyReason  string           `json:"policy_reason,omitempty"`
	// FullPartitions names partitions an incremental run copied whole, and
	// why (the first few; FullCopied counts them all).
	FullPartitions []string `json:"full_partitions,omitempty"`
	FullCopied     int      `json:"full_copied,omitempty"`
	// Units is how many work units exported the data.
	Units int `json:"units,omitempty"`
	// Lost is set when retention deleted records of the cut before the
	// export read them: the recovery point lacks them, and the run's status
	// says so (records-lost).
	Lost *backupset.LostSummary `json:"lost,omitempty"`
	// Schemas is the registry export (the schemas data source), with the
	// schema ids backed-up records carry that it lacks.
	Schemas   *activities.SchemasResult `json:"schemas,omitempty"`
	Retention *activities.PruneResult   `json:"retention,omitempty"`
}

// HistoryMemo is the memo a finished backup leaves on its execution, which
// `kbr task history` lists without reading every history.
type HistoryMemo struct {
	Kind          string `json:"kind,omitempty"`
	RecoveryPoint string `json:"recovery_point,omitempty"`
	// Path is the recovery point's full path: target and manifest.
	Path    string `json:"path,omitempty"`
	Records int64  `json:"records"`
	Bytes   int64  `json:"bytes"`
	Error   string `json:"error,omitempty"`
	Note    string `json:"note,omitempty"`
}

var a *activities.Activities

// BackupWorkflow backs one cluster up: preflight, metadata snapshot,
// consumer offsets, the cut, the export of the partitions in work units
// (child workflows), then the manifest and retention. Its input is the same
// document as `kbr backup run -f` reads.
func BackupWorkflow(ctx workflow.Context, cfg config.Backup) (*BackupResult, error) {
	if workflow.GetVersion(ctx, "data-plane", workflow.DefaultVersion, 2) == workflow.DefaultVersion {
		return backupV1(ctx, cfg)
	}
	w := &backup{cfg: cfg}
	res, err := w.run(ctx)
	status := names.StatusSucceeded
	switch {
	case err != nil:
		status = names.StatusFailed
	case res.Lost != nil:
		status = names.StatusRecordsLost
	}
	w.progress.Status = status
	_ = workflow.UpsertTypedSearchAttributes(ctx, names.SAStatus.ValueSet(status))
	memo := HistoryMemo{Kind: w.plan.Kind}
	if res != nil {
		memo.RecoveryPoint, memo.Records, memo.Bytes = res.RecoveryPoint, res.Totals.Records, res.Totals.Bytes
		memo.Path = res.Target + "/" + res.RecoveryPoint
		var notes []string
		if res.Lost != nil {
			notes = append(notes, fmt.Sprintf("RECORDS LOST: %d offsets in %d partitions deleted by retention before the backup read them (%s)",
				res.Lost.Offsets, res.Lost.Partitions, strings.Join(res.Lost.Examples, "; ")))
		}
		if s := res.Schemas; s != nil && s.MissingCount > 0 {
			notes = append(notes, missingSchemas(s))
		}
		if res.FullCopied > 0 {
			notes = append(notes, fmt.Sprintf("%d partitions copied whole: %s", res.FullCopied, strings.Join(res.FullPartitions[:min(3, len(res.FullPartitions))], "; ")))
		}
		memo.Note = strings.Join(notes, "; ")
	}
	if err != nil {
		memo.Error = err.Error()
	}
	_ = workflow.UpsertMemo(ctx, map[string]any{names.MemoHistory: memo})
	w.track.end()
	return res, err
}

type backup struct {
	cfg      config.Backup
	progress Progress
	track    *tracker
	plan     backupset.RunPlan
}

func (w *backup) run(ctx workflow.Context) (*BackupResult, error) {
	w.progress = Progress{Kind: names.KindBackup, Cluster: w.cfg.Cluster.Name, Task: w.cfg.Task, Status: names.StatusRunning}
	t := newTracker(ctx, &w.progress, StepPreflight, StepMetadataSnapshot, StepKRaftLog, StepConsumerOffsets, StepCut, StepExport, StepSchemas, StepManifest, StepRetention)
	w.track = t
	if err := workflow.SetQueryHandler(ctx, names.QueryProgress, func() (Progress, error) { return w.progress, nil }); err != nil {
		return nil, err
	}
	executed := workflow.Now(ctx).UTC().Truncate(time.Second)
	var (
		cfg     config.Backup
		pre     activities.PreflightReport
		release = func() {}
	)
	defer func() { release() }()
	err := t.run(StepPreflight, func() (string, error) {
		var err error
		if cfg, err = normalizeBackup(ctx, w.cfg); err != nil {
			return "", err
		}
		w.cfg = cfg
		w.progress.Task = cfg.Task
		if err := workflow.UpsertTypedSearchAttributes(ctx, names.SACluster.ValueSet(cfg.Cluster.Name), names.SATask.ValueSet(cfg.Task),
			names.SAKind.ValueSet(names.KindBackup), names.SAStatus.ValueSet(names.StatusRunning)); err != nil {
			return "", err
		}
		// One run per cluster at a time, whoever started it.
		rel, err := clusterLock(ctx, cfg.Cluster.Name, cfg.Task, names.KindBackup, cfg.Cluster.LockQueue, &w.progress, t)
		if err != nil {
			return "", err
		}
		release = rel
		if err := shortStep(ctx, true, 5*time.Minute, 3, a.BackupPreflight, activities.PreflightInput{Config: cfg, ExecutedAt: executed}).Get(ctx, &pre); err != nil {
			return "", err
		}
		w.progress.Report, w.progress.EstimatedBytes = pre, pre.EstimatedBytes
		if pre.ExecutedAt.After(executed) {
			executed = pre.ExecutedAt // an earlier run of the task used this second
		}
		w.plan = backupset.RunPlan{Kind: backupset.KindFull, Reason: "policy: full every time"}
		if cfg.Policy != config.PolicyFull && cfg.Has(config.SourceTopicData) {
			if err := shortStep(ctx, true, 10*time.Minute, 5, a.PlanBackupRun, activities.PlanRunInput{
				Target: cfg.Target, TaskDir: pre.TaskDir, Policy: cfg.Policy, FullEvery: cfg.FullEvery, MaxCopies: cfg.MaxCopies,
			}).Get(ctx, &w.plan); err != nil {
				return "", err
			}
		}
		w.progress.Kind = names.KindBackup + " (" + w.plan.Kind + ")"
		return fmt.Sprintf("%d topics, %d partitions, ~%d bytes, ~%s; %s: %s", pre.TopicCount, pre.Partitions, pre.EstimatedBytes, pre.EstimatedDuration, w.plan.Kind, w.plan.Reason), nil
	})
	if err != nil {
		return nil, err
	}

	m := &backupset.Manifest{
		Format: backupset.FormatVersion, Task: cfg.Task, TaskDir: pre.TaskDir, Cluster: cfg.Cluster.Name,
		ClusterID: pre.ClusterID, KafkaVersion: backupset.SafeVersion(pre.KafkaVersion), Mode: pre.Mode, Kind: w.plan.Kind,
		Base: w.plan.Base, Policy: cfg.Policy, ExecutedAt: executed, DataSources: cfg.DataSources, Compression: cfg.Options.Compression,
		WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, RunID: workflow.GetInfo(ctx).WorkflowExecution.RunID,
	}
	name := backupset.ManifestName(m.TaskDir, m.KafkaVersion, executed)
	snapIn := activities.SnapshotInput{Config: cfg, TaskDir: pre.TaskDir, KafkaVersion: m.KafkaVersion, ExecutedAt: executed}
	if err := t.run(StepMetadataSnapshot, func() (string, error) {
		if !cfg.Has(config.SourceMetadata) {
			return "", skip("not a chosen data source")
		}
		err := workflow.ExecuteActivity(shortOpts(ctx, 30*time.Minute, 5), a.SnapshotMetadata, snapIn).Get(ctx, &m.Metadata)
		if err != nil {
			return "", err
		}
		return m.Metadata.Name, nil
	}); err != nil {
		return nil, err
	}
	if err := t.run(StepKRaftLog, func() (string, error) { return w.kraftLog(ctx, cfg, pre, m) }); err != nil {
		return nil, err
	}
	// Offsets before the cut: every committed offset is then at or below
	// the exported end offsets, so each one translates to a real position.
	if err := t.run(StepConsumerOffsets, func() (string, error) {
		if !cfg.Has(config.SourceOffsets) {
			return "", skip("not a chosen data source")
		}
		if err := workflow.ExecuteActivity(shortOpts(ctx, 10*time.Minute, 5), a.SnapshotOffsets, snapIn).Get(ctx, &m.Offsets); err != nil {
			return "", err
		}
		return m.Offsets.Name, nil
	}); err != nil {
		return nil, err
	}

	res := &BackupResult{TaskDir: pre.TaskDir, Target: cfg.Target.String(), Kind: w.plan.Kind, Base: w.plan.Base, PolicyReason: w.plan.Reason}
	dir := pre.TaskDir + "/" + backupset.Name(m.KafkaVersion, backupset.SourceTopicData, executed)
	var plan activities.ExportPlan
	if err := t.run(StepCut, func() (string, error) {
		if !cfg.Has(config.SourceTopicData) {
			return "", skip("not a chosen data source")
		}
		in := activities.PlanExportInput{Cluster: cfg.Cluster, Target: cfg.Target, Topics: cfg.Topics, Options: cfg.Options, Dir: dir}
		if w.plan.Kind == backupset.KindIncremental {
			in.Base = w.plan.Base
		}
		if err := workflow.ExecuteActivity(longOpts(ctx), a.PlanExport, in).Get(ctx, &plan); err != nil {
			return "", err
		}
		w.progress.PartitionsTotal, w.progress.UnitsTotal = plan.Partitions, len(plan.Units)
		w.progress.RecordsTotal = plan.Offsets
		res.FullPartitions, res.FullCopied, res.Units = plan.FullExamples, plan.FullCopied, len(plan.Units)
		detail := fmt.Sprintf("%d partitions, %d offsets, %d work units", plan.Partitions, plan.Offsets, len(plan.Units))
		if plan.FullCopied > 0 {
			detail += fmt.Sprintf("; %d copied whole (%s)", plan.FullCopied, strings.Join(plan.FullExamples[:min(3, len(plan.FullExamples))], "; "))
		}
		return detail, nil
	}); err != nil {
		return nil, err
	}

	var lost backupset.LostSummary
	var seen *wire.IDSet // the schema ids the records carry (schemas data source)
	if err := t.run(StepExport, func() (string, error) {
		if !cfg.Has(config.SourceTopicData) {
			return "", skip("not a chosen data source")
		}
		results := make([]activities.UnitResult, 0, len(plan.Units))
		template := activities.ExportUnitInput{Cluster: cfg.Cluster, Target: cfg.Target, Options: cfg.Options, Dir: dir, Manifest: name,
			ScanSchemaIDs: cfg.Has(config.SourceSchemas)}
		err := children(ctx, &w.progress, len(plan.Units), cfg.Options.Parallelism,
			func(cctx workflow.Context, k, from, to, window int) workflow.ChildWorkflowFuture {
				return workflow.ExecuteChildWorkflow(cctx, names.ExportWorkflow, ExportUnits{
					Parent: workflow.GetInfo(ctx).WorkflowExecution.ID, Template: template, Units: plan.Units[from:to], Window: window})
			}, func(k int, f workflow.Future) error {
				var rs []activities.UnitResult
				if err := f.Get(ctx, &rs); err != nil {
					return err
				}
				results = append(results, rs...)
				return nil
			}, func(d UnitDone) {
				w.progress.UnitsDone++
				w.progress.PartitionsDone += d.Partitions
				w.progress.RecordsDone += d.Records
				w.progress.BytesDone += d.Bytes
				w.progress.RecordsLost += d.LostOffsets
				w.progress.LostPartitions += d.LostPartitions
				t.details()
			})
		if err != nil {
			return "", err
		}
		if len(results) != len(plan.Units) {
			return "", errf("%d of %d work units reported", len(results), len(plan.Units))
		}
		// The parts in unit order, whatever order the units ended in.
		m.Parts = make([]backupset.PartRef, len(results))
		var records int64
		for _, r := range results {
			if r.Unit < 0 || r.Unit >= len(m.Parts) || m.Parts[r.Unit].Name != "" {
				return "", errf("work unit %d reported twice or out of range", r.Unit)
			}
			m.Parts[r.Unit] = r.Part
			if r.SchemaIDs != nil {
				if seen == nil {
					seen = &wire.IDSet{}
				}
				seen.Merge(r.SchemaIDs)
			}
			records += r.Part.Records
			lost.Partitions += r.LostPartitions
			lost.Ranges += r.LostRanges
			lost.Offsets += r.LostOffsets
			for _, e := range r.LostExamples {
				if len(lost.Examples) < 5 {
					lost.Examples = append(lost.Examples, e)
				}
			}
		}
		t.settleExport(results)
		detail := fmt.Sprintf("%d records in %d partitions, %d work units", records, plan.Partitions, len(results))
		if lost.Ranges > 0 {
			res.Lost = &lost
			msg := fmt.Sprintf("records lost: %d offsets in %d partitions were deleted by retention before the export read them: %s",
				lost.Offsets, lost.Partitions, strings.Join(lost.Examples, "; "))
			if cfg.Options.FailOnLostRecords {
				return "", temporal.NewNonRetryableApplicationError(msg+" (options.fail_on_lost_records: no recovery point written)", names.ErrRecordsLost, nil, lost)
			}
			detail += "; " + msg
		}
		return detail, nil
	}); err != nil {
		return nil, err
	}

	// The registry after the data: every id a backed-up record carries was
	// registered before its record was produced, so it is in this export
	// unless it was deleted since.
	if err := t.run(StepSchemas, func() (string, error) {
		if !cfg.Has(config.SourceSchemas) {
			return "", skip("not a chosen data source")
		}
		var sr activities.SchemasResult
		in := activities.SchemasInput{Config: cfg, TaskDir: pre.TaskDir, KafkaVersion: m.KafkaVersion, ExecutedAt: executed, Seen: seen}
		if err := workflow.ExecuteActivity(shortOpts(ctx, 30*time.Minute, 5), a.SnapshotSchemas, in).Get(ctx, &sr); err != nil {
			return "", err
		}
		m.Schemas, res.Schemas = sr.File, &sr
		detail := fmt.Sprintf("%s: %d subjects, %d versions", sr.File.Name, sr.Subjects, sr.Versions)
		if seen != nil {
			detail += fmt.Sprintf("; %d schema ids in the records", seen.Len())
			if seen.Over > 0 {
				detail += fmt.Sprintf(" (%d more past what a work unit keeps: not checked)", seen.Over)
			}
		}
		if sr.MissingCount > 0 {
			detail += "; " + missingSchemas(&sr)
		}
		return detail, nil
	}); err != nil {
		return nil, err
	}

	if err := t.run(StepManifest, func() (string, error) {
		if err := workflow.ExecuteActivity(longOpts(ctx), a.WriteIndex, activities.IndexInput{Target: cfg.Target, Manifest: m}).Get(ctx, &res.RecoveryPoint); err != nil {
			return "", err
		}
		m.ComputeTotals()
		res.Totals = m.Totals
		w.progress.RecoveryPoint = res.RecoveryPoint
		_ = workflow.UpsertTypedSearchAttributes(ctx, names.SARecoveryPoint.ValueSet(res.RecoveryPoint))
		return res.RecoveryPoint, nil
	}); err != nil {
		return nil, err
	}

	// Retention, still under the cluster lock: a prune cut short leaves
	// only unlisted files, which the next one removes.
	if err := t.run(StepRetention, func() (string, error) {
		if cfg.MaxCopies <= 0 {
			return "", skip("max copies not set: every recovery point kept")
		}
		var pr activities.PruneResult
		pctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: time.Hour, HeartbeatTimeout: 30 * time.Second,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 10},
		})
		if err := workflow.ExecuteActivity(pctx, a.PruneTask, activities.PruneInput{
			Target: cfg.Target, TaskDir: pre.TaskDir, MaxCopies: cfg.MaxCopies, Current: res.RecoveryPoint,
		}).Get(ctx, &pr); err != nil {
			return "", err
		}
		res.Retention = &pr
		t.pruned(pr)
		detail := fmt.Sprintf("kept %d, deleted %d recovery points (%d files, %d bytes)", len(pr.Kept), len(pr.DeletedManifests), pr.DeletedFiles, pr.DeletedBytes)
		if len(pr.KeptForChain) > 0 {
			detail += fmt.Sprintf("; %d kept beyond max copies for a kept incremental", len(pr.KeptForChain))
		}
		if len(pr.KeptInUse) > 0 {
			detail += fmt.Sprintf("; %d kept beyond max copies while restores read them", len(pr.KeptInUse))
		}
		return detail, nil
	}); err != nil {
		// The recovery point exists and is complete; the run says the
		// prune failed and the next run's prune finishes it.
		return res, errf("recovery point %s written, but %w", res.RecoveryPoint, err)
	}
	return res, nil
}

// missingSchemas words the ids records carry that the registry export lacks.
func missingSchemas(s *activities.SchemasResult) string {
	ids := make([]string, 0, min(10, len(s.Missing)))
	for _, id := range s.Missing[:min(10, len(s.Missing))] {
		ids = append(ids, fmt.Sprint(id))
	}
	more := ""
	if s.MissingCount > len(ids) {
		more = fmt.Sprintf(" and %d more", s.MissingCount-len(ids))
	}
	return fmt.Sprintf("SCHEMAS MISSING: %d schema ids carried by backed-up records are not in the registry (%s%s): those records cannot be decoded after a restore",
		s.MissingCount, strings.Join(ids, ", "), more)
}
