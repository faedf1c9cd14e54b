package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
	"github.com/kbr-project/kbr/internal/zkmeta"
	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/localdir"
)

// PreflightInput is the backup to check.
type PreflightInput struct {
	Config     config.Backup `json:"config"`
	ExecutedAt time.Time     `json:"executed_at"`
}

// TopicRef is a topic chosen for backup.
type TopicRef struct {
	Name       string `json:"name"`
	ID         string `json:"id,omitempty"`
	Partitions int32  `json:"partitions"`
}

// PreflightReport is what the read-only checks found; it is shown before
// anything is written.
type PreflightReport struct {
	ClusterID         string        `json:"cluster_id"`
	KafkaVersion      string        `json:"kafka_version"`
	Mode              string        `json:"mode"` // zookeeper | kraft
	Brokers           int           `json:"brokers"`
	Topics            []TopicRef    `json:"topics"`
	Partitions        int           `json:"partitions"`
	EstimatedBytes    int64         `json:"estimated_bytes"`
	EstimatedDuration time.Duration `json:"estimated_duration"`
	StagingFree       int64         `json:"staging_free"` // -1: unknown
	TargetFree        int64         `json:"target_free"`  // -1: the target cannot tell
	ZnodeCount        int           `json:"znode_count,omitempty"`
	OpenFileLimit     uint64        `json:"open_file_limit,omitempty"`
	FileMax           uint64        `json:"file_max,omitempty"`
	TaskDir           string        `json:"task_dir"`
	// ExecutedAt is the run's execution time: the one asked for, or one
	// second after the newest name already in the task folder.
	ExecutedAt time.Time `json:"executed_at"`
	Warnings   []string  `json:"warnings,omitempty"`
}

// Preflight checks, without writing anything, that the backup can run:
// config, brokers, ZooKeeper, target, free space and open-file limits.
// Every failure it finds is listed in one non-retryable error.
func (a *Activities) Preflight(ctx context.Context, in PreflightInput) (*PreflightReport, error) {
	cfg := in.Config
	if err := cfg.Validate(); err != nil {
		return nil, badInput("%v", err)
	}
	rep := &PreflightReport{StagingFree: -1, TargetFree: -1, Mode: "kraft"}
	cl, err := kclient.New(cfg.Cluster)
	if err != nil {
		return nil, badInput("%v", err)
	}
	defer cl.Close()

	// Kafka, ZooKeeper and the target are checked at once: each section
	// fills its own fields of rep and lists its own findings, which are
	// joined in this order below.
	var kafka, zk, target checks
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); checkKafka(ctx, cfg, cl, rep, &kafka) }()
	go func() { defer wg.Done(); a.checkTarget(ctx, in, rep, &target) }()
	if z := cfg.Cluster.ZooKeeper; z != nil {
		rep.Mode = "zookeeper"
		checkZooKeeper(ctx, cfg, rep, &zk)
	}
	wg.Wait()

	// Staging dir and target: room enough for the estimate.
	var space checks
	minFree := int64(*cfg.Options.MinFreeBytes)
	need := max(minFree, rep.EstimatedBytes*3/2)
	staging := cfg.Options.StagingDir
	if staging == "" {
		staging = os.TempDir()
	}
	if free, err := dirFree(staging); err != nil {
		space.fail("options.staging_dir %s: %v", staging, err)
	} else {
		rep.StagingFree = int64(free)
		if rep.StagingFree < minFree {
			space.fail("options.staging_dir %s: %s free, below the minimum %s (options.min_free_bytes)", staging, config.ByteSize(free), config.ByteSize(minFree))
		}
	}
	if rep.TargetFree >= 0 && rep.TargetFree < need {
		space.fail("target %s: %s free, below the %s needed (max of options.min_free_bytes and 1.5 x the estimated %s)", cfg.Target, config.ByteSize(rep.TargetFree), config.ByteSize(need), config.ByteSize(rep.EstimatedBytes))
	}

	var problems []string
	for _, c := range []checks{kafka, zk, space, target} {
		problems = append(problems, c.problems...)
		rep.Warnings = append(rep.Warnings, c.warnings...)
	}
	if rep.TaskDir == "" && cfg.TaskCreated != nil {
		rep.TaskDir = backupset.TaskDir(cfg.Task, *cfg.TaskCreated)
	} else if rep.TaskDir == "" {
		rep.TaskDir = backupset.TaskDir(cfg.Task, in.ExecutedAt)
	}
	if rep.ExecutedAt.IsZero() {
		rep.ExecutedAt = in.ExecutedAt
	}
	bw := float64(cfg.Options.Bandwidth)
	rep.EstimatedDuration = time.Duration(float64(rep.EstimatedBytes) / bw * 1.5 * float64(time.Second)).Round(time.Second)
	if len(problems) > 0 {
		return rep, temporal.NewNonRetryableApplicationError("preflight failed:\n  - "+strings.Join(problems, "\n  - "), ErrTypePreflight, nil, rep)
	}
	return rep, nil
}

// checks is what one preflight section found.
type checks struct{ problems, warnings []string }

func (c *checks) fail(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// checkKafka: the brokers answer, the include patterns match, and what the
// chosen topics hold. It fills the cluster, topic and size fields of rep.
func checkKafka(ctx context.Context, cfg config.Backup, cl *kgo.Client, rep *PreflightReport, c *checks) {
	timeout := cfg.Cluster.ConnectTimeout.D()
	if _, err := kclient.Ping(ctx, cfg.Cluster, cl); err != nil {
		c.fail("%v", err)
		return
	}
	filter, _ := cfg.Topics.Compile()
	snapCtx, cancel := context.WithTimeout(ctx, 4*timeout)
	snap, err := kmeta.Take(snapCtx, cl, kmeta.Options{Topics: filter, IncludeInternal: cfg.Topics.IncludeInternal, Layout: true})
	cancel()
	if err != nil {
		c.fail("cluster %s: read metadata: %v", cfg.Cluster.Name, err)
		return
	}
	rep.ClusterID, rep.Brokers = snap.ClusterID, len(snap.Brokers)
	rep.KafkaVersion = snap.KafkaVersion
	if cfg.Cluster.KafkaVersion != "" {
		rep.KafkaVersion = cfg.Cluster.KafkaVersion
	}
	for _, t := range snap.Topics {
		rep.Topics = append(rep.Topics, TopicRef{Name: t.Name, ID: t.ID, Partitions: int32(len(t.Partitions))})
		rep.Partitions += len(t.Partitions)
	}
	sort.Slice(rep.Topics, func(i, j int) bool { return rep.Topics[i].Name < rep.Topics[j].Name })
	for i, p := range cfg.Topics.Include {
		if !anyMatch(p, rep.Topics) {
			c.fail("topics.include[%d]: %q matches no topic of cluster %s", i, p, cfg.Cluster.Name)
		}
	}
	if cfg.Has(config.SourceTopicData) {
		size, err := estimateSize(ctx, cl, rep.Topics)
		if err != nil {
			c.warnings = append(c.warnings, "size estimate unavailable: "+err.Error())
		}
		rep.EstimatedBytes = size
	}
}

// checkZooKeeper: ZooKeeper answers, and when the metadata is backed up,
// the chroot's znode count (the snapshot's scope) is within the open-file
// limits. Counting walks every znode, a round trip each, so a backup
// without metadata does not pay for it.
func checkZooKeeper(ctx context.Context, cfg config.Backup, rep *PreflightReport, c *checks) {
	z := cfg.Cluster.ZooKeeper
	conn, err := zkmeta.Connect(ctx, z.Connect, cfg.Cluster.ConnectTimeout.D())
	if err != nil {
		c.fail("cluster.zookeeper.connect: %v", err)
		return
	}
	defer conn.Close()
	if !cfg.Has(config.SourceMetadata) {
		return
	}
	n, err := zkmeta.Count(ctx, conn, z.Chroot)
	if err != nil {
		c.fail("cluster.zookeeper.chroot %s: %v", z.Chroot, err)
	}
	rep.ZnodeCount = n
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		rep.OpenFileLimit = lim.Cur
		if uint64(n) >= lim.Cur {
			c.fail("cluster.zookeeper.chroot %s holds %d znodes, at or above this worker's open-file limit (ulimit -n = %d): raise the limit or split the scope into smaller chroots", z.Chroot, n, lim.Cur)
		}
	}
	if b, err := os.ReadFile("/proc/sys/fs/file-max"); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
			rep.FileMax = v
			if uint64(n) >= v {
				c.fail("cluster.zookeeper.chroot %s holds %d znodes, at or above /proc/sys/fs/file-max = %d: split the scope", z.Chroot, n, v)
			}
		}
	}
}

// checkTarget: the target opens and takes a file, and what it already holds
// of the task. It fills TargetFree, TaskDir and ExecutedAt of rep; the free
// space is compared with the estimate once that is known.
func (a *Activities) checkTarget(ctx context.Context, in PreflightInput, rep *PreflightReport, c *checks) {
	cfg := in.Config
	if err := checkTargetWritable(cfg.Target); err != nil {
		c.fail("target %s: %v", cfg.Target, err)
		return
	}
	if parent, missing := missingLocalDir(cfg.Target); missing {
		// Nothing is created before the checks pass: measure the parent.
		if free, err := dirFree(parent); err == nil {
			rep.TargetFree = int64(free)
		}
		return
	}
	b, err := a.openTarget(ctx, cfg.Target)
	if err != nil {
		c.fail("target %s: %v", cfg.Target, err)
		return
	}
	defer b.Close()
	if free, err := b.FreeSpace(ctx); err == nil {
		rep.TargetFree = int64(free)
	} else {
		c.warnings = append(c.warnings, fmt.Sprintf("target %s does not report free space", cfg.Target))
	}
	w, err := b.Create(ctx, ".kbr-preflight")
	if err != nil {
		c.fail("target %s: not writable: %v", cfg.Target, err)
		return
	}
	_ = w.Abort()
	dirs, err := taskFolders(ctx, b, cfg.Task)
	if err != nil {
		c.fail("target %s: %v", cfg.Target, err)
		return
	}
	if cfg.TaskCreated != nil {
		rep.TaskDir = backupset.TaskDir(cfg.Task, *cfg.TaskCreated)
	} else if len(dirs.names) > 0 {
		rep.TaskDir = dirs.names[len(dirs.names)-1]
	}
	// An earlier run of the task in this same second: names must not collide.
	if latest := dirs.latest[rep.TaskDir]; !latest.IsZero() && !latest.Before(in.ExecutedAt) {
		rep.ExecutedAt = latest.Add(time.Second)
	}
}

func anyMatch(pattern string, topics []TopicRef) bool {
	f, err := config.TopicFilter{Include: []string{pattern}, IncludeInternal: true}.Compile()
	if err != nil {
		return false
	}
	for _, t := range topics {
		if f(t.Name) {
			return true
		}
	}
	return false
}

// checkTargetWritable refuses a LocalDir target that cannot be created,
// before the backend would create it.
func checkTargetWritable(t storage.Target) error {
	if !strings.EqualFold(t.Type, localdir.Type) {
		return nil
	}
	dir, _ := filepath.Abs(t.Path)
	for {
		st, err := os.Stat(dir)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s is not a directory", dir)
			}
			if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
				return fmt.Errorf("%s is not writable: %v", dir, err)
			}
			return nil
		}
		parent := dir[:max(0, strings.LastIndex(dir, "/"))]
		if parent == "" || parent == dir {
			return fmt.Errorf("no existing parent directory of %s", t.Path)
		}
		dir = parent
	}
}

// missingLocalDir reports a LocalDir target that does not exist yet, and
// its nearest existing parent.
func missingLocalDir(t storage.Target) (string, bool) {
	if !strings.EqualFold(t.Type, localdir.Type) {
		return "", false
	}
	dir, _ := filepath.Abs(t.Path)
	if _, err := os.Stat(dir); err == nil {
		return "", false
	}
	for dir != "" && dir != "/" {
		dir = dir[:max(0, strings.LastIndex(dir, "/"))]
		if _, err := os.Stat(dir); err == nil {
			return dir, true
		}
	}
	return "/", true
}

func dirFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// estimateSize sums the size of one replica of every chosen partition.
func estimateSize(ctx context.Context, cl *kgo.Client, topics []TopicRef) (int64, error) {
	if len(topics) == 0 {
		return 0, nil
	}
	adm := kadm.NewClient(cl)
	brokers, err := adm.ListBrokers(ctx)
	if err != nil {
		return 0, err
	}
	// Broker by broker (a fresh client's DescribeAllLogDirs can miss
	// brokers it has no metadata for yet), all at once.
	type answer struct {
		node int32
		dirs kadm.DescribedLogDirs
		err  error
	}
	answers := make(chan answer, len(brokers))
	for _, b := range brokers {
		go func() {
			dirs, err := adm.DescribeBrokerLogDirs(ctx, b.NodeID, topicsSet(topics))
			answers <- answer{b.NodeID, dirs, err}
		}()
	}
	sizes := map[string]map[int32]int64{}
	var firstErr error
	for range brokers {
		ans := <-answers
		if ans.err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("log dirs of broker %d: %w", ans.node, ans.err)
			}
			continue
		}
		for _, dir := range ans.dirs {
			for topic, parts := range dir.Topics {
				for _, p := range parts {
					if sizes[topic] == nil {
						sizes[topic] = map[int32]int64{}
					}
					sizes[topic][p.Partition] = max(sizes[topic][p.Partition], p.Size)
				}
			}
		}
	}
	if firstErr != nil {
		return 0, firstErr
	}
	var total int64
	for _, ps := range sizes {
		for _, s := range ps {
			total += s
		}
	}
	return total, nil
}

// topicsSet names every partition: a topic without partitions asks for none.
func topicsSet(topics []TopicRef) kadm.TopicsSet {
	s := kadm.TopicsSet{}
	for _, t := range topics {
		for p := int32(0); p < t.Partitions; p++ {
			s.Add(t.Name, p)
		}
	}
	return s
}

// folders are a task's folders on a target, oldest first, with the newest
// execution time named in each.
type folders struct {
	names  []string
	latest map[string]time.Time
}

// taskFolders lists a task's "<task>_<creation time>" folders in one listing
// (task names hold no '_', so the prefix matches only this task's).
func taskFolders(ctx context.Context, b storage.Backend, task string) (folders, error) {
	out := folders{latest: map[string]time.Time{}}
	files, err := b.List(ctx, task+"_")
	if err != nil {
		return out, err
	}
	for _, f := range files {
		dir, _, _, executed, ok := backupset.ParseEntry(f.Name)
		if name, _, isTask := backupset.ParseTaskDir(dir); !ok || !isTask || name != task {
			continue
		}
		if _, seen := out.latest[dir]; !seen {
			out.names = append(out.names, dir)
		}
		if executed.After(out.latest[dir]) {
			out.latest[dir] = executed
		}
	}
	sort.Strings(out.names)
	return out, nil
}

// findTaskDir returns the task's newest folder, so every run of a task lands
// in the same "<task>_<creation time>" folder, or "" for a new task.
func findTaskDir(ctx context.Context, b storage.Backend, task string) (string, error) {
	f, err := taskFolders(ctx, b, task)
	if err != nil || len(f.names) == 0 {
		return "", err
	}
	return f.names[len(f.names)-1], nil
}

// SnapshotInput names a run's metadata or offsets file.
type SnapshotInput struct {
	Config       config.Backup `json:"config"`
	TaskDir      string        `json:"task_dir"`
	KafkaVersion string        `json:"kafka_version"`
	ExecutedAt   time.Time     `json:"executed_at"`
}

// SnapshotMetadata writes the metadata archive: every znode of the chroot
// (ZooKeeper mode) and the logical metadata read through the Admin API.
func (a *Activities) SnapshotMetadata(ctx context.Context, in SnapshotInput) (*backupset.FileEntry, error) {
	cfg := in.Config
	cl, err := kclient.New(cfg.Cluster)
	if err != nil {
		return nil, badInput("%v", err)
	}
	defer cl.Close()
	snap, err := kmeta.Take(ctx, cl, kmeta.Options{Groups: true})
	if err != nil {
		return nil, fmt.Errorf("metadata snapshot of %s: %w", cfg.Cluster.Name, err)
	}
	var tree *zkmeta.Tree
	if z := cfg.Cluster.ZooKeeper; z != nil {
		conn, err := zkmeta.Connect(ctx, z.Connect, cfg.Cluster.ConnectTimeout.D())
		if err != nil {
			return nil, err
		}
		tree, err = zkmeta.Snapshot(ctx, conn, z.Chroot)
		conn.Close()
		if err != nil {
			return nil, fmt.Errorf("znode snapshot of %s: %w", z.Chroot, err)
		}
	}
	b, err := a.openTarget(ctx, cfg.Target)
	if err != nil {
		return nil, permanent(err)
	}
	defer b.Close()
	name := in.TaskDir + "/" + backupset.Name(in.KafkaVersion, backupset.SourceMetadata, in.ExecutedAt) + ".tar.gz"
	entry, err := writeHashed(ctx, b, name, func(w io.Writer) error { return metaarchive.WriteArchive(w, snap, tree) })
	return entry, permanent(err)
}

// OffsetsFile is the content of the consumer offsets data source.
type OffsetsFile struct {
	Cluster   string        `json:"cluster"`
	ClusterID string        `json:"cluster_id,omitempty"`
	TakenAt   time.Time     `json:"taken_at"`
	Groups    []kmeta.Group `json:"groups"`
}

// SnapshotOffsets writes every consumer group's committed offsets for the
// chosen topics. It runs before the cut, so every offset it records is at
// or below the exported end offsets.
func (a *Activities) SnapshotOffsets(ctx context.Context, in SnapshotInput) (*backupset.FileEntry, error) {
	cfg := in.Config
	cl, err := kclient.New(cfg.Cluster)
	if err != nil {
		return nil, badInput("%v", err)
	}
	defer cl.Close()
	filter, _ := cfg.Topics.Compile()
	groups, err := kmeta.GroupOffsets(ctx, cl, filter)
	if err != nil {
		return nil, fmt.Errorf("consumer offsets of %s: %w", cfg.Cluster.Name, err)
	}
	b, err := a.openTarget(ctx, cfg.Target)
	if err != nil {
		return nil, permanent(err)
	}
	defer b.Close()
	taken := time.Now().UTC()
	doc := OffsetsFile{Cluster: cfg.Cluster.Name, TakenAt: taken, Groups: groups}
	name := in.TaskDir + "/" + backupset.Name(in.KafkaVersion, backupset.SourceOffsets, in.ExecutedAt) + ".json"
	entry, err := writeHashed(ctx, b, name, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	})
	if entry != nil {
		entry.TakenAt = &taken
	}
	return entry, permanent(err)
}

// CutInput asks for the consistent cut of the chosen topics.
type CutInput struct {
	Cluster config.Cluster `json:"cluster"`
	Topics  []TopicRef     `json:"topics"`
	// Base, for an incremental run, is the previous recovery point on Target.
	Target storage.Target `json:"target,omitempty"`
	Base   string         `json:"base,omitempty"`
}

// PartitionRange is one partition's range to export, [Start, End).
type PartitionRange struct {
	Topic     string `json:"topic"`
	TopicID   string `json:"topic_id,omitempty"`
	Partition int32  `json:"partition"`
	Start     int64  `json:"start"`
	End       int64  `json:"end"`
	// Incremental ranges start at the base's end offset; LogStart is then the
	// partition's log start offset at the cut. FullReason says why a
	// partition of an incremental run is copied whole.
	Incremental bool   `json:"incremental,omitempty"`
	LogStart    int64  `json:"log_start,omitempty"`
	FullReason  string `json:"full_reason,omitempty"`
}

// CutOffsets fixes, once, where every partition's export ends: its last
// stable offset, so open transactions are left out and aborted ones are
// filtered by the read_committed export.
func (a *Activities) CutOffsets(ctx context.Context, in CutInput) ([]PartitionRange, error) {
	cl, err := kclient.New(in.Cluster)
	if err != nil {
		return nil, badInput("%v", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	names := make([]string, len(in.Topics))
	for i, t := range in.Topics {
		names[i] = t.Name
	}
	if len(names) == 0 {
		return nil, nil
	}
	starts, err := adm.ListStartOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("start offsets: %w", err)
	}
	ends, err := adm.ListCommittedOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("last stable offsets: %w", err)
	}
	var out []PartitionRange
	for _, t := range in.Topics {
		for p := int32(0); p < t.Partitions; p++ {
			s, ok1 := starts.Lookup(t.Name, p)
			e, ok2 := ends.Lookup(t.Name, p)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("cut %s[%d]: partition not listed", t.Name, p)
			}
			if s.Err != nil || e.Err != nil {
				return nil, fmt.Errorf("cut %s[%d]: %v %v", t.Name, p, s.Err, e.Err)
			}
			out = append(out, PartitionRange{Topic: t.Name, TopicID: t.ID, Partition: p, Start: s.Offset, End: e.Offset})
		}
	}
	if in.Base != "" {
		if err := a.incrementalRanges(ctx, adm, in, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// incrementalRanges moves each range's start to the base recovery point's
// end offset where that gives exactly what a full copy would: the same
// topic ID, nothing deleted by retention in between, the log not truncated
// below it, and a topic that is not compacted (compaction may since have
// removed records the chain holds). Every other partition is copied whole
// and says why.
func (a *Activities) incrementalRanges(ctx context.Context, adm *kadm.Client, in CutInput, out []PartitionRange) error {
	b, err := a.openTarget(ctx, in.Target)
	if err != nil {
		return permanent(err)
	}
	defer b.Close()
	base, err := a.loadManifest(ctx, b, in.Base)
	if err != nil {
		return permanent(fmt.Errorf("incremental base: %w", err))
	}
	names := make([]string, len(in.Topics))
	for i, t := range in.Topics {
		names[i] = t.Name
	}
	compacted := map[string]bool{}
	rcs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return fmt.Errorf("topic configs: %w", err)
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			return fmt.Errorf("topic configs of %s: %w", rc.Name, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" && c.Value != nil && strings.Contains(*c.Value, "compact") {
				compacted[rc.Name] = true
			}
		}
	}
	for i := range out {
		r := &out[i]
		bp := base.Partition(r.Topic, r.Partition)
		switch {
		case bp == nil:
			r.FullReason = "not in the previous recovery point"
		case bp.TopicID != r.TopicID:
			r.FullReason = fmt.Sprintf("topic recreated since the previous recovery point (id %s, was %s)", r.TopicID, bp.TopicID)
		case compacted[r.Topic]:
			r.FullReason = "compacted topic: copied whole every run"
		case r.Start > bp.EndOffset:
			r.FullReason = fmt.Sprintf("offsets %d..%d were deleted by retention after the previous recovery point", bp.EndOffset, r.Start-1)
		case r.End < bp.EndOffset:
			r.FullReason = fmt.Sprintf("log end %d is below the previous recovery point's end %d (truncated)", r.End, bp.EndOffset)
		default:
			r.Incremental, r.LogStart, r.Start = true, r.Start, bp.EndOffset
		}
	}
	return nil
}

// ExportInput is one partition to export.
type ExportInput struct {
	Cluster config.Cluster       `json:"cluster"`
	Target  storage.Target       `json:"target"`
	Options config.BackupOptions `json:"options"`
	Dir     string               `json:"dir"` // the run's topic-data folder
	Range   PartitionRange       `json:"range"`
}

// ExportProgress is heartbeated after every durable segment and returned at
// the end; a retried attempt resumes at NextOffset with Segments kept.
type ExportProgress struct {
	Topic      string                  `json:"topic"`
	Partition  int32                   `json:"partition"`
	NextOffset int64                   `json:"next_offset"`
	EndOffset  int64                   `json:"end_offset"`
	Segments   []backupset.SegmentInfo `json:"segments"`
	Gaps       []kdata.Gap             `json:"gaps,omitempty"`
	Records    int64                   `json:"records"` // including the open segment, for progress
	Bytes      int64                   `json:"bytes"`
	Attempt    int32                   `json:"attempt"`
}

// ExportPartition exports one partition's range to segment files.
func (a *Activities) ExportPartition(ctx context.Context, in ExportInput) (*ExportProgress, error) {
	info := activity.GetInfo(ctx)
	prog := ExportProgress{Topic: in.Range.Topic, Partition: in.Range.Partition, NextOffset: in.Range.Start, EndOffset: in.Range.End}
	if activity.HasHeartbeatDetails(ctx) {
		var prev ExportProgress
		if err := activity.GetHeartbeatDetails(ctx, &prev); err == nil && prev.NextOffset >= in.Range.Start {
			prog = prev
			a.log().Info("export resumes", "topic", in.Range.Topic, "partition", in.Range.Partition, "offset", prev.NextOffset, "segments", len(prev.Segments))
		}
	}
	prog.Attempt = info.Attempt
	if prog.NextOffset >= in.Range.End {
		return &prog, nil
	}
	b, err := a.openTarget(ctx, in.Target)
	if err != nil {
		return nil, permanent(err)
	}
	defer b.Close()
	cl, err := kclient.New(in.Cluster)
	if err != nil {
		return nil, badInput("%v", err)
	}
	defer cl.Close()
	id, err := kmeta.ParseTopicID(in.Range.TopicID)
	if err != nil {
		return nil, badInput("topic %s: %v", in.Range.Topic, err)
	}
	spec := kdata.ExportSpec{
		Topic: in.Range.Topic, TopicID: id, Partition: in.Range.Partition,
		From: prog.NextOffset, To: in.Range.End, Dir: in.Dir,
		SegmentBytes:   int64(in.Options.SegmentBytes),
		Compression:    in.Options.Compression,
		FetchMaxBytes:  int32(in.Options.FetchMaxBytes),
		ThrottleBytesS: int64(in.Options.ThrottleBytesPerSecond),
	}
	base := prog
	lastBeat := time.Now()
	res, err := kdata.Export(ctx, cl, b, spec, func(s backupset.SegmentInfo) error {
		prog.Segments = append(prog.Segments, s)
		prog.NextOffset = s.NextOffset
		activity.RecordHeartbeat(ctx, prog)
		lastBeat = time.Now()
		return nil
	}, func(p kdata.Progress) {
		prog.Records, prog.Bytes = base.Records+p.Records, base.Bytes+p.Bytes
		if time.Since(lastBeat) > 2*time.Second {
			activity.RecordHeartbeat(ctx, prog)
			lastBeat = time.Now()
		}
	})
	prog.Gaps = append(prog.Gaps, res.Gaps...)
	if err != nil {
		activity.RecordHeartbeat(ctx, prog)
		return nil, permanent(err)
	}
	prog.NextOffset = in.Range.End
	prog.Records, prog.Bytes = 0, 0
	for _, s := range prog.Segments {
		prog.Records += s.Records
		prog.Bytes += s.Size
	}
	return &prog, nil
}

// ManifestInput is the finished recovery point.
type ManifestInput struct {
	Target   storage.Target      `json:"target"`
	Manifest *backupset.Manifest `json:"manifest"`
}

// WriteManifest checks that every listed file is on the target with its
// size, then writes the manifest, last: from now on the recovery point exists.
func (a *Activities) WriteManifest(ctx context.Context, in ManifestInput) (string, error) {
	b, err := a.openTarget(ctx, in.Target)
	if err != nil {
		return "", permanent(err)
	}
	defer b.Close()
	m := in.Manifest
	for _, f := range m.Files() {
		st, err := b.Stat(ctx, f.Name)
		if err != nil {
			return "", permanent(fmt.Errorf("manifest: listed file missing: %w", err))
		}
		if st.Size != f.Size {
			return "", permanent(fmt.Errorf("manifest: %s is %d bytes on the target, %d when written", f.Name, st.Size, f.Size))
		}
	}
	m.FinishedAt = time.Now().UTC()
	m.ComputeTotals()
	data, err := m.Marshal()
	if err != nil {
		return "", err
	}
	name := backupset.ManifestName(m.TaskDir, m.KafkaVersion, m.ExecutedAt)
	if _, err := storage.WriteFile(ctx, b, name, strings.NewReader(string(data))); err != nil {
		return "", permanent(err)
	}
	return name, nil
}
