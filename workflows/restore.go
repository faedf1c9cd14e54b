package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/storage"
)

// Restore step names.
const (
	StepVerify         = "verify recovery point"
	StepRestoreSchemas = "restore schemas"
	StepPrepare        = "create topics"
	StepRestoreData    = "restore partitions"
	StepCommitOffsets  = "commit group offsets"
	StepFinish         = "reset retention"
)

// RestoreResult is what a successful restore returns.
type RestoreResult struct {
	RecoveryPoint string `json:"recovery_point"`
	// Topics names the first restored topics; TopicCount counts them all.
	Topics     []TopicMapping `json:"topics"`
	TopicCount int            `json:"topic_count,omitempty"`
	Records    int64          `json:"records"`
	Produced   int64          `json:"produced,omitempty"`
	Skipped    int64          `json:"skipped,omitempty"`
	Partitions int            `json:"partitions"`
	Units      int            `json:"units,omitempty"`
	// Groups names the groups whose offsets were committed (runs before
	// format 2); GroupsCommitted counts group commits by work unit.
	Groups          []string `json:"groups,omitempty"`
	GroupsCommitted int      `json:"groups_committed,omitempty"`
	RawBatches      int64    `json:"raw_batches,omitempty"`
	RebuiltBatches  int64    `json:"rebuilt_batches,omitempty"`
	ResentBatches   int64    `json:"resent_batches,omitempty"`
	Warnings        []string `json:"warnings,omitempty"`
	// Schemas is the "restore schemas" step's result: the path taken
	// (import or register) and the old-to-new id map.
	Schemas *activities.RestoreSchemasResult `json:"schemas,omitempty"`
	// SchemaIDsRewritten counts record keys and values whose schema id was
	// rewritten (schema_ids: remap); SchemaIDsUnmapped those left alone
	// because their id was not in the restored registry's map.
	SchemaIDsRewritten int64 `json:"schema_ids_rewritten,omitempty"`
	SchemaIDsUnmapped  int64 `json:"schema_ids_unmapped,omitempty"`
}

// TopicMapping is a restored topic.
type TopicMapping = activities.TopicMapping

// announceRecoveryPoint resolves "latest" in src to the manifest it names
// and sets KbrRecoveryPoint to it, before anything reads it. Histories
// from before keep resolving it in the verify.
func announceRecoveryPoint(ctx workflow.Context, src *config.Source) error {
	if workflow.GetVersion(ctx, "announce-recovery-point", workflow.DefaultVersion, 1) != 1 {
		return nil
	}
	if err := workflow.ExecuteLocalActivity(localOpts(ctx, time.Minute, 5), a.ResolveName, activities.VerifyInput{Source: *src}).Get(ctx, &src.RecoveryPoint); err != nil {
		return err
	}
	return workflow.UpsertTypedSearchAttributes(ctx, names.SARecoveryPoint.ValueSet(src.RecoveryPoint))
}

// RestoreWorkflow restores topic data and consumer-group offsets from a
// recovery point into a running cluster: verify every checksum, create the
// topics, produce every partition in work units (child workflows; each
// unit commits its groups' translated offsets), put retention back. Its
// input is the document `kbr restore run -f` reads.
func RestoreWorkflow(ctx workflow.Context, cfg config.Restore) (*RestoreResult, error) {
	if workflow.GetVersion(ctx, "data-plane", workflow.DefaultVersion, 2) == workflow.DefaultVersion {
		return restoreV1(ctx, cfg)
	}
	p := Progress{Kind: names.KindRestore, Cluster: cfg.Cluster.Name, Status: names.StatusRunning}
	t := newTracker(ctx, &p, StepVerify, StepRestoreSchemas, StepPrepare, StepRestoreData, StepCommitOffsets, StepFinish)
	if err := workflow.SetQueryHandler(ctx, names.QueryProgress, func() (Progress, error) { return p, nil }); err != nil {
		return nil, err
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, names.SACluster.ValueSet(cfg.Cluster.Name),
		names.SAKind.ValueSet(names.KindRestore), names.SAStatus.ValueSet(names.StatusRunning)); err != nil {
		return nil, err
	}
	r := &restore{cfg: cfg, p: &p, t: t}
	res, err := r.run(ctx)
	p.Status = names.StatusSucceeded
	if err != nil {
		p.Status = names.StatusFailed
		if r.plan != nil {
			p.Error += "; the restored topics keep retention.ms -1 (and CreateTime) until `kbr restore retry " + workflow.GetInfo(ctx).WorkflowExecution.ID + "` finishes the restore"
		}
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, names.SAStatus.ValueSet(p.Status))
	t.end()
	return res, err
}

type restore struct {
	cfg  config.Restore
	p    *Progress
	t    *tracker
	plan *activities.PrepareResult
}

func (r *restore) run(ctx workflow.Context) (*RestoreResult, error) {
	t, p := r.t, r.p
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	var cfg config.Restore
	release := func() {}
	defer func() { release() }()
	var vp activities.VerifyPlan
	res := &RestoreResult{}
	if err := t.run(StepVerify, func() (string, error) {
		var err error
		if cfg, err = normalizeRestore(ctx, r.cfg); err != nil {
			return "", err
		}
		rel, err := clusterLock(ctx, cfg.Cluster.Name, "", names.KindRestore, cfg.Cluster.LockQueue, p, t)
		if err != nil {
			return "", err
		}
		release = rel
		if rs := cfg.Resume; rs != nil && rs.Manifest != "" {
			// A retry reads what the failed run read, even if "latest" moved.
			cfg.Source.RecoveryPoint = rs.Manifest
		}
		if err := announceRecoveryPoint(ctx, &cfg.Source); err != nil {
			return "", err
		}
		if err := pin(ctx, cfg.Source, names.KindRestore); err != nil {
			return "", err
		}
		if err := workflow.ExecuteActivity(longOpts(ctx), a.PlanVerify, activities.VerifyInput{Source: cfg.Source}).Get(ctx, &vp); err != nil {
			return "", err
		}
		p.RecoveryPoint, p.Task = vp.Manifest, vp.Summary.Task
		res.RecoveryPoint = vp.Manifest
		_ = workflow.UpsertTypedSearchAttributes(ctx, names.SATask.ValueSet(vp.Summary.Task))
		files, err := verifyAll(ctx, cfg.Source.Target, vp, cfg.Options.Parallelism)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s: %d files, %d records, checksums match", vp.Manifest, files, vp.Summary.Records), nil
	}); err != nil {
		return nil, err
	}
	// What `kbr restore retry` resumes from if this run fails: the
	// recovery point (the rest is in the target cluster's bookmarks).
	_ = workflow.UpsertMemo(ctx, map[string]any{names.MemoRestorePlan: config.RestoreResume{
		FromRunID: workflow.GetInfo(ctx).WorkflowExecution.RunID, Manifest: vp.Manifest}})

	// The schemas before the records: with schema_ids: remap the records
	// are rewritten through the ids this step gives out.
	var idMap []byte
	if err := t.run(StepRestoreSchemas, func() (string, error) {
		if cfg.SchemaRegistry == nil {
			return "", skip("no schema_registry given")
		}
		var sr activities.RestoreSchemasResult
		in := activities.RestoreSchemasInput{Config: cfg, Manifest: vp.Manifest}
		if err := workflow.ExecuteActivity(shortOpts(ctx, 30*time.Minute, 5), a.RestoreSchemas, in).Get(ctx, &sr); err != nil {
			return "", err
		}
		res.Schemas = &sr
		res.Warnings = append(res.Warnings, sr.Warnings...)
		if cfg.SchemaIDs == config.SchemaIDsRemap {
			idMap = sr.IDMap
		}
		detail := schemasDetail(&sr)
		if sr.Changed > 0 && cfg.SchemaIDs != config.SchemaIDsRemap {
			detail += "; schema_ids is keep: the records keep the backed-up ids"
		}
		return detail, nil
	}); err != nil {
		return nil, err
	}

	var prep activities.PrepareResult
	if err := t.run(StepPrepare, func() (string, error) {
		in := activities.PrepareInput{Config: cfg, Manifest: vp.Manifest, RestoreID: id}
		if err := workflow.ExecuteActivity(longOpts(ctx), a.PrepareImport, in).Get(ctx, &prep); err != nil {
			return "", err
		}
		r.plan = &prep
		res.Topics, res.TopicCount, res.Warnings, res.Units = prep.Topics, prep.TopicCount, prep.Warnings, len(prep.Units)
		p.PartitionsTotal, p.RecordsTotal, p.UnitsTotal = prep.Partitions, prep.Records, len(prep.Units)
		detail := fmt.Sprintf("%d topics, %d partitions, %d work units", prep.TopicCount, prep.Partitions, len(prep.Units))
		if prep.Resumed {
			detail += "; resumed: topics and base offsets as the failed run fixed them"
		}
		return detail, nil
	}); err != nil {
		return nil, err
	}

	var results []activities.ImportUnitResult
	if err := t.run(StepRestoreData, func() (string, error) {
		template := activities.ImportUnitInput{Config: cfg, Manifest: vp.Manifest, RestoreID: id, Offsets: prep.Offsets, SchemaIDMap: idMap}
		err := children(ctx, p, len(prep.Units), cfg.Options.Parallelism,
			func(cctx workflow.Context, k, from, to, window int) workflow.ChildWorkflowFuture {
				return workflow.ExecuteChildWorkflow(cctx, names.ImportWorkflow, ImportUnits{
					Parent: id, Template: template, Units: prep.Units[from:to], Window: window})
			}, func(k int, f workflow.Future) error {
				var rs []activities.ImportUnitResult
				if err := f.Get(ctx, &rs); err != nil {
					return err
				}
				results = append(results, rs...)
				return nil
			}, func(d UnitDone) {
				p.UnitsDone++
				p.PartitionsDone += d.Partitions
				p.RecordsDone += d.Records
				t.details()
			})
		if err != nil {
			return "", err
		}
		for _, u := range results {
			res.Records += u.Records
			res.Produced += u.Produced
			res.Skipped += u.Skipped
			res.Partitions += u.Partitions
			res.GroupsCommitted += u.Groups
			res.RawBatches += u.RawBatches
			res.RebuiltBatches += u.Rebuilt
			res.ResentBatches += u.Resent
			res.SchemaIDsRewritten += u.SchemaIDsRewritten
			res.SchemaIDsUnmapped += u.SchemaIDsUnmapped
		}
		t.settleImport(results)
		detail := fmt.Sprintf("%d records in %d partitions", res.Records, res.Partitions)
		if res.Skipped > 0 {
			detail += fmt.Sprintf(" (%d had landed before: not produced again)", res.Skipped)
		}
		if idMap != nil {
			detail += fmt.Sprintf("; %d schema ids rewritten", res.SchemaIDsRewritten)
			if res.SchemaIDsUnmapped > 0 {
				w := fmt.Sprintf("%d record keys or values carry a schema id the restored registry's map lacks: left as backed up", res.SchemaIDsUnmapped)
				detail += "; " + w
				res.Warnings = append(res.Warnings, w)
			}
		}
		return detail, nil
	}); err != nil {
		return nil, err
	}

	if err := t.run(StepCommitOffsets, func() (string, error) {
		if cfg.SkipGroups || prep.Offsets == nil || prep.Groups == 0 {
			return "", skip("no group offsets in the recovery point, or skip_groups")
		}
		return fmt.Sprintf("%d groups, translated through the exact offset map; each work unit committed its partitions' offsets (%d commits)", prep.Groups, res.GroupsCommitted), nil
	}); err != nil {
		return nil, err
	}

	if err := t.run(StepFinish, func() (string, error) {
		var fr activities.FinishResult
		if err := workflow.ExecuteActivity(shortOpts(ctx, 10*time.Minute, 10), a.FinishImport, activities.FinishInput{Config: cfg, RestoreID: id}).Get(ctx, &fr); err != nil {
			return "", err
		}
		r.plan = nil
		return fmt.Sprintf("retention.ms (and the timestamp type) as before the restore on %d topics", fr.Topics), nil
	}); err != nil {
		return nil, err
	}
	unpin(ctx, cfg.Source, names.KindRestore)
	return res, nil
}

// verifyAll checks every file of a recovery point in shares, parallelism
// at once, and fails naming every damaged or missing file.
func verifyAll(ctx workflow.Context, target storage.Target, vp activities.VerifyPlan, parallelism int) (int, error) {
	const perShare = 8
	n := (len(vp.Refs) + perShare - 1) / perShare
	var damaged []string
	files := 0
	_, err := fanOut(ctx, n, parallelism, func(i int) workflow.Future {
		refs := vp.Refs[i*perShare : min(len(vp.Refs), (i+1)*perShare)]
		return workflow.ExecuteActivity(longOpts(ctx), a.VerifyFiles, activities.VerifyFilesInput{Target: target, Refs: refs})
	}, func(i int, f workflow.Future) error {
		var vr activities.VerifyResult
		if err := f.Get(ctx, &vr); err != nil {
			return err
		}
		files += vr.Files
		damaged = append(damaged, vr.Damaged...)
		return nil
	}, nil, nil)
	if err != nil {
		return files, err
	}
	if len(damaged) > 0 {
		shown := damaged[:min(50, len(damaged))]
		msg := fmt.Sprintf("recovery point %s: %d of %d files damaged or missing:\n  - %s", vp.Manifest, len(damaged), files, strings.Join(shown, "\n  - "))
		if len(damaged) > len(shown) {
			msg += fmt.Sprintf("\n  - and %d more", len(damaged)-len(shown))
		}
		return files, temporal.NewNonRetryableApplicationError(msg, names.ErrChecksum, nil, shown)
	}
	return files, nil
}
