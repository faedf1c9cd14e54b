package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/kclient"
	"github.com/kbr-project/kbr/internal/kdata"
	"github.com/kbr-project/kbr/internal/kmeta"
	"github.com/kbr-project/kbr/internal/metaarchive"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/internal/restoreplan"
	"github.com/kbr-project/kbr/internal/schemareg"
	"github.com/kbr-project/kbr/storage"
)

// RecoveryPoint summarises a verified recovery point.
type RecoveryPoint struct {
	Manifest     string    `json:"manifest"`
	Task         string    `json:"task"`
	Cluster      string    `json:"cluster"`
	ClusterID    string    `json:"cluster_id"`
	KafkaVersion string    `json:"kafka_version"`
	ExecutedAt   time.Time `json:"executed_at"`
	Format       int       `json:"format,omitempty"`
	// Topics names the first topics (TopicCount says how many there are).
	Topics     []string `json:"topics"`
	TopicCount int      `json:"topic_count,omitempty"`
	Partitions int      `json:"partitions"`
	Records    int64    `json:"records"`
	Bytes      int64    `json:"bytes"`
	Files      int      `json:"files"`
	// Chain names the recovery points an incremental one reads.
	Chain []string `json:"chain,omitempty"`
	// Lost says what the backup could not read (records deleted by
	// retention first).
	Lost *backupset.LostSummary `json:"lost,omitempty"`
}

// VerifyInput names a recovery point on a target.
type VerifyInput struct {
	Source config.Source `json:"source"`
}

// ResolveRecoveryPoint finds the manifest a source names ("latest" or a
// manifest name) and checks every file of it and its chain: present, same
// size, same SHA-256. Damaged or missing files are all named in one error.
// Restores and verify check by work unit (PlanVerify, VerifyFiles); this is
// the whole check in one activity, for the metadata restores.
func (a *Activities) ResolveRecoveryPoint(ctx context.Context, in VerifyInput) (*RecoveryPoint, error) {
	b, release, err := a.target(ctx, in.Source.Target)
	if err != nil {
		return nil, err
	}
	defer release()
	name, err := resolveName(ctx, b, in)
	if err != nil {
		return nil, err
	}
	v, err := a.loadView(ctx, b, name)
	if err != nil {
		return nil, permanent(err)
	}
	refs := verifyRefs(v, a.chainOf(ctx, b, v))
	damaged, files := a.verify(ctx, b, refs)
	if len(damaged) > 0 {
		return nil, checksumFailure(name, damaged, files)
	}
	return summarize(name, v), nil
}

func checksumFailure(name string, damaged []string, files int) error {
	shown := damaged[:min(len(damaged), 50)]
	more := ""
	if len(damaged) > len(shown) {
		more = fmt.Sprintf("\n  - and %d more", len(damaged)-len(shown))
	}
	msg := fmt.Sprintf("recovery point %s: %d of %d files damaged or missing:\n  - %s%s", name, len(damaged), files, strings.Join(shown, "\n  - "), more)
	return temporal.NewNonRetryableApplicationError(msg, names.ErrChecksum, nil, shown)
}

// ResolveName is the manifest a source names: "latest" (of its task, if it
// names one) resolved, or the name it gives. Nothing is read but the
// listing, so a restore can announce what it reads before verifying it.
func (a *Activities) ResolveName(ctx context.Context, in VerifyInput) (string, error) {
	if in.Source.RecoveryPoint != "latest" {
		return in.Source.RecoveryPoint, nil
	}
	b, release, err := a.target(ctx, in.Source.Target)
	if err != nil {
		return "", err
	}
	defer release()
	return resolveName(ctx, b, in)
}

func resolveName(ctx context.Context, b storage.Backend, in VerifyInput) (string, error) {
	name := in.Source.RecoveryPoint
	if name != "latest" {
		return name, nil
	}
	all, err := ListRecoveryPoints(ctx, b)
	if err != nil {
		return "", permanent(err)
	}
	for i := len(all) - 1; i >= 0; i-- {
		if in.Source.Task == "" || all[i].Task == in.Source.Task {
			return all[i].Manifest, nil
		}
	}
	return "", badInput("source.recovery_point: no recovery point on %s%s", in.Source.Target, forTask(in.Source.Task))
}

func forTask(t string) string {
	if t == "" {
		return ""
	}
	return " for task " + t
}

func summarize(name string, v *backupset.View) *RecoveryPoint {
	m := v.Manifest
	rp := &RecoveryPoint{Manifest: name, Task: m.Task, Cluster: m.Cluster, ClusterID: m.ClusterID, KafkaVersion: m.KafkaVersion,
		ExecutedAt: m.ExecutedAt, Format: m.Format, Partitions: len(m.Partitions), Bytes: m.Totals.Bytes, Files: m.Totals.Files, Lost: m.Lost}
	if len(v.Chain) > 1 {
		rp.Chain = v.Chain
	}
	seen := map[string]bool{}
	for _, p := range m.Partitions {
		rp.Records += p.Records
		if !seen[p.Topic] {
			seen[p.Topic] = true
			rp.TopicCount++
			if len(rp.Topics) < 100 {
				rp.Topics = append(rp.Topics, p.Topic)
			}
		}
	}
	sort.Strings(rp.Topics)
	return rp
}

// ListRecoveryPoints lists every manifest on a target, oldest first.
func ListRecoveryPoints(ctx context.Context, b storage.Backend) ([]RecoveryPoint, error) {
	files, err := b.List(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []RecoveryPoint
	for _, f := range files {
		taskDir, version, executed, ok := backupset.ParseManifestName(f.Name)
		if !ok {
			continue
		}
		task, _, _ := backupset.ParseTaskDir(taskDir)
		out = append(out, RecoveryPoint{Manifest: f.Name, Task: task, KafkaVersion: version, ExecutedAt: executed, Bytes: f.Size})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ExecutedAt.Before(out[j].ExecutedAt) })
	return out, nil
}

// SummarizeRecoveryPoint reads a manifest (and its parts) and summarises
// it, without verifying its data files. It is a helper of the CLI, not an
// activity.
func SummarizeRecoveryPoint(ctx context.Context, b storage.Backend, name string) (*RecoveryPoint, error) {
	var a Activities
	v, err := a.loadView(ctx, b, name)
	if err != nil {
		return nil, err
	}
	return summarize(name, v), nil
}

// ---------------------------------------------------------------------------
// Verify, by work unit.

// VerifyRef is a share of a recovery point's files to check: a recovery
// point's own files (Part -1: metadata, offsets, parts, or every segment of
// format 1), or the packs of one of its parts.
type VerifyRef struct {
	Manifest string `json:"manifest"`
	Part     int    `json:"part"`
}

// VerifyPlan is how a recovery point's check splits.
type VerifyPlan struct {
	Manifest string         `json:"manifest"`
	Chain    []string       `json:"chain"`
	Refs     []VerifyRef    `json:"refs"`
	Summary  *RecoveryPoint `json:"summary"`
}

// PlanVerify reads a recovery point and its chain (the manifests and parts
// are checked against their index as they are read) and splits the check of
// every data file into shares.
func (a *Activities) PlanVerify(ctx context.Context, in VerifyInput) (*VerifyPlan, error) {
	b, release, err := a.target(ctx, in.Source.Target)
	if err != nil {
		return nil, err
	}
	defer release()
	name, err := resolveName(ctx, b, in)
	if err != nil {
		return nil, err
	}
	v, err := a.loadView(ctx, b, name)
	if err != nil {
		return nil, permanent(err)
	}
	chain := a.chainOf(ctx, b, v)
	return &VerifyPlan{Manifest: name, Chain: v.Chain, Refs: verifyRefs(v, chain), Summary: summarize(name, v)}, nil
}

// chainOf loads the manifests of a view's chain (cached).
func (a *Activities) chainOf(ctx context.Context, b storage.Backend, v *backupset.View) []*backupset.Manifest {
	var out []*backupset.Manifest
	for _, n := range v.Chain {
		m, err := a.loadManifest(ctx, b, n)
		if err != nil {
			continue // the view read it: only a cache race
		}
		out = append(out, m)
	}
	return out
}

func verifyRefs(v *backupset.View, chain []*backupset.Manifest) []VerifyRef {
	var refs []VerifyRef
	for i, m := range chain {
		refs = append(refs, VerifyRef{Manifest: v.Chain[i], Part: -1})
		for k := range m.Parts {
			refs = append(refs, VerifyRef{Manifest: v.Chain[i], Part: k})
		}
	}
	return refs
}

// VerifyFilesInput is shares of a recovery point's check.
type VerifyFilesInput struct {
	Target storage.Target `json:"target"`
	Refs   []VerifyRef    `json:"refs"`
}

// VerifyResult is what a check found.
type VerifyResult struct {
	Files   int      `json:"files"`
	Bytes   int64    `json:"bytes"`
	Damaged []string `json:"damaged,omitempty"`
}

// VerifyFiles re-reads every file of its shares and checks its size and
// SHA-256, several at once. Damaged or missing files are returned, not
// failed on, so a check names all of them.
func (a *Activities) VerifyFiles(ctx context.Context, in VerifyFilesInput) (*VerifyResult, error) {
	b, release, err := a.target(ctx, in.Target)
	if err != nil {
		return nil, err
	}
	defer release()
	damaged, files := a.verify(ctx, b, in.Refs)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &VerifyResult{Files: files, Damaged: damaged}, nil
}

// verify checks the files of refs; it returns the damaged ones and how many
// files it checked.
func (a *Activities) verify(ctx context.Context, b storage.Backend, refs []VerifyRef) ([]string, int) {
	var files []backupset.FileEntry
	var damaged []string
	for _, r := range refs {
		l, err := a.loadRecoveryPoint(ctx, b, r.Manifest)
		if err != nil {
			damaged = append(damaged, err.Error())
			continue
		}
		switch {
		case r.Part < 0:
			files = append(files, l.Manifest.Files()...)
		case r.Part < len(l.Parts):
			files = append(files, l.Parts[r.Part].Files...)
		default:
			damaged = append(damaged, fmt.Sprintf("recovery point %s has no part %d", r.Manifest, r.Part))
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	var done int
	for _, f := range files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := readVerified(ctx, b, f, func(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err })
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				damaged = append(damaged, err.Error())
			}
			done++
			activity.RecordHeartbeat(ctx, done)
		}()
	}
	wg.Wait()
	sort.Strings(damaged)
	return damaged, len(files)
}

// ---------------------------------------------------------------------------
// Prepare: the topics, the bases, the units.

// PrepareInput is a restore about to write.
type PrepareInput struct {
	Config   config.Restore `json:"config"`
	Manifest string         `json:"manifest"`
	// RestoreID is the restore's workflow id: its bookmarks carry it.
	RestoreID string `json:"restore_id"`
}

// TopicMapping is a restored topic.
type TopicMapping struct {
	Source  string `json:"source"`
	Target  string `json:"target"`
	Created bool   `json:"created"`
	Resumed bool   `json:"resumed,omitempty"`
	Note    string `json:"note,omitempty"`
}

// PrepareResult is a restore's plan, fixed before any record is written:
// the work units (their partitions' bases are in the bookmarks), the
// offsets file the group offsets come from, and what it did to topics.
type PrepareResult struct {
	Units []restoreplan.UnitRef `json:"units"`
	// Topics names the first topics (TopicCount says how many).
	Topics     []TopicMapping       `json:"topics"`
	TopicCount int                  `json:"topic_count"`
	Partitions int                  `json:"partitions"`
	Records    int64                `json:"records"`
	Offsets    *backupset.FileEntry `json:"offsets,omitempty"`
	Groups     int                  `json:"groups"`
	Warnings   []string             `json:"warnings,omitempty"`
	Resumed    bool                 `json:"resumed,omitempty"`
}

// bookmarkGroup is where a restore keeps its bookmarks on the target
// cluster: the committed offset of each target partition is its base (the
// end offset before the restore wrote), and partition 0's commit metadata
// holds the topic's original settings (restoreplan.TopicInfo). A retried
// restore reads them back, so it produces only what had not landed and sets
// back what the first run found. The group is deleted when the restore
// ends successfully.
func bookmarkGroup(restoreID string) string { return "kbr-restore-" + restoreID }

func readBookmarks(ctx context.Context, adm *kadm.Client, group string, topics []string) (map[string]restoreplan.Bookmark, error) {
	out := map[string]restoreplan.Bookmark{}
	want := map[string]bool{}
	for _, t := range topics {
		want[t] = true
	}
	resp, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = resp.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) {
		return out, nil // no earlier run wrote any
	}
	if err != nil {
		return nil, fmt.Errorf("bookmarks of %s: %w", group, err)
	}
	for t, ps := range resp {
		if len(want) > 0 && !want[t] {
			continue
		}
		bm := restoreplan.Bookmark{Bases: map[int32]int64{}}
		for p, o := range ps {
			if o.Err != nil || o.At < 0 {
				continue
			}
			bm.Bases[p] = o.At
			if p == 0 && o.Metadata != "" {
				if err := json.Unmarshal([]byte(o.Metadata), &bm.Info); err != nil {
					return nil, fmt.Errorf("bookmark of %s in %s: %w", t, group, err)
				}
			}
		}
		if len(bm.Bases) > 0 {
			out[t] = bm
		}
	}
	return out, nil
}

func writeBookmarks(ctx context.Context, adm *kadm.Client, group, topic string, info restoreplan.TopicInfo, bases map[int32]int64) error {
	meta, err := json.Marshal(info)
	if err != nil {
		return err
	}
	os := kadm.Offsets{}
	for p, b := range bases {
		o := kadm.Offset{Topic: topic, Partition: p, At: b, LeaderEpoch: -1}
		if p == 0 {
			o.Metadata = string(meta)
		}
		os.Add(o)
	}
	resp, err := adm.CommitOffsets(ctx, group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("bookmark the bases of %s in group %s: %w", topic, group, err)
	}
	return nil
}

// PrepareImport checks the target and creates the topics (restoreplan):
// partition counts and configs as backed up, time retention relaxed while
// old records arrive, LogAppendTime topics CreateTime meanwhile. A target
// topic holding data is refused unless allow_nonempty, or unless this
// restore's own earlier run wrote it (its bookmarks say so). Every check
// runs before the first topic is created. Then it fixes each partition's
// base offset in the bookmarks and splits the partitions into work units.
func (a *Activities) PrepareImport(ctx context.Context, in PrepareInput) (*PrepareResult, error) {
	cfg := in.Config
	b, releaseT, err := a.target(ctx, cfg.Source.Target)
	if err != nil {
		return nil, err
	}
	defer releaseT()
	v, err := a.loadView(ctx, b, in.Manifest)
	if err != nil {
		return nil, permanent(err)
	}
	rename, _ := cfg.RenameMap()
	var snap *kmeta.Snapshot
	if v.Metadata != nil {
		err := readVerified(ctx, b, *v.Metadata, func(r io.Reader) error {
			var err error
			snap, _, err = metaarchive.ReadArchive(r)
			return err
		})
		if err != nil {
			return nil, permanent(err)
		}
	}
	res := &PrepareResult{}
	if !cfg.SkipGroups {
		res.Offsets = v.Offsets
		if cfg.ToTime != nil {
			var note string
			if res.Offsets, note, err = a.offsetsAsOf(ctx, b, in.Manifest, *cfg.ToTime); err != nil {
				return nil, permanent(err)
			}
			if note != "" {
				res.Warnings = append(res.Warnings, note)
			}
		}
	}

	cl, release, err := a.kafka(ctx, cfg.Cluster)
	if err != nil {
		return nil, err
	}
	defer release()
	if err := pingCluster(ctx, cfg.Cluster, cl); err != nil {
		return nil, err
	}
	adm := kadm.NewClient(cl)
	brokers, err := adm.ListBrokers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list brokers: %w", err)
	}
	// The targets' names, to read what exists and what earlier runs left.
	var targets []string
	for _, t := range selectedTopics(v, cfg.Topics) {
		dst := t
		if r, ok := rename[t]; ok && r != "" {
			dst = r
		}
		targets = append(targets, dst)
	}
	existing, err := targetTopics(ctx, adm, targets)
	if err != nil {
		return nil, err
	}
	// What an earlier attempt of this activity was creating when it ended:
	// those topics are the restore's own even though no bookmark says so
	// yet (it failed between creating them and bookmarking them).
	var prev prepareBeat
	if activity.HasHeartbeatDetails(ctx) && activity.GetHeartbeatDetails(ctx, &prev) == nil {
		for _, name := range prev.Creating {
			if tt, ok := existing[name]; ok {
				tt.Ours = true
				existing[name] = tt
			}
		}
	}
	beat := &beatHolder{}
	defer keepBeating(ctx, func() any { return beat.get() })()
	group := bookmarkGroup(in.RestoreID)
	bookmarks, err := readBookmarks(ctx, adm, group, targets)
	if err != nil {
		return nil, err
	}
	plan, err := restoreplan.PlanTopics(restoreplan.Input{View: v, Snapshot: snap, Topics: cfg.Topics, Rename: rename,
		AllowNonEmpty: cfg.AllowNonEmpty, ReplicationFactor: cfg.Options.ReplicationFactor, TargetBrokers: len(brokers),
		Existing: existing, Bookmarks: bookmarks}, names.ErrNonEmpty, names.ErrBadInput)
	if err != nil {
		var pe *restoreplan.Error
		if errors.As(err, &pe) {
			return nil, badInputTyped(pe.Msg, pe.Type)
		}
		return nil, err
	}
	res.Warnings = append(res.Warnings, plan.Warnings...)

	// Create what is missing, relax what exists.
	var create []kmeta.TopicPlan
	for _, t := range plan.Topics {
		if !t.Exists {
			create = append(create, t.TopicPlan)
			create[len(create)-1].Configs = t.Configs
		}
	}
	created := map[string]bool{}
	if len(create) > 0 {
		// Said before the topics exist, so that a retry knows them as ours.
		var making []string
		for _, c := range create {
			making = append(making, c.Target)
		}
		making = append(making, prev.Creating...)
		beat.set(making)
		activity.RecordHeartbeat(ctx, beat.get())
		results, err := kmeta.CreateTopics(ctx, cl, create)
		faultPrepareExit(activity.GetLogger(ctx), activity.GetInfo(ctx).Attempt)
		if err != nil {
			return nil, fmt.Errorf("create topics: %w", err)
		}
		for _, r := range results {
			if !r.Existed {
				created[r.Target] = true
			}
		}
	}
	for _, t := range plan.Topics {
		if t.Exists && !t.Resumed {
			if err := relax(ctx, adm, t.Target, t.Info); err != nil {
				return nil, err
			}
		}
	}
	// Fix the bases before anything is written: the end offsets now, or
	// what an earlier run bookmarked.
	ends, err := adm.ListEndOffsets(ctx, targets...)
	if err != nil {
		return nil, fmt.Errorf("end offsets: %w", err)
	}
	for _, t := range plan.Topics {
		e := map[int32]int64{}
		for p := int32(0); p < t.Partitions; p++ {
			o, ok := ends.Lookup(t.Target, p)
			if !ok || o.Err != nil {
				return nil, fmt.Errorf("end offset of %s[%d]: %v (found %v)", t.Target, p, o.Err, ok)
			}
			e[p] = o.Offset
		}
		bm := bookmarks[t.Target]
		bases := restoreplan.Bases(t, bm, e)
		if !t.Resumed || len(bm.Bases) < int(t.Partitions) {
			if err := writeBookmarks(ctx, adm, group, t.Target, t.Info, bases); err != nil {
				return nil, err
			}
		}
		res.TopicCount++
		res.Resumed = res.Resumed || t.Resumed
		if len(res.Topics) < 100 {
			res.Topics = append(res.Topics, TopicMapping{Source: t.Source, Target: t.Target, Created: t.Info.Created, Resumed: t.Resumed, Note: t.Note})
		}
	}
	res.Units = restoreplan.Units(v, plan.Selected(), restoreplan.UnitOptions{Parallelism: cfg.Options.Parallelism,
		MaxPartitions: cfg.Options.UnitPartitions, MaxBytes: config.DefaultUnitBytes})
	for _, u := range res.Units {
		res.Partitions += u.Partitions
		res.Records += u.Records
	}
	if res.Offsets != nil {
		of, err := a.offsetsFile(ctx, b, *res.Offsets)
		if err != nil {
			return nil, permanent(err)
		}
		sel := plan.Selected()
		for _, g := range of.Groups {
			for _, o := range g.Offsets {
				if sel[o.Topic] {
					res.Groups++
					break
				}
			}
		}
	}
	return res, nil
}

// selectedTopics are the source topics a restore reads.
func selectedTopics(v *backupset.View, topics []string) []string {
	if len(topics) > 0 {
		return topics
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range v.Partitions {
		if !seen[p.Topic] {
			seen[p.Topic] = true
			out = append(out, p.Topic)
		}
	}
	sort.Strings(out)
	return out
}

// targetTopics reads the target topics that exist: partitions, records
// held, retention override and timestamp type. A failed lookup is an error,
// never an empty topic.
// prepareBeat is PrepareImport's heartbeat: the topics it creates.
type prepareBeat struct {
	Creating []string `json:"creating,omitempty"`
}

// beatHolder is the heartbeat a background ticker sends, set as work goes.
type beatHolder struct {
	mu  sync.Mutex
	cur prepareBeat
}

func (b *beatHolder) set(names []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cur = prepareBeat{Creating: names}
}

func (b *beatHolder) get() prepareBeat {
	b.mu.Lock()
	defer b.mu.Unlock()
	return prepareBeat{Creating: append([]string(nil), b.cur.Creating...)}
}

func targetTopics(ctx context.Context, adm *kadm.Client, targets []string) (map[string]restoreplan.TargetTopic, error) {
	out := map[string]restoreplan.TargetTopic{}
	if len(targets) == 0 {
		return out, nil
	}
	listed, err := adm.ListTopics(ctx, targets...)
	if err != nil {
		return nil, fmt.Errorf("list target topics: %w", err)
	}
	var present []string
	for _, t := range targets {
		if td, ok := listed[t]; ok && td.Err == nil {
			present = append(present, t)
		}
	}
	if len(present) == 0 {
		return out, nil
	}
	starts, err := adm.ListStartOffsets(ctx, present...)
	if err != nil {
		return nil, fmt.Errorf("start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, present...)
	if err != nil {
		return nil, fmt.Errorf("end offsets: %w", err)
	}
	configs, err := adm.DescribeTopicConfigs(ctx, present...)
	if err != nil {
		return nil, fmt.Errorf("describe target topics: %w", err)
	}
	for _, t := range present {
		tt := restoreplan.TargetTopic{Partitions: int32(len(listed[t].Partitions))}
		for p := int32(0); p < tt.Partitions; p++ {
			s, ok1 := starts.Lookup(t, p)
			e, ok2 := ends.Lookup(t, p)
			if !ok1 || !ok2 || s.Err != nil || e.Err != nil {
				return nil, fmt.Errorf("records held by %s[%d]: start %v, end %v (listed %v %v): cannot tell whether it is empty", t, p, s.Err, e.Err, ok1, ok2)
			}
			tt.Held += e.Offset - s.Offset
		}
		rc, err := configs.On(t, nil)
		if err != nil || rc.Err != nil {
			return nil, fmt.Errorf("configs of %s: %v %v", t, err, rc.Err)
		}
		for _, c := range rc.Configs {
			switch {
			case c.Key == "retention.ms" && c.Source == kmsg.ConfigSourceDynamicTopicConfig && c.Value != nil:
				v := *c.Value
				tt.Retention = &v
			case c.Key == "message.timestamp.type" && c.Value != nil:
				tt.LogAppendTime = *c.Value == "LogAppendTime"
			}
		}
		out[t] = tt
	}
	return out, nil
}

// relax sets an existing topic up for the restore: retention off, and
// CreateTime while records arrive.
func relax(ctx context.Context, adm *kadm.Client, topic string, info restoreplan.TopicInfo) error {
	minus := "-1"
	alter := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &minus}}
	if info.LogAppendTime {
		ct := "CreateTime"
		alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: "message.timestamp.type", Value: &ct})
	}
	return alterTopic(ctx, adm, topic, alter)
}

func alterTopic(ctx context.Context, adm *kadm.Client, topic string, alter []kadm.AlterConfig) error {
	resp, err := adm.AlterTopicConfigs(ctx, alter, topic)
	if err != nil {
		return fmt.Errorf("alter configs of %s: %w", topic, err)
	}
	for _, r := range resp {
		if r.Err != nil {
			return fmt.Errorf("alter configs of %s: %w", topic, r.Err)
		}
	}
	return nil
}

// offsetsAsOf picks the consumer offsets of the newest recovery point of
// the chain taken at or before t. Without one it keeps the recovery point's
// own and says so: offsets past the point in time then land at the end of
// the restored partitions.
func (a *Activities) offsetsAsOf(ctx context.Context, b storage.Backend, name string, t time.Time) (*backupset.FileEntry, string, error) {
	var latest *backupset.FileEntry
	for cur := name; cur != ""; {
		m, err := a.loadManifest(ctx, b, cur)
		if err != nil {
			return nil, "", err
		}
		if latest == nil {
			latest = m.Offsets
		}
		taken := m.ExecutedAt.Add(time.Second) // names hold whole seconds
		if m.Offsets != nil && m.Offsets.TakenAt != nil {
			taken = *m.Offsets.TakenAt
		}
		if m.Offsets != nil && !taken.After(t) {
			if cur == name {
				return m.Offsets, "", nil
			}
			return m.Offsets, fmt.Sprintf("consumer offsets as of %s, taken by recovery point %s (the newest at or before %s)",
				taken.Format(time.RFC3339Nano), cur, t.Format(time.RFC3339Nano)), nil
		}
		cur = m.Base
	}
	if latest == nil {
		return nil, "", nil
	}
	return latest, fmt.Sprintf("the backup holds no consumer offsets as of %s: the recovery point's own are used, and offsets past the point in time land at the end of each restored partition", t.Format(time.RFC3339)), nil
}

// offsetsFile reads (once per worker) a recovery point's offsets file.
func (a *Activities) offsetsFile(ctx context.Context, b storage.Backend, f backupset.FileEntry) (*backupset.OffsetsFile, error) {
	key := b.String() + "|" + f.Name
	if v, ok := a.offsets.Load(key); ok {
		return v.(*backupset.OffsetsFile), nil
	}
	var of backupset.OffsetsFile
	if err := readVerified(ctx, b, f, func(r io.Reader) error { return json.NewDecoder(r).Decode(&of) }); err != nil {
		return nil, err
	}
	a.offsets.Store(key, &of)
	return &of, nil
}

// ---------------------------------------------------------------------------
// Import a unit.

// ImportUnitInput is one work unit of a restore.
type ImportUnitInput struct {
	Config    config.Restore       `json:"config"`
	Manifest  string               `json:"manifest"`
	RestoreID string               `json:"restore_id"`
	Unit      restoreplan.UnitRef  `json:"unit"`
	Offsets   *backupset.FileEntry `json:"offsets,omitempty"`
	// SchemaIDMap (schemareg.IDMap.Encode), with schema_ids: remap, is what
	// each record's schema id is rewritten through.
	SchemaIDMap []byte `json:"schema_id_map,omitempty"`
}

// ImportUnitResult is a restored unit.
type ImportUnitResult struct {
	Index      int   `json:"index"`
	Partitions int   `json:"partitions"`
	Records    int64 `json:"records"`
	Produced   int64 `json:"produced"`
	Skipped    int64 `json:"skipped"`
	// Groups counts the groups whose offsets the unit committed, for its
	// partitions; GroupErrors names those it could not.
	Groups      int      `json:"groups"`
	GroupErrors []string `json:"group_errors,omitempty"`
	RawBatches  int64    `json:"raw_batches"`
	Rebuilt     int64    `json:"rebuilt_batches"`
	// Resent counts batches the producer sent again (retry rounds).
	Resent int64 `json:"resent_batches,omitempty"`
	// SchemaIDsRewritten and SchemaIDsUnmapped count keys and values whose
	// schema id was rewritten, or that carry an id the map lacks.
	SchemaIDsRewritten int64 `json:"schema_ids_rewritten,omitempty"`
	SchemaIDsUnmapped  int64 `json:"schema_ids_unmapped,omitempty"`
}

// ImportUnit produces a unit's records that have not landed yet (see
// kdata.ImportPartition for why this is exactly once), then commits each
// group's offsets for the unit's partitions, translated through the exact
// source to target offset map.
func (a *Activities) ImportUnit(ctx context.Context, in ImportUnitInput) (*ImportUnitResult, error) {
	cfg := in.Config
	b, releaseT, err := a.target(ctx, cfg.Source.Target)
	if err != nil {
		return nil, err
	}
	defer releaseT()
	v, err := a.loadView(ctx, b, in.Manifest)
	if err != nil {
		return nil, permanent(err)
	}
	rename, _ := cfg.RenameMap()
	selected := map[string]bool{}
	for _, t := range selectedTopics(v, cfg.Topics) {
		selected[t] = true
	}
	parts := restoreplan.UnitPartitions(v, selected, in.Unit)
	if len(parts) != in.Unit.Partitions {
		return nil, badInput("unit %d: %d partitions in the recovery point, the plan had %d", in.Unit.Index, len(parts), in.Unit.Partitions)
	}
	target := func(src string) string {
		if r, ok := rename[src]; ok && r != "" {
			return r
		}
		return src
	}
	// Committed source offsets of the unit's partitions, to translate.
	type tp struct {
		t string
		p int32
	}
	translate := map[tp][]int64{}
	var groups []kmeta.Group
	if in.Offsets != nil && !cfg.SkipGroups {
		of, err := a.offsetsFile(ctx, b, *in.Offsets)
		if err != nil {
			return nil, permanent(err)
		}
		mine := map[tp]bool{}
		for _, p := range parts {
			mine[tp{p.Topic, p.Partition}] = true
		}
		for _, g := range of.Groups {
			keep := kmeta.Group{ID: g.ID}
			for _, o := range g.Offsets {
				if mine[tp{o.Topic, o.Partition}] {
					keep.Offsets = append(keep.Offsets, o)
					translate[tp{o.Topic, o.Partition}] = append(translate[tp{o.Topic, o.Partition}], o.Offset)
				}
			}
			if len(keep.Offsets) > 0 {
				groups = append(groups, keep)
			}
		}
	}
	cl, release, err := a.kafka(ctx, cfg.Cluster)
	if err != nil {
		return nil, err
	}
	defer release()
	adm := kadm.NewClient(cl)
	var targets []string
	seen := map[string]bool{}
	for _, p := range parts {
		if t := target(p.Topic); !seen[t] {
			seen[t] = true
			targets = append(targets, t)
		}
	}
	bookmarks, err := readBookmarks(ctx, adm, bookmarkGroup(in.RestoreID), targets)
	if err != nil {
		return nil, err
	}
	maxBytes, err := maxMessageBytes(ctx, adm, targets)
	if err != nil {
		return nil, err
	}
	a.init()
	spec := kdata.ImportSpec{Compression: cfg.Options.ProducerCompression, MaxBatchBytes: maxBytes,
		ThrottleBytesS: int64(cfg.Options.ThrottleBytesPerSecond), Budget: a.budget}
	if cfg.ToTime != nil {
		spec.ToTime = *cfg.ToTime
	}
	if len(in.SchemaIDMap) > 0 {
		m, err := schemareg.DecodeIDMap(in.SchemaIDMap)
		if err != nil {
			return nil, badInput("unit %d: %v", in.Unit.Index, err)
		}
		spec.RemapSchemaIDs = m.Remap()
	}
	for _, p := range parts {
		dst := target(p.Topic)
		base, ok := bookmarks[dst].Bases[p.Partition]
		if !ok {
			return nil, permanent(fmt.Errorf("restore %s[%d]: no base offset in bookmark group %s: was the restore prepared, or its bookmarks deleted?", dst, p.Partition, bookmarkGroup(in.RestoreID)))
		}
		tr := translate[tp{p.Topic, p.Partition}]
		sort.Slice(tr, func(i, j int) bool { return tr[i] < tr[j] })
		spec.Partitions = append(spec.Partitions, kdata.ImportPartition{SourceTopic: p.Topic, TargetTopic: dst, Partition: p.Partition,
			Base: base, MinOffset: p.StartOffset, Sources: p.Sources, Translate: tr})
	}
	stop := make(chan struct{})
	defer close(stop)
	var mu sync.Mutex
	var live int64
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				mu.Lock()
				n := live
				mu.Unlock()
				activity.RecordHeartbeat(ctx, n)
			case <-stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	res, err := kdata.Import(ctx, cl, b, spec, func(n int64) {
		mu.Lock()
		live = n
		mu.Unlock()
		activity.RecordHeartbeat(ctx, n)
	})
	if err != nil {
		return nil, permanent(err)
	}
	out := &ImportUnitResult{Index: in.Unit.Index, Partitions: len(parts), RawBatches: res.RawBatches, Rebuilt: res.Rebuilt,
		Resent: res.Resent, SchemaIDsRewritten: res.SchemaIDsRewritten, SchemaIDsUnmapped: res.SchemaIDsUnmapped}
	translated := map[tp]map[int64]int64{}
	for i, p := range parts {
		r := res.Partitions[i]
		out.Records += r.Records
		out.Produced += r.Produced
		out.Skipped += r.Skipped
		translated[tp{p.Topic, p.Partition}] = r.Translated
	}
	// Group offsets, translated, for this unit's partitions.
	if len(groups) > 0 {
		listed, err := adm.ListGroups(ctx)
		if err != nil {
			return nil, fmt.Errorf("list groups: %w", err)
		}
		for _, g := range groups {
			if lg, ok := listed[g.ID]; ok && !kmeta.GroupInactive(lg.State) {
				out.GroupErrors = append(out.GroupErrors, fmt.Sprintf("%s: the group is active (state %s); stop its consumers first", g.ID, lg.State))
				continue
			}
			os := kadm.Offsets{}
			for _, o := range g.Offsets {
				at, ok := translated[tp{o.Topic, o.Partition}][o.Offset]
				if !ok {
					continue
				}
				os.Add(kadm.Offset{Topic: target(o.Topic), Partition: o.Partition, At: at, LeaderEpoch: -1, Metadata: o.Metadata})
			}
			resp, err := adm.CommitOffsets(ctx, g.ID, os)
			if err == nil {
				err = resp.Error()
			}
			if err != nil {
				out.GroupErrors = append(out.GroupErrors, fmt.Sprintf("%s: %v", g.ID, err))
				continue
			}
			out.Groups++
		}
		if len(out.GroupErrors) > 0 {
			return nil, fmt.Errorf("unit %d restored, but %d of %d groups' offsets not committed: %s", in.Unit.Index, len(out.GroupErrors), len(groups), backupset.Summarize(out.GroupErrors, 3))
		}
	}
	return out, nil
}

// maxMessageBytes is each target topic's effective max.message.bytes: the
// largest batch a producer may send.
func maxMessageBytes(ctx context.Context, adm *kadm.Client, topics []string) (map[string]int32, error) {
	out := map[string]int32{}
	rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("describe %d target topics: %w", len(topics), err)
	}
	for _, rc := range rcs {
		out[rc.Name] = 1 << 20
		for _, c := range rc.Configs {
			if c.Key == "max.message.bytes" && c.Value != nil {
				if v, err := strconv.Atoi(*c.Value); err == nil && v > 0 {
					out[rc.Name] = int32(min(v, 64<<20))
				}
			}
		}
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Finish.

// FinishInput ends a restore.
type FinishInput struct {
	Config    config.Restore `json:"config"`
	RestoreID string         `json:"restore_id"`
}

// FinishResult says what was set back.
type FinishResult struct {
	Topics int `json:"topics"`
}

// FinishImport sets back on every restored topic what the restore relaxed
// (retention.ms as it was, LogAppendTime again), from the bookmarks, and
// then deletes the bookmarks.
func (a *Activities) FinishImport(ctx context.Context, in FinishInput) (*FinishResult, error) {
	cl, release, err := a.kafka(ctx, in.Config.Cluster)
	if err != nil {
		return nil, err
	}
	defer release()
	adm := kadm.NewClient(cl)
	group := bookmarkGroup(in.RestoreID)
	bms, err := readBookmarks(ctx, adm, group, nil)
	if err != nil {
		return nil, err
	}
	topics := make([]string, 0, len(bms))
	for t := range bms {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		info := bms[t].Info
		alter := []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}}
		if info.Retention != nil {
			alter[0] = kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: info.Retention}
		}
		if info.LogAppendTime {
			lat := "LogAppendTime"
			alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: "message.timestamp.type", Value: &lat})
		}
		if err := alterTopic(ctx, adm, t, alter); err != nil {
			return nil, err
		}
		activity.RecordHeartbeat(ctx, t)
	}
	resp, err := adm.DeleteGroups(ctx, group)
	if err == nil {
		if r, ok := resp[group]; ok && r.Err != nil && !isGroupGone(r.Err) {
			err = r.Err
		}
	}
	if err != nil {
		return nil, fmt.Errorf("delete bookmark group %s: %w", group, err)
	}
	return &FinishResult{Topics: len(topics)}, nil
}

func isGroupGone(err error) bool {
	return errors.Is(err, kerr.GroupIDNotFound)
}

// pingCluster checks the cluster answers within its connect timeout.
func pingCluster(ctx context.Context, c config.Cluster, cl *kgo.Client) error {
	if _, err := kclient.Ping(ctx, c, cl); err != nil {
		return badInput("%v", err)
	}
	return nil
}
