package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/twmb/franz-go/pkg/kadm"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/kclient"
	"github.com/kbr-project/kbr/internal/kmeta"
	"github.com/kbr-project/kbr/internal/metaarchive"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/internal/zkmeta"
	"github.com/kbr-project/kbr/storage"
)

// readMetaArchive reads a recovery point's metadata archive, checking its
// size and SHA-256 against the manifest while reading.
func (a *Activities) readMetaArchive(ctx context.Context, target storage.Target, manifest string) (*backupset.Manifest, *kmeta.Snapshot, *zkmeta.Tree, error) {
	b, err := a.openTarget(ctx, target)
	if err != nil {
		return nil, nil, nil, permanent(err)
	}
	defer b.Close()
	m, err := a.loadManifest(ctx, b, manifest)
	if err != nil {
		return nil, nil, nil, permanent(err)
	}
	if m.Metadata == nil {
		return m, nil, nil, badInputTyped(fmt.Sprintf("recovery point %s holds no metadata (data sources %v): choose one with metadata", manifest, m.DataSources), names.ErrPreflight)
	}
	var (
		snap *kmeta.Snapshot
		tree *zkmeta.Tree
	)
	err = readVerified(ctx, b, *m.Metadata, func(r io.Reader) error {
		var err error
		snap, tree, err = metaarchive.ReadArchive(r)
		return err
	})
	if err != nil {
		return m, nil, nil, permanent(err)
	}
	return m, snap, tree, nil
}

// ClusterIDOf reads the cluster id a tree holds in <chroot>/cluster/id
// ({"version":"1","id":"..."}), "" when it has none.
func ClusterIDOf(t *zkmeta.Tree) string {
	if t == nil {
		return ""
	}
	p := t.Chroot + "/cluster/id"
	if t.Chroot == "/" {
		p = "/cluster/id"
	}
	z := t.Get(p)
	if z == nil {
		return ""
	}
	var v struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(z.Data, &v) != nil {
		return ""
	}
	return v.ID
}

// MetaPreflightInput is a metadata restore to check.
type MetaPreflightInput struct {
	Config   config.MetadataRestore `json:"config"`
	Manifest string                 `json:"manifest"`
}

// MetaPreflight is what the read-only checks of a metadata restore found.
type MetaPreflight struct {
	BackupVersion   string `json:"backup_version"`
	BackupClusterID string `json:"backup_cluster_id"`
	BackupChroot    string `json:"backup_chroot"`
	BackupZnodes    int    `json:"backup_znodes"`
	// LiveVersion and LiveClusterID are the running cluster's, when it
	// answers (LiveError says why not: brokers down after a wiped
	// ZooKeeper is what a metadata restore is for).
	LiveVersion   string `json:"live_version,omitempty"`
	LiveClusterID string `json:"live_cluster_id,omitempty"`
	LiveError     string `json:"live_error,omitempty"`
	// LiveZnodes counts the znodes under the target chroot now (0 when it
	// does not exist).
	LiveZnodes int `json:"live_znodes"`
}

// MetadataPreflight checks, reading only, what a metadata restore needs
// from the backup, ZooKeeper and Kafka: the archive reads and holds a
// ZooKeeper tree with a cluster id and no redacted ACL; ZooKeeper answers;
// what the live cluster runs, if it answers. Every problem is listed in one
// non-retryable error.
func (a *Activities) MetadataPreflight(ctx context.Context, in MetaPreflightInput) (*MetaPreflight, error) {
	cfg := in.Config
	if err := cfg.Validate(); err != nil {
		return nil, badInput("%v", err)
	}
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	rep := &MetaPreflight{}

	m, snap, tree, err := a.readMetaArchive(ctx, cfg.Source.Target, in.Manifest)
	switch {
	case err != nil:
		fail("%v", err)
	case tree == nil:
		fail("recovery point %s holds no znodes: it is a KRaft cluster's backup (mode %q); use the logical metadata restore", in.Manifest, m.Mode)
	default:
		rep.BackupVersion = m.KafkaVersion
		rep.BackupChroot = tree.Chroot
		rep.BackupZnodes = len(tree.Znodes)
		rep.BackupClusterID = ClusterIDOf(tree)
		if rep.BackupClusterID == "" && snap != nil {
			rep.BackupClusterID = snap.ClusterID
		}
		if rep.BackupClusterID == "" {
			fail("recovery point %s: no cluster id in %s/cluster/id nor in the logical metadata", in.Manifest, tree.Chroot)
		}
		if red := tree.Redacted(); len(red) > 0 {
			fail("%v", &zkmeta.RedactedError{Paths: red})
		}
	}

	z := cfg.Cluster.ZooKeeper
	timeout := cfg.Cluster.ConnectTimeout.D()
	if conn, err := zkmeta.Connect(ctx, z.Connect, timeout); err != nil {
		fail("cluster.zookeeper.connect: %v", err)
	} else {
		n, err := zkmeta.Count(ctx, conn, z.Chroot)
		conn.Close()
		if err != nil && !strings.Contains(err.Error(), "does not exist") {
			fail("cluster.zookeeper.chroot %s: %v", z.Chroot, err)
		}
		rep.LiveZnodes = n
	}

	rep.LiveVersion, rep.LiveClusterID, err = liveCluster(ctx, cfg.Cluster)
	if err != nil {
		rep.LiveError = err.Error()
	}
	if len(problems) > 0 {
		return rep, temporal.NewNonRetryableApplicationError("preflight failed:\n  - "+strings.Join(problems, "\n  - "), names.ErrPreflight, nil, rep)
	}
	return rep, nil
}

// liveCluster asks the running cluster for its version and id.
func liveCluster(ctx context.Context, c config.Cluster) (version, clusterID string, err error) {
	cl, err := kclient.New(c)
	if err != nil {
		return "", "", err
	}
	defer cl.Close()
	if _, err := kclient.Ping(ctx, c, cl); err != nil {
		return "", "", err
	}
	tctx, cancel := context.WithTimeout(ctx, 3*c.ConnectTimeout.D())
	defer cancel()
	snap, err := kmeta.Take(tctx, cl, kmeta.Options{Topics: func(string) bool { return false }})
	if err != nil {
		return "", "", err
	}
	v := snap.KafkaVersion
	if c.KafkaVersion != "" {
		v = c.KafkaVersion
	}
	return v, snap.ClusterID, nil
}

// SafetyBackupInput is the metadata backup taken before a restore changes
// anything.
type SafetyBackupInput struct {
	Config       config.MetadataRestore `json:"config"`
	KafkaVersion string                 `json:"kafka_version"`
	ExecutedAt   time.Time              `json:"executed_at"`
}

// SafetyBackupResult names the recovery point of the safety backup.
type SafetyBackupResult struct {
	RecoveryPoint string   `json:"recovery_point"`
	Znodes        int      `json:"znodes"`
	Notes         []string `json:"notes,omitempty"`
}

// SafetyBackup backs up the cluster's current metadata, as the seed
// advises before a restore, to the restore's source target under the task
// safety_backup.task: every znode of the chroot (none when it does not
// exist) and the logical metadata when Kafka answers (after a wiped
// ZooKeeper it does not; the znodes are then the whole backup). It is a
// regular recovery point: `kbr backups list` shows it and a metadata
// restore can bring it back.
func (a *Activities) SafetyBackup(ctx context.Context, in SafetyBackupInput) (*SafetyBackupResult, error) {
	cfg := in.Config
	z := cfg.Cluster.ZooKeeper
	res := &SafetyBackupResult{}
	conn, err := zkmeta.Connect(ctx, z.Connect, cfg.Cluster.ConnectTimeout.D())
	if err != nil {
		return nil, err
	}
	tree := &zkmeta.Tree{Chroot: z.Chroot, TakenAt: time.Now().UTC()}
	ok, _, err := conn.Exists(z.Chroot)
	if err == nil && ok {
		tree, err = zkmeta.Snapshot(ctx, conn, z.Chroot)
	}
	conn.Close()
	if err != nil {
		return nil, fmt.Errorf("safety backup: znodes of %s: %w", z.Chroot, err)
	}
	if red := tree.Redacted(); len(red) > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d znodes have redacted ACLs and could not be restored from this backup: %s", len(red), strings.Join(red, ", ")))
	}
	res.Znodes = len(tree.Znodes)

	snap := &kmeta.Snapshot{ClusterID: ClusterIDOf(tree), KafkaVersion: in.KafkaVersion, TakenAt: tree.TakenAt}
	if cl, err := kclient.New(cfg.Cluster); err == nil {
		if _, err := kclient.Ping(ctx, cfg.Cluster, cl); err == nil {
			tctx, cancel := context.WithTimeout(ctx, 4*cfg.Cluster.ConnectTimeout.D())
			if s, err := kmeta.Take(tctx, cl, kmeta.Options{Groups: true}); err == nil {
				snap = s
			} else {
				res.Notes = append(res.Notes, "logical metadata not read: "+err.Error())
			}
			cancel()
		} else {
			res.Notes = append(res.Notes, "Kafka did not answer, znodes only: "+err.Error())
		}
		cl.Close()
	}

	b, err := a.openTarget(ctx, cfg.Source.Target)
	if err != nil {
		return nil, permanent(err)
	}
	defer b.Close()
	task := cfg.SafetyBackup.Task
	taskDir, err := findTaskDir(ctx, b, task)
	if err != nil {
		return nil, permanent(err)
	}
	if taskDir == "" {
		taskDir = backupset.TaskDir(task, in.ExecutedAt)
	}
	version := backupset.SafeVersion(in.KafkaVersion)
	name := taskDir + "/" + backupset.Name(version, backupset.SourceMetadata, in.ExecutedAt) + ".tar.gz"
	entry, err := writeHashed(ctx, b, name, func(w io.Writer) error { return metaarchive.WriteArchive(w, snap, tree) })
	if err != nil {
		return nil, permanent(err)
	}
	info := activity.GetInfo(ctx)
	m := &backupset.Manifest{
		Format: backupset.FormatVersion, Task: task, TaskDir: taskDir, Cluster: cfg.Cluster.Name,
		ClusterID: snap.ClusterID, KafkaVersion: version, Mode: "zookeeper", Kind: "full",
		ExecutedAt: in.ExecutedAt, DataSources: []string{config.SourceMetadata}, Compression: "none",
		WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID, Metadata: entry,
	}
	m.FinishedAt = time.Now().UTC()
	m.ComputeTotals()
	rp := backupset.ManifestName(m.TaskDir, m.KafkaVersion, m.ExecutedAt)
	if err := writeIndex(ctx, b, rp, m); err != nil {
		return nil, err
	}
	res.RecoveryPoint = rp
	return res, nil
}

// RestoreZnodesInput is the znode restore step.
type RestoreZnodesInput struct {
	Config   config.MetadataRestore `json:"config"`
	Manifest string                 `json:"manifest"`
}

// RestoreZnodesResult counts what the znode restore did.
type RestoreZnodesResult struct {
	Chroot    string         `json:"chroot"`
	ClusterID string         `json:"cluster_id"`
	Applied   zkmeta.Applied `json:"applied"`
	Unchanged int            `json:"unchanged"`
	// Skipped are the backed-up ephemeral znodes left to the brokers.
	Skipped []string `json:"skipped,omitempty"`
}

// RestoreZnodes writes the backed-up znodes into the live chroot (see
// zkmeta.PlanRestore). It refuses while a broker is registered in
// /brokers/ids: the brokers must be stopped (a broker killed rather than
// stopped stays registered until its session expires, so this error is
// retried). A retry plans again from the live tree, so nothing is done
// twice.
func (a *Activities) RestoreZnodes(ctx context.Context, in RestoreZnodesInput) (*RestoreZnodesResult, error) {
	cfg := in.Config
	_, _, tree, err := a.readMetaArchive(ctx, cfg.Source.Target, in.Manifest)
	if err != nil {
		return nil, err
	}
	if tree == nil {
		return nil, badInputTyped(fmt.Sprintf("recovery point %s holds no znodes", in.Manifest), names.ErrPreflight)
	}
	z := cfg.Cluster.ZooKeeper
	conn, err := zkmeta.Connect(ctx, z.Connect, cfg.Cluster.ConnectTimeout.D())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ids := z.Chroot + "/brokers/ids"
	if z.Chroot == "/" {
		ids = "/brokers/ids"
	}
	kids, _, err := conn.Children(ids)
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return nil, fmt.Errorf("list %s: %w", ids, err)
	}
	if len(kids) > 0 {
		sort.Strings(kids)
		return nil, fmt.Errorf("brokers %s are still registered in %s: every broker must be stopped before the znodes are restored", strings.Join(kids, ", "), ids)
	}
	plan, applied, err := zkmeta.Restore(ctx, conn, tree, z.Chroot, zkmeta.ApplyOptions{
		BatchSize: cfg.Options.BatchSize,
		Progress:  func(done int) { activity.RecordHeartbeat(ctx, done) },
	})
	if err != nil {
		var re *zkmeta.RedactedError
		if errors.As(err, &re) {
			return nil, badInputTyped(err.Error(), names.ErrPreflight)
		}
		return nil, err
	}
	return &RestoreZnodesResult{Chroot: z.Chroot, ClusterID: ClusterIDOf(tree), Applied: applied,
		Unchanged: plan.Unchanged, Skipped: plan.Skipped}, nil
}

// WaitHealthyInput is the last wait of a metadata restore.
type WaitHealthyInput struct {
	Config    config.MetadataRestore `json:"config"`
	ClusterID string                 `json:"cluster_id"`
}

// ClusterHealth is the cluster as the wait last saw it.
type ClusterHealth struct {
	ClusterID       string   `json:"cluster_id"`
	Brokers         []int32  `json:"brokers"`
	Topics          int      `json:"topics"`
	Partitions      int      `json:"partitions"`
	UnderReplicated []string `json:"under_replicated,omitempty"`
	Offline         []string `json:"offline,omitempty"`
}

func (h ClusterHealth) problem(want []int32, clusterID string) string {
	have := map[int32]bool{}
	for _, b := range h.Brokers {
		have[b] = true
	}
	var missing []string
	for _, b := range want {
		if !have[b] {
			missing = append(missing, fmt.Sprint(b))
		}
	}
	switch {
	case len(missing) > 0:
		return "brokers not registered: " + strings.Join(missing, ", ")
	case clusterID != "" && h.ClusterID != clusterID:
		return fmt.Sprintf("the cluster reports id %s, the restored id is %s", h.ClusterID, clusterID)
	case len(h.Offline) > 0:
		return fmt.Sprintf("%d partitions without a leader: %s", len(h.Offline), firstN(h.Offline, 10))
	case len(h.UnderReplicated) > 0:
		return fmt.Sprintf("%d partitions under-replicated: %s", len(h.UnderReplicated), firstN(h.UnderReplicated, 10))
	}
	return ""
}

func firstN(s []string, n int) string {
	if len(s) > n {
		return strings.Join(s[:n], ", ") + ", …"
	}
	return strings.Join(s, ", ")
}

// WaitClusterHealthy waits, up to options.healthy_timeout, until every
// broker of the config is registered, the cluster reports the restored
// cluster id, and no partition is offline or under-replicated.
func (a *Activities) WaitClusterHealthy(ctx context.Context, in WaitHealthyInput) (*ClusterHealth, error) {
	cfg := in.Config
	var want []int32
	for _, b := range cfg.Brokers {
		want = append(want, b.ID)
	}
	return waitHealthy(ctx, cfg.Cluster, want, in.ClusterID, cfg.Options.HealthyTimeout.D())
}

// waitHealthy waits, up to timeout, until every broker of want is
// registered, the cluster reports clusterID, and no partition is offline
// or under-replicated; it heartbeats what it still waits for.
func waitHealthy(ctx context.Context, cluster config.Cluster, want []int32, clusterID string, timeout time.Duration) (*ClusterHealth, error) {
	cl, err := kclient.New(cluster)
	if err != nil {
		return nil, badInput("%v", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(timeout)
	last := "no answer yet"
	for {
		mctx, cancel := context.WithTimeout(ctx, cluster.ConnectTimeout.D())
		md, err := adm.Metadata(mctx)
		cancel()
		if err == nil {
			h := healthOf(md)
			last = h.problem(want, clusterID)
			if last == "" {
				return &h, nil
			}
		} else {
			last = err.Error()
		}
		activity.RecordHeartbeat(ctx, last)
		if time.Now().After(deadline) {
			return nil, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("cluster %s not healthy within %s: %s", cluster.Name, timeout, last), "NotHealthy", nil)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// healthOf reads the brokers, and the offline and under-replicated
// partitions, from a metadata answer.
func healthOf(md kadm.Metadata) ClusterHealth {
	h := ClusterHealth{ClusterID: md.Cluster}
	for _, b := range md.Brokers {
		h.Brokers = append(h.Brokers, b.NodeID)
	}
	sort.Slice(h.Brokers, func(i, j int) bool { return h.Brokers[i] < h.Brokers[j] })
	for _, t := range md.Topics.Sorted() {
		h.Topics++
		for _, p := range t.Partitions.Sorted() {
			h.Partitions++
			name := fmt.Sprintf("%s[%d]", t.Topic, p.Partition)
			if p.Leader < 0 {
				h.Offline = append(h.Offline, name)
			} else if len(p.ISR) < len(p.Replicas) {
				h.UnderReplicated = append(h.UnderReplicated, name)
			}
		}
	}
	return h
}
