package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
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
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/internal/schemareg/wire"
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
	ClusterID    string `json:"cluster_id"`
	KafkaVersion string `json:"kafka_version"`
	Mode         string `json:"mode"` // zookeeper | kraft
	Brokers      int    `json:"brokers"`
	// Topics is filled while checking; the report carries only how many
	// and the first few.
	Topics            []TopicRef    `json:"-"`
	TopicCount        int           `json:"topics"`
	TopicExamples     []string      `json:"topic_examples,omitempty"`
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

// BackupPreflight checks, without writing anything, that the backup can
// run: config, brokers, ZooKeeper, target, free space and open-file
// limits. Every failure it finds is listed in one non-retryable error.
func (a *Activities) BackupPreflight(ctx context.Context, in PreflightInput) (*PreflightReport, error) {
	cfg := in.Config
	if err := cfg.Validate(); err != nil {
		return nil, badInput("%v", err)
	}
	rep := &PreflightReport{StagingFree: -1, TargetFree: -1, Mode: "kraft"}
	cl, release, err := a.kafka(ctx, cfg.Cluster)
	if err != nil {
		return nil, err
	}
	defer release()

	// Kafka, ZooKeeper and the target are checked at once: each section
	// fills its own fields of rep and lists its own findings, which are
	// joined in this order below.
	var kafka, zk, target, registry checks
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); checkKafka(ctx, cfg, cl, rep, &kafka) }()
	go func() { defer wg.Done(); a.checkTarget(ctx, in, rep, &target) }()
	go func() { defer wg.Done(); checkRegistry(ctx, cfg, &registry) }()
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
	for _, c := range []checks{kafka, zk, space, target, registry} {
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
	rep.summarize()
	if len(problems) > 0 {
		return rep, temporal.NewNonRetryableApplicationError("preflight failed:\n  - "+strings.Join(problems, "\n  - "), names.ErrPreflight, nil, PreflightProblems{Problems: problems})
	}
	return rep, nil
}

// PreflightProblems is the detail of a failed preflight: every problem it
// found, each naming the field or the target.
type PreflightProblems struct {
	Problems []string `json:"problems"`
}

// summarize keeps the report small whatever the topic count: the counts,
// and the names of the first few topics.
func (rep *PreflightReport) summarize() {
	rep.TopicCount = len(rep.Topics)
	for i, t := range rep.Topics {
		if i == 20 {
			break
		}
		rep.TopicExamples = append(rep.TopicExamples, t.Name)
	}
	rep.Topics = nil
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
	b, release, err := a.target(ctx, cfg.Target)
	if err != nil {
		c.fail("target %s: %v", cfg.Target, err)
		return
	}
	defer release()
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
	cl, release, err := a.kafka(ctx, cfg.Cluster)
	if err != nil {
		return nil, err
	}
	defer release()
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
	b, release2, err := a.target(ctx, cfg.Target)
	if err != nil {
		return nil, err
	}
	defer release2()
	name := in.TaskDir + "/" + backupset.Name(in.KafkaVersion, backupset.SourceMetadata, in.ExecutedAt) + ".tar.gz"
	entry, err := writeHashed(ctx, b, name, func(w io.Writer) error { return metaarchive.WriteArchive(w, snap, tree) })
	return entry, permanent(err)
}

// SnapshotOffsets writes every consumer group's committed offsets for the
// chosen topics. It runs before the cut, so every offset it records is at
// or below the exported end offsets.
func (a *Activities) SnapshotOffsets(ctx context.Context, in SnapshotInput) (*backupset.FileEntry, error) {
	cfg := in.Config
	cl, release, err := a.kafka(ctx, cfg.Cluster)
	if err != nil {
		return nil, err
	}
	defer release()
	filter, _ := cfg.Topics.Compile()
	groups, err := kmeta.GroupOffsets(ctx, cl, filter)
	if err != nil {
		return nil, fmt.Errorf("consumer offsets of %s: %w", cfg.Cluster.Name, err)
	}
	b, release2, err := a.target(ctx, cfg.Target)
	if err != nil {
		return nil, err
	}
	defer release2()
	taken := time.Now().UTC()
	doc := backupset.OffsetsFile{Cluster: cfg.Cluster.Name, TakenAt: taken, Groups: groups}
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

// PlanRunInput asks whether a run of a task is full or incremental.
type PlanRunInput struct {
	Target    storage.Target `json:"target"`
	TaskDir   string         `json:"task_dir"`
	Policy    string         `json:"policy"`
	FullEvery int            `json:"full_every,omitempty"`
	MaxCopies int            `json:"max_copies,omitempty"`
}

// PlanBackupRun applies the task's policy (backupset.PlanRun) to the
// recovery points in its folder, loading the newest one's chain.
func (a *Activities) PlanBackupRun(ctx context.Context, in PlanRunInput) (*backupset.RunPlan, error) {
	if in.Policy == config.PolicyFull || in.Policy == "" {
		p := backupset.PlanRun(backupset.RunInput{Policy: in.Policy})
		return &p, nil
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
	ri := backupset.RunInput{Policy: in.Policy, FullEvery: in.FullEvery, MaxCopies: in.MaxCopies,
		Manifests: taskManifests(files), Sizes: map[string]int64{}, Links: map[string]backupset.ChainLink{}}
	for _, f := range files {
		ri.Sizes[f.Name] = f.Size
	}
	if n := len(ri.Manifests); n > 0 {
		for cur := ri.Manifests[n-1]; cur != "" && len(ri.Links) < 10000; {
			if _, seen := ri.Links[cur]; seen {
				break
			}
			if _, ok := ri.Sizes[cur]; !ok {
				break
			}
			link := a.chainLink(ctx, b, cur)
			ri.Links[cur] = link
			if link.Err != nil {
				break
			}
			cur = link.Base
		}
	}
	p := backupset.PlanRun(ri)
	return &p, nil
}

// chainLink loads what the planners need of a recovery point: its base and
// every file it needs besides its manifest.
func (a *Activities) chainLink(ctx context.Context, b storage.Backend, name string) backupset.ChainLink {
	l, err := a.loadRecoveryPoint(ctx, b, name)
	if err != nil {
		return backupset.ChainLink{Err: err}
	}
	link := backupset.ChainLink{Base: l.Manifest.Base, Files: l.Manifest.Files()}
	for _, p := range l.Parts {
		link.Files = append(link.Files, p.Files...)
	}
	return link
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

// PlanExportInput asks for the consistent cut of the chosen topics and
// the run's work units.
type PlanExportInput struct {
	Cluster config.Cluster       `json:"cluster"`
	Target  storage.Target       `json:"target"`
	Topics  config.TopicFilter   `json:"topics"`
	Options config.BackupOptions `json:"options"`
	// Dir is the run's topic-data folder, where the unit plans go.
	Dir string `json:"dir"`
	// Base, for an incremental run, is the previous recovery point.
	Base string `json:"base,omitempty"`
}

// UnitRef is a work unit of a backup as the workflow sees it: its plan is
// on the target.
type UnitRef struct {
	Unit       int    `json:"unit"`
	Plan       string `json:"plan"`
	Partitions int    `json:"partitions"`
	Offsets    int64  `json:"offsets"`
	Bytes      int64  `json:"bytes"`
}

// ExportPlan is the cut and the units, without the ranges themselves: those
// are in each unit's plan file, so no payload grows with the partition count.
type ExportPlan struct {
	Units      []UnitRef `json:"units"`
	Topics     int       `json:"topics"`
	Partitions int       `json:"partitions"`
	Offsets    int64     `json:"offsets"`
	// FullCopied counts the partitions an incremental run copies whole;
	// FullExamples names the first few, with why.
	FullCopied   int      `json:"full_copied,omitempty"`
	FullExamples []string `json:"full_examples,omitempty"`
}

// UnitPlan is a unit's plan file.
type UnitPlan struct {
	Unit   int               `json:"unit"`
	Leader int32             `json:"leader"`
	Ranges []backupset.Range `json:"ranges"`
}

// PlanExport fixes, once, where every partition's export starts and ends:
// from the log start (or, incremental, the base's end) to the last stable
// offset, so open transactions are left out and aborted ones are filtered
// by the read_committed export. It groups the partitions into work units
// (backupset.PlanUnits) and writes each unit's plan to the target.
func (a *Activities) PlanExport(ctx context.Context, in PlanExportInput) (*ExportPlan, error) {
	cl, release, err := a.kafka(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	defer release()
	filter, err := in.Topics.Compile()
	if err != nil {
		return nil, badInput("%v", err)
	}
	snap, err := kmeta.Take(ctx, cl, kmeta.Options{Topics: filter, IncludeInternal: in.Topics.IncludeInternal, Layout: true})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: read metadata: %w", in.Cluster.Name, err)
	}
	adm := kadm.NewClient(cl)
	var names []string
	var refs []TopicRef
	for _, t := range snap.Topics {
		names = append(names, t.Name)
		refs = append(refs, TopicRef{Name: t.Name, ID: t.ID, Partitions: int32(len(t.Partitions))})
	}
	sort.Strings(names)
	plan := &ExportPlan{Topics: len(names)}
	if len(names) == 0 {
		return plan, nil
	}
	starts, err := adm.ListStartOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("start offsets: %w", err)
	}
	ends, err := adm.ListCommittedOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("last stable offsets: %w", err)
	}
	sizes, _ := partitionSizes(ctx, cl, refs) // for balancing only
	var ranges []backupset.Range
	for _, t := range snap.Topics {
		for _, p := range t.Partitions {
			s, ok1 := starts.Lookup(t.Name, p.ID)
			e, ok2 := ends.Lookup(t.Name, p.ID)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("cut %s[%d]: partition not listed", t.Name, p.ID)
			}
			if s.Err != nil || e.Err != nil {
				return nil, fmt.Errorf("cut %s[%d]: %v %v", t.Name, p.ID, s.Err, e.Err)
			}
			ranges = append(ranges, backupset.Range{Topic: t.Name, TopicID: t.ID, Partition: p.ID, Start: s.Offset, End: e.Offset,
				Leader: p.Leader, Bytes: sizes[backupset.TopicPartition{Topic: t.Name, Partition: p.ID}]})
		}
	}
	b, releaseT, err := a.target(ctx, in.Target)
	if err != nil {
		return nil, err
	}
	defer releaseT()
	if in.Base != "" {
		base, err := a.loadRecoveryPoint(ctx, b, in.Base)
		if err != nil {
			return nil, permanent(fmt.Errorf("incremental base: %w", err))
		}
		compacted, err := compactedTopics(ctx, adm, names)
		if err != nil {
			return nil, err
		}
		ranges = backupset.IncrementalRanges(ranges, baseEnds(base), compacted)
		for _, r := range ranges {
			if !r.Incremental {
				plan.FullCopied++
				if len(plan.FullExamples) < 10 {
					plan.FullExamples = append(plan.FullExamples, fmt.Sprintf("%s[%d]: %s", r.Topic, r.Partition, r.FullReason))
				}
			}
		}
	}
	units := backupset.PlanUnits(ranges, backupset.UnitOptions{Parallelism: in.Options.Parallelism,
		MaxBytes: int64(in.Options.UnitBytes), MaxPartitions: in.Options.UnitPartitions})
	for i, u := range units {
		name := backupset.PlanName(in.Dir, i)
		if _, err := writeJSON(ctx, b, name, UnitPlan{Unit: i, Leader: u.Leader, Ranges: u.Ranges}); err != nil {
			return nil, permanent(fmt.Errorf("write unit plan: %w", err))
		}
		ref := UnitRef{Unit: i, Plan: name, Partitions: len(u.Ranges), Bytes: u.Bytes}
		for _, r := range u.Ranges {
			ref.Offsets += r.End - r.Start
		}
		plan.Units = append(plan.Units, ref)
		plan.Partitions += ref.Partitions
		plan.Offsets += ref.Offsets
		activity.RecordHeartbeat(ctx, i)
	}
	return plan, nil
}

// baseEnds is what the incremental planner needs of the base.
func baseEnds(l backupset.Loaded) map[backupset.TopicPartition]backupset.BasePartition {
	out := map[backupset.TopicPartition]backupset.BasePartition{}
	add := func(p backupset.PartitionBackup) {
		out[backupset.TopicPartition{Topic: p.Topic, Partition: p.Partition}] = backupset.BasePartition{TopicID: p.TopicID, EndOffset: p.EndOffset}
	}
	for _, p := range l.Manifest.Partitions {
		add(p)
	}
	for _, part := range l.Parts {
		for _, p := range part.Partitions {
			add(p)
		}
	}
	return out
}

func compactedTopics(ctx context.Context, adm *kadm.Client, names []string) (map[string]bool, error) {
	compacted := map[string]bool{}
	rcs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("topic configs: %w", err)
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			return nil, fmt.Errorf("topic configs of %s: %w", rc.Name, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" && c.Value != nil && strings.Contains(*c.Value, "compact") {
				compacted[rc.Name] = true
			}
		}
	}
	return compacted, nil
}

// partitionSizes is the size of one replica of every chosen partition.
func partitionSizes(ctx context.Context, cl *kgo.Client, topics []TopicRef) (map[backupset.TopicPartition]int64, error) {
	out := map[backupset.TopicPartition]int64{}
	if len(topics) == 0 {
		return out, nil
	}
	adm := kadm.NewClient(cl)
	dirs, err := adm.DescribeAllLogDirs(ctx, topicsSet(topics))
	if err != nil {
		return out, err
	}
	for _, bd := range dirs {
		for _, d := range bd {
			for topic, parts := range d.Topics {
				for _, p := range parts {
					k := backupset.TopicPartition{Topic: topic, Partition: p.Partition}
					out[k] = max(out[k], p.Size)
				}
			}
		}
	}
	return out, nil
}

// ExportUnitInput is one work unit to export.
type ExportUnitInput struct {
	Cluster  config.Cluster       `json:"cluster"`
	Target   storage.Target       `json:"target"`
	Options  config.BackupOptions `json:"options"`
	Dir      string               `json:"dir"`      // the run's topic-data folder
	Manifest string               `json:"manifest"` // the recovery point's manifest, to name the part
	Unit     UnitRef              `json:"unit"`
	// ScanSchemaIDs collects the schema ids the records carry (the schemas
	// data source checks them against the registry's export).
	ScanSchemaIDs bool `json:"scan_schema_ids,omitempty"`
}

// ExportBeat is what an export unit heartbeats: its durable state, from
// which a retried attempt resumes, and its live counts for progress.
type ExportBeat struct {
	State   kdata.ExportState `json:"state"`
	Records int64             `json:"records"`
	Bytes   int64             `json:"bytes"`
	Done    int               `json:"done"` // partitions read to their end
}

// UnitResult is a finished unit: its manifest part, and what it lost.
type UnitResult struct {
	Unit int               `json:"unit"`
	Part backupset.PartRef `json:"part"`
	// Lost counts the records retention deleted before the export reached
	// them; LostExamples names the first few ranges.
	LostPartitions int      `json:"lost_partitions,omitempty"`
	LostRanges     int      `json:"lost_ranges,omitempty"`
	LostOffsets    int64    `json:"lost_offsets,omitempty"`
	LostExamples   []string `json:"lost_examples,omitempty"`
	// SchemaIDs are the schema ids the unit's records carry (ScanSchemaIDs).
	SchemaIDs *wire.IDSet `json:"schema_ids,omitempty"`
}

// ExportUnit exports a work unit's partitions into pack files and writes
// its manifest part. A retried attempt resumes each partition after the
// last pack the previous attempt committed (its heartbeat).
func (a *Activities) ExportUnit(ctx context.Context, in ExportUnitInput) (*UnitResult, error) {
	info := activity.GetInfo(ctx)
	b, releaseT, err := a.target(ctx, in.Target)
	if err != nil {
		return nil, err
	}
	defer releaseT()
	var plan UnitPlan
	if err := readJSON(ctx, b, in.Unit.Plan, &plan); err != nil {
		return nil, permanent(fmt.Errorf("unit %d: plan %s: %w", in.Unit.Unit, in.Unit.Plan, err))
	}
	spec := kdata.ExportSpec{Unit: plan.Unit, Attempt: info.Attempt, Dir: in.Dir,
		PackBytes: int64(in.Options.SegmentBytes), Compression: in.Options.Compression,
		FetchMaxBytes: int32(in.Options.FetchMaxBytes), PartitionMaxBytes: int32(in.Options.FetchPartitionBytes),
		ThrottleBytesS: int64(in.Options.ThrottleBytesPerSecond), ScanSchemaIDs: in.ScanSchemaIDs}
	for _, r := range plan.Ranges {
		id, err := kmeta.ParseTopicID(r.TopicID)
		if err != nil {
			return nil, badInput("topic %s: %v", r.Topic, err)
		}
		spec.Partitions = append(spec.Partitions, kdata.ExportPartition{Topic: r.Topic, TopicID: id, Partition: r.Partition, From: r.Start, To: r.End})
	}
	a.log().Info("export unit starts", "unit", plan.Unit, "attempt", info.Attempt, "partitions", len(spec.Partitions), "throttle", spec.ThrottleBytesS)
	st := kdata.NewExportState(spec)
	if activity.HasHeartbeatDetails(ctx) {
		var prev ExportBeat
		if err := activity.GetHeartbeatDetails(ctx, &prev); err == nil && len(prev.State.Next) == len(spec.Partitions) {
			st = prev.State
			a.log().Info("export unit resumes", "unit", plan.Unit, "attempt", info.Attempt, "packs", len(st.Packs))
		}
	}
	cl, release, err := a.kafka(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	defer release()

	var mu sync.Mutex
	beat := ExportBeat{State: st}
	heartbeat := func() {
		mu.Lock()
		defer mu.Unlock()
		activity.RecordHeartbeat(ctx, beat)
	}
	// Heartbeat on a clock as well: a throttled or slow unit still beats.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				heartbeat()
			case <-stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	heartbeat()
	st, err = kdata.Export(ctx, cl, b, spec, st, func(s kdata.ExportState) error {
		mu.Lock()
		beat.State = s
		mu.Unlock()
		heartbeat()
		return nil
	}, func(p kdata.Progress) {
		mu.Lock()
		beat.Records, beat.Bytes, beat.Done = p.Records, p.Bytes, p.Done
		mu.Unlock()
	})
	if err != nil {
		heartbeat()
		return nil, permanent(err)
	}
	part := &backupset.Part{Format: backupset.FormatVersion, Unit: plan.Unit}
	for _, ps := range st.Packs {
		part.Files = append(part.Files, ps.File)
	}
	res := &UnitResult{Unit: plan.Unit, SchemaIDs: st.SchemaIDs}
	lost := map[int][]backupset.OffsetRange{}
	for _, l := range st.Lost {
		lost[l.P] = append(lost[l.P], backupset.OffsetRange{From: l.From, To: l.To})
	}
	for i, r := range plan.Ranges {
		pb := r.Backup()
		pb.Records, pb.Bytes, pb.Lost = st.Records[i], st.Bytes[i], lost[i]
		for k, ps := range st.Packs {
			if slices.Contains(ps.Slots, i) {
				pb.Packs = append(pb.Packs, k)
			}
		}
		if len(pb.Lost) > 0 {
			res.LostPartitions++
			for _, g := range pb.Lost {
				res.LostRanges++
				res.LostOffsets += g.Records()
				if len(res.LostExamples) < 5 {
					res.LostExamples = append(res.LostExamples, fmt.Sprintf("%s[%d] offsets %d..%d", r.Topic, r.Partition, g.From, g.To-1))
				}
			}
		}
		part.Partitions = append(part.Partitions, pb)
	}
	name := backupset.PartName(in.Manifest, plan.Unit, info.Attempt)
	data, err := backupset.MarshalPart(part)
	if err != nil {
		return nil, err
	}
	entry, err := writeHashed(ctx, b, name, func(w io.Writer) error { _, err := w.Write(data); return err })
	if err != nil {
		return nil, permanent(err)
	}
	res.Part = backupset.PartRef{FileEntry: *entry, Unit: plan.Unit, Partitions: len(part.Partitions), Files: len(part.Files)}
	defer func() {
		a.log().Info("export unit done", "unit", plan.Unit, "attempt", info.Attempt, "records", res.Part.Records, "bytes", res.Part.Bytes, "packs", res.Part.Files)
	}()
	for _, p := range part.Partitions {
		res.Part.Records += p.Records
	}
	for _, f := range part.Files {
		res.Part.Bytes += f.Size
	}
	return res, nil
}

func readJSON(ctx context.Context, b storage.Backend, name string, v any) error {
	rc, err := b.Open(ctx, name)
	if err != nil {
		return err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, MaxManifestBytes))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// IndexInput is the finished recovery point's index.
type IndexInput struct {
	Target   storage.Target      `json:"target"`
	Manifest *backupset.Manifest `json:"manifest"`
}

// WriteIndex checks that every file the recovery point needs is on the
// target with its size (its metadata and offsets files, its parts, and every
// pack they list), then writes the manifest index, last: from now on the
// recovery point exists. It returns the manifest's name.
func (a *Activities) WriteIndex(ctx context.Context, in IndexInput) (string, error) {
	b, release, err := a.target(ctx, in.Target)
	if err != nil {
		return "", err
	}
	defer release()
	m := in.Manifest
	name := backupset.ManifestName(m.TaskDir, m.KafkaVersion, m.ExecutedAt)
	files, err := b.List(ctx, m.TaskDir+"/")
	if err != nil {
		return "", permanent(err)
	}
	sizes := make(map[string]int64, len(files))
	for _, f := range files {
		sizes[f.Name] = f.Size
	}
	check := func(f backupset.FileEntry) error {
		sz, ok := sizes[f.Name]
		if !ok {
			return permanent(fmt.Errorf("manifest: listed file %s is not on the target", f.Name))
		}
		if sz != f.Size {
			return permanent(fmt.Errorf("manifest: %s is %d bytes on the target, %d when written", f.Name, sz, f.Size))
		}
		return nil
	}
	for _, f := range m.Files() {
		if err := check(f); err != nil {
			return "", err
		}
	}
	lost := &backupset.LostSummary{}
	if m.Format >= 2 {
		parts, err := loadParts(ctx, b, name, m)
		if err != nil {
			return "", permanent(err)
		}
		for _, p := range parts {
			for _, f := range p.Files {
				if err := check(f); err != nil {
					return "", err
				}
			}
			for _, pb := range p.Partitions {
				if len(pb.Lost) > 0 {
					lost.Partitions++
				}
				for _, g := range pb.Lost {
					lost.Ranges++
					lost.Offsets += g.Records()
					if len(lost.Examples) < 5 {
						lost.Examples = append(lost.Examples, fmt.Sprintf("%s[%d] offsets %d..%d", pb.Topic, pb.Partition, g.From, g.To-1))
					}
				}
			}
			activity.RecordHeartbeat(ctx, p.Unit)
		}
	}
	if lost.Ranges > 0 {
		m.Lost = lost
	}
	m.FinishedAt = time.Now().UTC()
	m.ComputeTotals()
	if err := writeIndex(ctx, b, name, m); err != nil {
		return "", err
	}
	a.tidy(ctx, b, name, m, files)
	return name, nil
}

// tidy removes, once the index is written, what the run wrote that its
// recovery point does not list: the unit plans, and the packs and parts of
// attempts that lost their lease. What it misses the next prune removes.
func (a *Activities) tidy(ctx context.Context, b storage.Backend, name string, m *backupset.Manifest, files []storage.FileInfo) {
	listed := map[string]bool{}
	for _, n := range m.Names() {
		listed[n] = true
	}
	if parts, err := loadParts(ctx, b, name, m); err == nil {
		for _, p := range parts {
			for _, f := range p.Files {
				listed[f.Name] = true
			}
		}
	} else {
		return
	}
	dataDir := m.TaskDir + "/" + backupset.Name(m.KafkaVersion, backupset.SourceTopicData, m.ExecutedAt) + "/"
	partsDir := strings.TrimSuffix(name, ".json") + ".parts/"
	var deleted []string
	for _, f := range files {
		if listed[f.Name] || !(strings.HasPrefix(f.Name, dataDir) || strings.HasPrefix(f.Name, partsDir)) {
			continue
		}
		if err := b.Delete(ctx, f.Name); err != nil {
			a.log().Warn("tidy after the manifest", "file", f.Name, "error", err)
			return
		}
		deleted = append(deleted, f.Name)
	}
	if _, _, err := storage.RemoveEmptyDirs(ctx, b, deleted, m.TaskDir); err != nil {
		a.log().Warn("tidy after the manifest: empty directories", "error", err)
	}
}

// writeIndex writes a manifest under its name.
func writeIndex(ctx context.Context, b storage.Backend, name string, m *backupset.Manifest) error {
	data, err := m.Marshal()
	if err != nil {
		return err
	}
	if _, err := storage.WriteFile(ctx, b, name, strings.NewReader(string(data))); err != nil {
		return permanent(err)
	}
	return nil
}
