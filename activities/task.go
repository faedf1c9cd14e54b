package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/kclient"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/storage"
)

// PruneInput is the retention of one task folder.
type PruneInput struct {
	Target    storage.Target `json:"target"`
	TaskDir   string         `json:"task_dir"`
	MaxCopies int            `json:"max_copies"`
	// Current is the run's own recovery point, which is always kept.
	Current string `json:"current"`
}

// PruneResult names what retention deleted and kept.
type PruneResult struct {
	Kept         []string `json:"kept"`
	KeptForChain []string `json:"kept_for_chain,omitempty"` // beyond max copies: a kept incremental needs them
	// KeptInUse: beyond max copies, because a running restore reads them.
	KeptInUse        []string `json:"kept_in_use,omitempty"`
	DeletedManifests []string `json:"deleted_manifests,omitempty"`
	DeletedFiles     int      `json:"deleted_files"`
	DeletedBytes     int64    `json:"deleted_bytes"`
	// RemovedDirs counts the directories the deleted files left empty and
	// the prune removed.
	RemovedDirs int      `json:"removed_dirs,omitempty"`
	Foreign     []string `json:"foreign,omitempty"` // files in the folder kbr did not write: left alone
}

// PruneTask keeps the newest MaxCopies recovery points of a task and every
// one a kept incremental or a restore needs (backupset.PlanRetention). It
// deletes the unkept manifests first, then every kbr file of the folder no
// kept manifest lists, so an interrupted prune never leaves a kept recovery
// point broken and the next prune removes what this one left. Nothing is
// deleted unless every kept recovery point reads.
func (a *Activities) PruneTask(ctx context.Context, in PruneInput) (*PruneResult, error) {
	if in.MaxCopies < 1 {
		return nil, badInput("max_copies: %d, want at least 1", in.MaxCopies)
	}
	b, release, err := a.target(ctx, in.Target)
	if err != nil {
		return nil, err
	}
	defer release()
	files, err := b.List(ctx, in.TaskDir+"/")
	if err != nil {
		return nil, permanent(err)
	}
	// Temporary files of writes a killed worker left: no run of this task
	// writes now (the cluster lock), so none is in progress.
	if partials, err := storage.ListPartial(ctx, b, in.TaskDir+"/"); err == nil {
		files = append(files, partials...)
	} else if !errors.Is(err, storage.ErrUnsupported) {
		return nil, fmt.Errorf("retention: list partial files: %w", err)
	}
	sizes := make(map[string]int64, len(files))
	ri := backupset.RetentionInput{TaskDir: in.TaskDir, MaxCopies: in.MaxCopies, Current: in.Current,
		Manifests: taskManifests(files), Links: map[string]backupset.ChainLink{}}
	for _, f := range files {
		ri.Files = append(ri.Files, f.Name)
		sizes[f.Name] = f.Size
	}
	// What running restores read stays, with its chain, until they end.
	if ri.InUse, err = a.recoveryPointsInUse(ctx, in.TaskDir); err != nil {
		return nil, fmt.Errorf("retention: which recovery points running restores read, nothing deleted: %w", err)
	}
	pins, err := a.pinnedRecoveryPoints(ctx, b, in.TaskDir)
	if err != nil {
		return nil, fmt.Errorf("retention: the recovery points restores pinned, nothing deleted: %w", err)
	}
	if ri.InUse == nil {
		ri.InUse = map[string]bool{}
	}
	for n := range pins {
		ri.InUse[n] = true
	}
	// Load the chains of what is kept: newest max copies and in use.
	var queue []string
	for i := len(ri.Manifests) - 1; i >= 0 && len(queue) < in.MaxCopies; i-- {
		queue = append(queue, ri.Manifests[i])
	}
	for n := range ri.InUse {
		queue = append(queue, n)
	}
	if in.Current != "" {
		queue = append(queue, in.Current)
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if _, done := ri.Links[n]; done {
			continue
		}
		if _, ok := sizes[n]; !ok && !slices.Contains(ri.Manifests, n) {
			continue // in use elsewhere, or gone: nothing to keep here
		}
		l := a.chainLink(ctx, b, n)
		ri.Links[n] = l
		if l.Base != "" {
			queue = append(queue, l.Base)
		}
		activity.RecordHeartbeat(ctx, len(ri.Links))
	}
	plan, err := backupset.PlanRetention(ri)
	if err != nil {
		return nil, permanent(fmt.Errorf("retention: %w", err))
	}
	res := &PruneResult{Kept: plan.Kept, KeptForChain: plan.KeptForChain, KeptInUse: plan.KeptInUse}
	res.Foreign = plan.Foreign[:min(len(plan.Foreign), 100)]
	// Manifests first: once gone, their recovery points no longer exist.
	var deleted []string
	for _, n := range plan.Delete {
		if err := b.Delete(ctx, n); err != nil {
			return res, fmt.Errorf("retention: delete %s: %w", n, err)
		}
		deleted = append(deleted, n)
		res.DeletedManifests = append(res.DeletedManifests, n)
		activity.RecordHeartbeat(ctx, len(deleted))
	}
	if len(res.DeletedManifests) > 0 {
		faultPruneExit(a.log()) // a test hook in kbrfault builds only
	}
	for _, f := range plan.DeleteFiles {
		if err := b.Delete(ctx, f); err != nil {
			return res, fmt.Errorf("retention: delete %s: %w", f, err)
		}
		deleted = append(deleted, f)
		res.DeletedFiles++
		res.DeletedBytes += sizes[f]
		activity.RecordHeartbeat(ctx, len(deleted)) // the SDK throttles these
	}
	// The directories the deleted files leave empty (a recovery point's
	// data folder), up to the task folder, which holds the kept ones.
	removed, _, err := storage.RemoveEmptyDirs(ctx, b, deleted, in.TaskDir)
	res.RemovedDirs = removed
	if err != nil {
		return res, fmt.Errorf("retention: remove empty directories: %w", err)
	}
	return res, nil
}

// recoveryPointsInUse names the recovery points of taskDir that running
// restores (and any other running kbr run but a backup) read: their runs
// carry the recovery point as a search attribute once they resolved it.
// Without a Temporal client (tests driving activities alone) none is.
func (a *Activities) recoveryPointsInUse(ctx context.Context, taskDir string) (map[string]bool, error) {
	if a.Temporal == nil {
		return nil, nil
	}
	q := fmt.Sprintf("ExecutionStatus = 'Running' AND %s != '%s'", names.AttrKind, names.KindBackup)
	inUse := map[string]bool{}
	var token []byte
	for {
		resp, err := a.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, PageSize: 1000, NextPageToken: token})
		if err != nil {
			return nil, err
		}
		for _, e := range resp.Executions {
			p, ok := e.GetSearchAttributes().GetIndexedFields()[names.AttrRecoveryPoint]
			var rp string
			if ok && converter.GetDefaultDataConverter().FromPayload(p, &rp) == nil && strings.HasPrefix(rp, taskDir+"/") {
				inUse[rp] = true
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return inUse, nil
		}
	}
}

// CheckTopics is the read-only check a task gets before it is stored: the
// cluster answers and every include pattern matches at least one topic.
func (a *Activities) CheckTopics(ctx context.Context, cfg config.Backup) error {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return badInput("%v", err)
	}
	cl, release, err := a.kafka(ctx, cfg.Cluster)
	if err != nil {
		return err
	}
	defer release()
	pctx, cancel := context.WithTimeout(ctx, cfg.Cluster.ConnectTimeout.D())
	defer cancel()
	if _, err := kclient.Ping(pctx, cfg.Cluster, cl); err != nil {
		return badInput("%v", err)
	}
	topics, err := kadm.NewClient(cl).ListTopicsWithInternal(ctx)
	if err != nil {
		return fmt.Errorf("cluster %s: list topics: %w", cfg.Cluster.Name, err)
	}
	var refs []TopicRef
	for _, t := range topics.Sorted() {
		refs = append(refs, TopicRef{Name: t.Topic})
	}
	for i, p := range cfg.Topics.Include {
		if !anyMatch(p, refs) {
			return badInput("topics.include[%d]: %q matches no topic of cluster %s", i, p, cfg.Cluster.Name)
		}
	}
	return nil
}
