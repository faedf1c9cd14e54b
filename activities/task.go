package activities

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/kclient"
	"github.com/kbr-project/kbr/storage"
)

// PlanRunInput asks whether a run of a task is full or incremental.
type PlanRunInput struct {
	Target    storage.Target `json:"target"`
	TaskDir   string         `json:"task_dir"`
	Policy    string         `json:"policy"`
	FullEvery int            `json:"full_every,omitempty"`
	MaxCopies int            `json:"max_copies,omitempty"`
}

// RunPlan is the decision, with its reason for the history.
type RunPlan struct {
	Kind   string `json:"kind"` // full | incremental
	Base   string `json:"base,omitempty"`
	Reason string `json:"reason"`
	// Chain is how many recovery points the new one's chain will hold.
	Chain int `json:"chain"`
}

// PlanRun applies the task's policy to the recovery points in its folder:
// full every time; full first, then incremental; or a full once every n
// runs. An incremental run needs the previous recovery point's chain intact
// (every file present with its size); otherwise the run is full and says why.
func (a *Activities) PlanRun(ctx context.Context, in PlanRunInput) (*RunPlan, error) {
	if in.Policy == config.PolicyFull || in.Policy == "" {
		return &RunPlan{Kind: backupset.KindFull, Reason: "policy: full every time", Chain: 1}, nil
	}
	b, err := a.openTarget(ctx, in.Target)
	if err != nil {
		return nil, permanent(err)
	}
	defer b.Close()
	files, err := b.List(ctx, in.TaskDir+"/")
	if err != nil {
		return nil, permanent(err)
	}
	manifests := taskManifests(files)
	if len(manifests) == 0 {
		return &RunPlan{Kind: backupset.KindFull, Reason: "first run of the task", Chain: 1}, nil
	}
	latest := manifests[len(manifests)-1]
	sizes := map[string]int64{}
	for _, f := range files {
		sizes[f.Name] = f.Size
	}
	chain := 0
	for name := latest; name != ""; {
		m, err := a.loadManifest(ctx, b, name)
		if err != nil {
			return &RunPlan{Kind: backupset.KindFull, Reason: fmt.Sprintf("previous recovery point unreadable (%v)", err), Chain: 1}, nil
		}
		for _, f := range m.Files() {
			if sz, ok := sizes[f.Name]; !ok || sz != f.Size {
				return &RunPlan{Kind: backupset.KindFull, Reason: fmt.Sprintf("previous chain is broken: %s missing or resized", f.Name), Chain: 1}, nil
			}
		}
		chain++
		name = m.Base
		if _, ok := sizes[name]; name != "" && !ok {
			return &RunPlan{Kind: backupset.KindFull, Reason: fmt.Sprintf("previous chain is broken: base %s missing", name), Chain: 1}, nil
		}
	}
	if in.Policy == config.PolicyFullEveryN && chain >= in.FullEvery {
		return &RunPlan{Kind: backupset.KindFull, Reason: fmt.Sprintf("policy: a full once every %d runs", in.FullEvery), Chain: 1}, nil
	}
	// A chain longer than max copies could never be pruned: start a new one.
	if in.MaxCopies > 0 && chain+1 > in.MaxCopies {
		return &RunPlan{Kind: backupset.KindFull, Reason: fmt.Sprintf("an incremental would make a chain of %d, over max copies %d: a new full starts a new chain", chain+1, in.MaxCopies), Chain: 1}, nil
	}
	return &RunPlan{Kind: backupset.KindIncremental, Base: latest, Chain: chain + 1,
		Reason: fmt.Sprintf("incremental after %s", latest)}, nil
}

// taskManifests lists the manifest names among files, oldest first.
func taskManifests(files []storage.FileInfo) []string {
	type mf struct {
		name string
		at   int64
	}
	var ms []mf
	for _, f := range files {
		if _, _, executed, ok := backupset.ParseManifestName(f.Name); ok {
			ms = append(ms, mf{f.Name, executed.UnixNano()})
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].at < ms[j].at })
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.name
	}
	return out
}

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
// one a kept incremental needs. It deletes the unkept manifests first, then
// every kbr file of the folder no kept manifest lists, so an interrupted
// prune never leaves a kept recovery point broken and the next prune removes
// what this one left. Nothing is deleted unless every kept manifest reads.
func (a *Activities) PruneTask(ctx context.Context, in PruneInput) (*PruneResult, error) {
	if in.MaxCopies < 1 {
		return nil, badInput("max_copies: %d, want at least 1", in.MaxCopies)
	}
	b, err := a.openTarget(ctx, in.Target)
	if err != nil {
		return nil, permanent(err)
	}
	defer b.Close()
	files, err := b.List(ctx, in.TaskDir+"/")
	if err != nil {
		return nil, permanent(err)
	}
	manifests := taskManifests(files)
	res := &PruneResult{}
	keep := map[string]bool{}
	if in.Current != "" {
		keep[in.Current] = true
	}
	for i := len(manifests) - 1; i >= 0 && len(keep) < in.MaxCopies; i-- {
		keep[manifests[i]] = true
	}
	// What running restores read stays, with its chain, until they end.
	inUse, err := a.recoveryPointsInUse(ctx, in.TaskDir)
	if err != nil {
		return nil, fmt.Errorf("retention: which recovery points running restores read, nothing deleted: %w", err)
	}
	for _, n := range manifests {
		if inUse[n] && !keep[n] {
			keep[n] = true
			res.KeptInUse = append(res.KeptInUse, n)
		}
	}
	// The chains of the kept ones.
	wanted := map[string]bool{}
	var queue []string
	for n := range keep {
		queue = append(queue, n)
	}
	sort.Strings(queue)
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if wanted[n] {
			continue
		}
		m, err := a.loadManifest(ctx, b, n)
		if err != nil {
			return nil, permanent(fmt.Errorf("retention: kept recovery point %s unreadable, nothing deleted: %w", n, err))
		}
		activity.RecordHeartbeat(ctx, res)
		wanted[n] = true
		if !keep[n] {
			res.KeptForChain = append(res.KeptForChain, n)
		}
		for _, f := range m.Files() {
			wanted[f.Name] = true
		}
		if m.Base != "" {
			queue = append(queue, m.Base)
		}
	}
	for _, n := range manifests {
		if wanted[n] {
			res.Kept = append(res.Kept, n)
		}
	}
	// Manifests first: once gone, their recovery points no longer exist.
	var deleted []string
	for _, n := range manifests {
		if wanted[n] {
			continue
		}
		if err := b.Delete(ctx, n); err != nil {
			return res, fmt.Errorf("retention: delete %s: %w", n, err)
		}
		deleted = append(deleted, n)
		res.DeletedManifests = append(res.DeletedManifests, n)
		activity.RecordHeartbeat(ctx, res)
	}
	if len(res.DeletedManifests) > 0 {
		faultPruneExit(a.log()) // a no-op unless built with -tags kbrfault (fault_kbrfault.go)
	}
	// Temporary files of writes a killed worker left: no run of this task
	// writes now (the cluster lock), so none is in progress.
	if partials, err := storage.ListPartial(ctx, b, in.TaskDir+"/"); err == nil {
		files = append(files, partials...)
	} else if !errors.Is(err, storage.ErrUnsupported) {
		return res, fmt.Errorf("retention: list partial files: %w", err)
	}
	for _, f := range files {
		if wanted[f.Name] {
			continue
		}
		if dir, _, _, _, ok := backupset.ParseEntry(f.Name); !ok || dir != in.TaskDir {
			res.Foreign = append(res.Foreign, f.Name)
			continue
		}
		if err := b.Delete(ctx, f.Name); err != nil {
			return res, fmt.Errorf("retention: delete %s: %w", f.Name, err)
		}
		deleted = append(deleted, f.Name)
		res.DeletedFiles++
		res.DeletedBytes += f.Size
		activity.RecordHeartbeat(ctx, res) // the SDK throttles these
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

// Search attributes every kbr run carries (workflows.SA* are built from
// these names): what a run is, and the recovery point it writes or reads.
const (
	SearchAttrKind          = "KbrKind"
	SearchAttrRecoveryPoint = "KbrRecoveryPoint"
)

// recoveryPointsInUse names the recovery points of taskDir that running
// restores (and any other running kbr run but a backup) read: their runs
// carry the recovery point as a search attribute once they resolved it.
// Without a Temporal client (tests driving activities alone) none is.
func (a *Activities) recoveryPointsInUse(ctx context.Context, taskDir string) (map[string]bool, error) {
	if a.Temporal == nil {
		return nil, nil
	}
	q := fmt.Sprintf("ExecutionStatus = 'Running' AND %s != 'backup'", SearchAttrKind)
	inUse := map[string]bool{}
	var token []byte
	for {
		resp, err := a.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, PageSize: 1000, NextPageToken: token})
		if err != nil {
			return nil, err
		}
		for _, e := range resp.Executions {
			p, ok := e.GetSearchAttributes().GetIndexedFields()[SearchAttrRecoveryPoint]
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
	cl, err := kclient.New(cfg.Cluster)
	if err != nil {
		return badInput("%v", err)
	}
	defer cl.Close()
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
