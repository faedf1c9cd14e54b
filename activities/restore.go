package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/kclient"
	"github.com/kbr-project/kbr/internal/kdata"
	"github.com/kbr-project/kbr/internal/kmeta"
	"github.com/kbr-project/kbr/internal/metaarchive"
	"github.com/kbr-project/kbr/internal/names"
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
	Topics       []string  `json:"topics"`
	Partitions   int       `json:"partitions"`
	Records      int64     `json:"records"`
	Bytes        int64     `json:"bytes"`
	Files        int       `json:"files"`
}

// VerifyInput names a recovery point on a target.
type VerifyInput struct {
	Source config.Source `json:"source"`
}

// ResolveRecoveryPoint finds the manifest a source names ("latest" or a
// manifest name) and checks every file it lists: present, same size, same
// SHA-256. Damaged or missing files are all named in one error.
func (a *Activities) ResolveRecoveryPoint(ctx context.Context, in VerifyInput) (*RecoveryPoint, error) {
	b, err := a.openTarget(ctx, in.Source.Target)
	if err != nil {
		return nil, permanent(err)
	}
	defer b.Close()
	name, err := resolveName(ctx, b, in)
	if err != nil {
		return nil, err
	}
	m, err := a.loadView(ctx, b, name)
	if err != nil {
		return nil, permanent(err)
	}
	var damaged []string
	files := m.Files()
	for i, f := range files {
		err := readVerified(ctx, b, f, func(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err })
		if err != nil {
			damaged = append(damaged, err.Error())
		}
		activity.RecordHeartbeat(ctx, i+1)
	}
	if len(damaged) > 0 {
		msg := fmt.Sprintf("recovery point %s: %d of %d files damaged or missing:\n  - %s", name, len(damaged), len(files), joinLines(damaged))
		return nil, temporal.NewNonRetryableApplicationError(msg, names.ErrChecksum, nil, damaged)
	}
	return summarize(name, m), nil
}

// ResolveName is the manifest a source names: "latest" (of its task, if it
// names one) resolved, or the name it gives. Nothing is read but the
// listing, so a restore can announce what it reads before verifying it.
func (a *Activities) ResolveName(ctx context.Context, in VerifyInput) (string, error) {
	if in.Source.RecoveryPoint != "latest" {
		return in.Source.RecoveryPoint, nil
	}
	b, err := a.openTarget(ctx, in.Source.Target)
	if err != nil {
		return "", permanent(err)
	}
	defer b.Close()
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

func joinLines(s []string) string {
	out := ""
	for i, l := range s {
		if i > 0 {
			out += "\n  - "
		}
		out += l
	}
	return out
}

func forTask(t string) string {
	if t == "" {
		return ""
	}
	return " for task " + t
}

func summarize(name string, m *backupset.Manifest) *RecoveryPoint {
	rp := &RecoveryPoint{Manifest: name, Task: m.Task, Cluster: m.Cluster, ClusterID: m.ClusterID, KafkaVersion: m.KafkaVersion,
		ExecutedAt: m.ExecutedAt, Partitions: len(m.Partitions), Records: m.Totals.Records, Bytes: m.Totals.Bytes, Files: m.Totals.Files}
	seen := map[string]bool{}
	for _, p := range m.Partitions {
		if !seen[p.Topic] {
			seen[p.Topic] = true
			rp.Topics = append(rp.Topics, p.Topic)
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

// PrepareInput is a restore about to write.
type PrepareInput struct {
	Config   config.Restore `json:"config"`
	Manifest string         `json:"manifest"`
}

// PartitionPlan is one partition to restore.
type PartitionPlan struct {
	SourceTopic string  `json:"source_topic"`
	TargetTopic string  `json:"target_topic"`
	Partition   int32   `json:"partition"`
	Base        int64   `json:"base"` // the target's end offset before the restore wrote
	Records     int64   `json:"records"`
	Translate   []int64 `json:"translate,omitempty"`
}

// GroupOffset is one committed source offset.
type GroupOffset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// RetentionReset is a topic config to put back after the restore.
type RetentionReset struct {
	Topic    string  `json:"topic"`
	Original *string `json:"original"` // nil: no override, delete ours
}

// PrepareResult is the restore's plan, fixed before any record is written.
type PrepareResult struct {
	Topics     []kmeta.TopicResult `json:"topics"`
	Plans      []kmeta.TopicPlan   `json:"plans"`
	Partitions []PartitionPlan     `json:"partitions"`
	Retention  []RetentionReset    `json:"retention"`
	// GroupOffsets is each group's committed source offsets, restored topics only.
	GroupOffsets map[string][]GroupOffset `json:"group_offsets,omitempty"`
	Warnings     []string                 `json:"warnings,omitempty"`
}

// PrepareRestore checks the target and creates the topics: partition
// counts and configs as backed up, time retention relaxed while old records
// arrive. A target topic holding data is refused unless allow_nonempty.
// Every check runs before the first topic is created.
func (a *Activities) PrepareRestore(ctx context.Context, in PrepareInput) (*PrepareResult, error) {
	cfg := in.Config
	b, err := a.openTarget(ctx, cfg.Source.Target)
	if err != nil {
		return nil, permanent(err)
	}
	defer b.Close()
	m, err := a.loadView(ctx, b, in.Manifest)
	if err != nil {
		return nil, permanent(err)
	}
	rename, _ := cfg.RenameMap()

	inBackup := map[string]int32{}
	for _, p := range m.Partitions {
		inBackup[p.Topic] = max(inBackup[p.Topic], p.Partition+1)
	}
	topics := cfg.Topics
	if len(topics) == 0 {
		for t := range inBackup {
			topics = append(topics, t)
		}
		sort.Strings(topics)
	}
	for i, t := range topics {
		if _, ok := inBackup[t]; !ok {
			return nil, badInput("topics[%d]: %q is not in recovery point %s", i, t, in.Manifest)
		}
	}
	for src := range rename {
		if _, ok := inBackup[src]; !ok {
			return nil, badInput("rename: source topic %q is not in recovery point %s", src, in.Manifest)
		}
	}

	var snap *kmeta.Snapshot
	if m.Metadata != nil {
		err := readVerified(ctx, b, *m.Metadata, func(r io.Reader) error {
			var err error
			snap, _, err = metaarchive.ReadArchive(r)
			return err
		})
		if err != nil {
			return nil, permanent(err)
		}
	}
	var offsets OffsetsFile
	offsetsEntry := m.Offsets
	var warnings []string
	if cfg.ToTime != nil && !cfg.SkipGroups {
		var note string
		offsetsEntry, note, err = a.offsetsAsOf(ctx, b, in.Manifest, *cfg.ToTime)
		if err != nil {
			return nil, permanent(err)
		}
		if note != "" {
			warnings = append(warnings, note)
		}
	}
	if offsetsEntry != nil && !cfg.SkipGroups {
		if err := readVerified(ctx, b, *offsetsEntry, func(r io.Reader) error { return json.NewDecoder(r).Decode(&offsets) }); err != nil {
			return nil, permanent(err)
		}
	}

	cl, err := kclient.New(cfg.Cluster)
	if err != nil {
		return nil, badInput("%v", err)
	}
	defer cl.Close()
	if _, err := kclient.Ping(ctx, cfg.Cluster, cl); err != nil {
		return nil, badInput("%v", err)
	}
	adm := kadm.NewClient(cl)
	brokers, err := adm.ListBrokers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list brokers: %w", err)
	}

	res := &PrepareResult{Warnings: warnings}
	var plans []kmeta.TopicPlan
	if snap != nil {
		plans = kmeta.PlanTopics(snap, topics, rename, len(brokers))
	}
	for i := range topics {
		// Without a metadata archive the layout comes from the manifest.
		if snap == nil || plans[i].Partitions == 0 {
			p := kmeta.TopicPlan{Source: topics[i], Target: topics[i], Partitions: inBackup[topics[i]],
				ReplicationFactor: int16(min(3, len(brokers))), Configs: map[string]string{},
				Note: "no metadata in the backup: partition count from the data, configs left to the target's defaults"}
			if dst, ok := rename[topics[i]]; ok {
				p.Target = dst
			}
			if snap == nil {
				plans = append(plans, p)
			} else {
				plans[i] = p
			}
		}
	}
	for i := range plans {
		if cfg.Options.ReplicationFactor > 0 {
			plans[i].ReplicationFactor = cfg.Options.ReplicationFactor
		}
		if plans[i].Partitions < inBackup[plans[i].Source] {
			return nil, badInput("topic %s: metadata has %d partitions, data has %d", plans[i].Source, plans[i].Partitions, inBackup[plans[i].Source])
		}
	}

	// Refuse non-empty targets before creating anything.
	targets := make([]string, len(plans))
	for i, p := range plans {
		targets[i] = p.Target
	}
	existing, err := adm.ListTopics(ctx, targets...)
	if err != nil {
		return nil, fmt.Errorf("list target topics: %w", err)
	}
	startOffs, err := adm.ListStartOffsets(ctx, targets...)
	if err != nil {
		return nil, fmt.Errorf("start offsets: %w", err)
	}
	endOffs, err := adm.ListEndOffsets(ctx, targets...)
	if err != nil {
		return nil, fmt.Errorf("end offsets: %w", err)
	}
	for i, p := range plans {
		td, ok := existing[p.Target]
		if !ok || td.Err != nil {
			continue
		}
		if int32(len(td.Partitions)) != p.Partitions {
			return nil, badInput("target topic %s exists with %d partitions, the backup of %s has %d", p.Target, len(td.Partitions), p.Source, p.Partitions)
		}
		var held int64
		for part := int32(0); part < p.Partitions; part++ {
			s, _ := startOffs.Lookup(p.Target, part)
			e, _ := endOffs.Lookup(p.Target, part)
			held += e.Offset - s.Offset
		}
		if held > 0 && !cfg.AllowNonEmpty {
			return nil, temporalNonEmpty(p.Target, held)
		}
		_ = i
	}

	// Relax time retention: restored records keep their old timestamps and
	// would otherwise be deleted by the next retention check.
	for i := range plans {
		orig, had := plans[i].Configs["retention.ms"]
		rr := RetentionReset{Topic: plans[i].Target}
		if had {
			rr.Original = &orig
		}
		res.Retention = append(res.Retention, rr)
		plans[i].Configs["retention.ms"] = "-1"
	}
	created, err := kmeta.CreateTopics(ctx, cl, plans)
	if err != nil {
		return nil, fmt.Errorf("create topics: %w", err)
	}
	for _, c := range created {
		if c.Existed {
			if err := setRetention(ctx, adm, c.Target, strPtr("-1")); err != nil {
				return nil, err
			}
		}
	}
	res.Topics, res.Plans = created, plans

	// Fix each partition's base offset and the group offsets to translate.
	ends, err := adm.ListEndOffsets(ctx, targets...)
	if err != nil {
		return nil, fmt.Errorf("end offsets: %w", err)
	}
	translate := map[string]map[int32][]int64{}
	restoring := map[string]bool{}
	for _, p := range plans {
		restoring[p.Source] = true
	}
	res.GroupOffsets = map[string][]GroupOffset{}
	for _, g := range offsets.Groups {
		for _, o := range g.Offsets {
			if !restoring[o.Topic] {
				continue
			}
			res.GroupOffsets[g.ID] = append(res.GroupOffsets[g.ID], GroupOffset{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset})
			if translate[o.Topic] == nil {
				translate[o.Topic] = map[int32][]int64{}
			}
			translate[o.Topic][o.Partition] = append(translate[o.Topic][o.Partition], o.Offset)
		}
	}
	for _, p := range plans {
		for part := int32(0); part < p.Partitions; part++ {
			e, ok := ends.Lookup(p.Target, part)
			if !ok || e.Err != nil {
				return nil, fmt.Errorf("end offset of %s[%d]: %v", p.Target, part, e.Err)
			}
			pp := PartitionPlan{SourceTopic: p.Source, TargetTopic: p.Target, Partition: part, Base: e.Offset,
				Translate: dedup(translate[p.Source][part])}
			if mp := m.Partition(p.Source, part); mp != nil {
				pp.Records = mp.Records
			}
			res.Partitions = append(res.Partitions, pp)
		}
	}
	return res, nil
}

func toTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
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

func dedup(in []int64) []int64 {
	sort.Slice(in, func(i, j int) bool { return in[i] < in[j] })
	var out []int64
	for i, v := range in {
		if i == 0 || v != in[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func strPtr(s string) *string { return &s }

func temporalNonEmpty(topic string, held int64) error {
	msg := fmt.Sprintf("target topic %s already holds %d records: refusing to restore into it (set allow_nonempty: true to append)", topic, held)
	return badInputTyped(msg, names.ErrNonEmpty)
}

func setRetention(ctx context.Context, adm *kadm.Client, topic string, v *string) error {
	op := kadm.SetConfig
	if v == nil {
		op = kadm.DeleteConfig
	}
	resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: op, Name: "retention.ms", Value: v}}, topic)
	if err != nil {
		return fmt.Errorf("set retention.ms of %s: %w", topic, err)
	}
	for _, r := range resp {
		if r.Err != nil {
			return fmt.Errorf("set retention.ms of %s: %w", topic, r.Err)
		}
	}
	return nil
}

// RestorePartitionInput is one partition to restore.
type RestorePartitionInput struct {
	Config   config.Restore `json:"config"`
	Manifest string         `json:"manifest"`
	Plan     PartitionPlan  `json:"plan"`
}

// RestorePartitionResult is a restored partition.
type RestorePartitionResult struct {
	Plan       PartitionPlan    `json:"plan"`
	Records    int64            `json:"records"`
	Produced   int64            `json:"produced"`
	Skipped    int64            `json:"skipped"`
	EndOffset  int64            `json:"end_offset"`
	Translated map[string]int64 `json:"translated"` // source offset (decimal) -> target offset
}

// RestorePartition produces the partition's records that have not landed
// yet (see kdata.RestoreSpec for why this is exactly once).
func (a *Activities) RestorePartition(ctx context.Context, in RestorePartitionInput) (*RestorePartitionResult, error) {
	cfg := in.Config
	b, err := a.openTarget(ctx, cfg.Source.Target)
	if err != nil {
		return nil, permanent(err)
	}
	defer b.Close()
	m, err := a.loadView(ctx, b, in.Manifest)
	if err != nil {
		return nil, permanent(err)
	}
	var segs []backupset.SegmentInfo
	var minOffset int64
	if mp := m.Partition(in.Plan.SourceTopic, in.Plan.Partition); mp != nil {
		segs, minOffset = mp.Segments, mp.StartOffset
	}
	batchMax, err := maxMessageBytes(ctx, cfg.Cluster, in.Plan.TargetTopic)
	if err != nil {
		return nil, err
	}
	cl, err := kclient.New(cfg.Cluster,
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(batchMax),
		// Bounded per partition: a worker runs several restores at once,
		// and 16 MiB in flight keeps a loopback or LAN broker busy.
		kgo.MaxBufferedBytes(max(16<<20, 2*int(batchMax))),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchCompression(producerCompression(cfg.Options.ProducerCompression)),
		// No RecordDeliveryTimeout: kgo measures it from each record's
		// timestamp, so restored records with old timestamps would fail at
		// once. The activity's context and heartbeat bound the wait instead.
	)
	if err != nil {
		return nil, badInput("%v", err)
	}
	defer cl.Close()
	spec := kdata.RestoreSpec{
		Topic: in.Plan.TargetTopic, Partition: in.Plan.Partition, Base: in.Plan.Base,
		Segments: segs, Compression: m.Compression, Translate: in.Plan.Translate, MinOffset: minOffset,
		ToTime:         toTime(cfg.ToTime),
		ThrottleBytesS: int64(cfg.Options.ThrottleBytesPerSecond),
	}
	res, err := kdata.Restore(ctx, cl, b, spec, func(n int64) { activity.RecordHeartbeat(ctx, n) })
	if err != nil {
		return nil, permanent(err)
	}
	out := &RestorePartitionResult{Plan: in.Plan, Records: res.Records, Produced: res.Produced, Skipped: res.Skipped,
		EndOffset: res.EndOffset, Translated: map[string]int64{}}
	out.Plan.Translate = nil
	for k, v := range res.Translated {
		out.Translated[strconv.FormatInt(k, 10)] = v
	}
	return out, nil
}

func producerCompression(name string) kgo.CompressionCodec {
	switch name {
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "gzip":
		return kgo.GzipCompression()
	}
	return kgo.NoCompression()
}

// maxMessageBytes is the target topic's effective max.message.bytes: the
// largest batch the producer may send.
func maxMessageBytes(ctx context.Context, c config.Cluster, topic string) (int32, error) {
	cl, err := kclient.New(c)
	if err != nil {
		return 0, badInput("%v", err)
	}
	defer cl.Close()
	rcs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("describe %s: %w", topic, err)
	}
	for _, rc := range rcs {
		for _, c := range rc.Configs {
			if c.Key == "max.message.bytes" && c.Value != nil {
				if v, err := strconv.Atoi(*c.Value); err == nil && v > 0 {
					return int32(min(v, 64<<20)), nil
				}
			}
		}
	}
	return 1 << 20, nil
}

// GroupCommitInput is the translated offsets of every group.
type GroupCommitInput struct {
	Config   config.Restore                        `json:"config"`
	Manifest string                                `json:"manifest"`
	Offsets  map[string]map[string]map[int32]int64 `json:"offsets"` // group -> target topic -> partition -> offset
}

// GroupCommitResult reports committed groups.
type GroupCommitResult struct {
	Committed []string          `json:"committed"`
	Failed    map[string]string `json:"failed,omitempty"`
}

// CommitGroupOffsets commits each group's translated offsets on the target.
func (a *Activities) CommitGroupOffsets(ctx context.Context, in GroupCommitInput) (*GroupCommitResult, error) {
	cl, err := kclient.New(in.Config.Cluster)
	if err != nil {
		return nil, badInput("%v", err)
	}
	defer cl.Close()
	res := &GroupCommitResult{Failed: map[string]string{}}
	groups := make([]string, 0, len(in.Offsets))
	for g := range in.Offsets {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		if err := kmeta.CommitGroupOffsets(ctx, cl, g, in.Offsets[g]); err != nil {
			res.Failed[g] = err.Error()
			continue
		}
		res.Committed = append(res.Committed, g)
	}
	if len(res.Failed) > 0 {
		return res, fmt.Errorf("commit offsets: %d of %d groups failed: %v", len(res.Failed), len(groups), res.Failed)
	}
	return res, nil
}

// FinishInput puts topic configs back.
type FinishInput struct {
	Config    config.Restore   `json:"config"`
	Retention []RetentionReset `json:"retention"`
}

// FinishRestore sets retention.ms back on every restored topic.
func (a *Activities) FinishRestore(ctx context.Context, in FinishInput) error {
	cl, err := kclient.New(in.Config.Cluster)
	if err != nil {
		return badInput("%v", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, r := range in.Retention {
		if err := setRetention(ctx, adm, r.Topic, r.Original); err != nil {
			return err
		}
	}
	return nil
}

// Summary reads a manifest and summarises it, without verifying files.
func (a *Activities) Summary(ctx context.Context, b storage.Backend, name string) (*RecoveryPoint, error) {
	m, err := a.loadManifest(ctx, b, name)
	if err != nil {
		return nil, err
	}
	return summarize(name, m), nil
}
