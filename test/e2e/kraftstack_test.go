package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/api/enums/v1"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/hostops"
	"github.com/kbr-project/kbr/internal/kraftlog"
	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/workflows"
)

// The KRaft metadata restore against the shared stack's KRaft node
// (kraft1, a combined broker+controller on 29092 whose metadata log and
// topic data share one log dir). The tests that stop it hold
// /tmp/kbr-stack-busy (takeStack) and put it back as it was, also when
// they fail: the node's metadata log dir is copied aside while the node is
// stopped, before anything is wiped, and put back by the cleanup unless the
// node answers again with the stack's cluster id.

// kraftNode is the stack's KRaft node as a test drives it.
type kraftNode struct {
	env  testenv.Env
	b    testenv.BrokerEnv
	boot []string
	// name is the cluster's name in kbr and host its agent's host name,
	// both unique to the test: no other test's agent polls its queue.
	name, host string
	cid        string // the stack's cluster id
}

func stackKRaft(t *testing.T) *kraftNode {
	t.Helper()
	env := testenv.Load(t)
	id := randID()
	k := &kraftNode{env: env, b: env.Broker("kraft1"), boot: env.KRaftBootstrap, name: "kr-" + id, host: "kraft1-" + id}
	k.cid = liveKRaftID(t, k.boot)
	if want := env.Vars["KBR_KRAFT_CLUSTER_ID"]; k.cid != want {
		t.Fatalf("the KRaft node reports cluster id %q, the stack's is %q: is the stack healthy?", k.cid, want)
	}
	return k
}

func (k *kraftNode) dataDir() string { return k.b.LogDirs[0] }

// startAgent runs `kbr agent` for the node; extra flags win.
func (k *kraftNode) startAgent(t *testing.T, extra ...string) (stop func()) {
	t.Helper()
	args := append([]string{"agent", "--address", h.address, "--host", k.host, "--server-properties", k.b.Properties,
		"--stop-command", k.b.Stop, "--start-command", k.b.Start, "--listener", k.b.Addr,
		"--kafka-libs", filepath.Join(k.env.StackDir, "lib", "kafka4"), "--log-level", "warn"}, extra...)
	cmd := h.start(args...)
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_, _ = cmd.Process.Wait()
		}
	}
	t.Cleanup(stop)
	time.Sleep(2 * time.Second) // let it poll
	return stop
}

// backup takes a backup with the kraft_log data source (and the logical
// metadata of the test's topics).
func (k *kraftNode) backup(t *testing.T, task, target string, topics ...string) string {
	t.Helper()
	cfg := writeFile(t, "backup.yaml", `
cluster:
  name: `+k.name+`
  bootstrap_servers: `+quoteList(k.boot)+`
  controllers: [{id: 1, host: `+k.host+`}]
task: `+task+`
data_sources: [metadata, kraft_log]
topics: {include: `+quoteList(topics)+`}
target: {type: LocalDir, path: `+target+`}
options: {min_free_bytes: 1MiB}
`)
	r := kbr(t, 5*time.Minute, "backup", "run", "-f", cfg, "--json")
	if r.code != 0 {
		t.Fatalf("backup exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var out struct {
		Result struct {
			RecoveryPoint string `json:"recovery_point"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("backup --json: %v\n%s", err, r.stdout)
	}
	return out.Result.RecoveryPoint
}

func (k *kraftNode) restoreConfig(t *testing.T, target, rp string) string {
	return writeFile(t, "kraftrestore.yaml", `
cluster:
  name: `+k.name+`
  bootstrap_servers: `+quoteList(k.boot)+`
source:
  target: {type: LocalDir, path: `+target+`}
  recovery_point: `+rp+`
nodes: [{id: 1, host: `+k.host+`}]
options: {stop_timeout: 2m, start_timeout: 3m, healthy_timeout: 3m}
`)
}

// stopAndSave stops the node and copies its metadata log dir and
// meta.properties aside; the cleanup puts them back and starts the node
// unless it answers with the stack's cluster id by then.
func (k *kraftNode) stopAndSave(t *testing.T) (meta []byte) {
	t.Helper()
	mustStack(t, k.env, "broker-stop", "kraft1")
	aside := t.TempDir()
	src := filepath.Join(k.dataDir(), kraftlog.Dir)
	if out, err := exec.Command("cp", "-a", src, filepath.Join(aside, kraftlog.Dir)).CombinedOutput(); err != nil {
		t.Fatalf("copy %s aside: %v\n%s", src, err, out)
	}
	meta, err := os.ReadFile(filepath.Join(k.dataDir(), kraftlog.MetaFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.heal(t, aside, meta) })
	return meta
}

func (k *kraftNode) heal(t *testing.T, aside string, meta []byte) {
	if id := liveKRaftIDOrEmpty(k.boot); id == k.cid {
		return
	}
	t.Logf("the KRaft node does not answer with cluster id %s: putting its metadata log back as it was", k.cid)
	if out, err := stack(k.env, "broker-stop", "kraft1"); err != nil {
		t.Errorf("heal: stop kraft1: %v\n%s", err, out)
	}
	dst := filepath.Join(k.dataDir(), kraftlog.Dir)
	if err := os.RemoveAll(dst); err != nil {
		t.Errorf("heal: %v", err)
	}
	if out, err := exec.Command("cp", "-a", filepath.Join(aside, kraftlog.Dir), dst).CombinedOutput(); err != nil {
		t.Errorf("heal: put %s back: %v\n%s", dst, err, out)
	}
	if err := os.WriteFile(filepath.Join(k.dataDir(), kraftlog.MetaFile), meta, 0o644); err != nil {
		t.Errorf("heal: %v", err)
	}
	if out, err := stack(k.env, "broker-start", "kraft1"); err != nil {
		t.Errorf("heal: start kraft1: %v\n%s", err, out)
	}
	if id := liveKRaftIDOrEmpty(k.boot); id != k.cid {
		t.Errorf("heal: the KRaft node answers with cluster id %q after being put back, want %s", id, k.cid)
	}
}

func liveKRaftIDOrEmpty(brokers []string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return ""
	}
	defer cl.Close()
	md, err := kadm.NewClient(cl).Metadata(ctx)
	if err != nil {
		return ""
	}
	return md.Cluster
}

// TestKRaftRestoreStackNode: the stack's KRaft node loses its metadata log
// (its __cluster_metadata-0 deleted, meta.properties rewritten with a new
// cluster id and directory id, as after a reinstall), while the topics'
// data stays on its disk. Before: a backup with the kraft_log data source
// (the manifest lists the node's snapshot and segments with size and
// SHA-256, it verifies, `kbr backups show` decodes the topic with its id).
// `kbr restore kraft` then brings the node back: healthy, the stack's
// cluster id and directory id in meta.properties, the topic with its
// original topic id and every record (key, value, headers, timestamp,
// offset, order) readable again; a topic created after the backup is gone.
func TestKRaftRestoreStackNode(t *testing.T) {
	takeStack(t)
	k := stackKRaft(t)
	adm := kadm.NewClient(client(t, k.boot))
	topic := "e2e-" + randID() + "-kraftlog"
	createTopic(t, adm, topic, 3, 1, map[string]*string{"retention.ms": sptr("123456789")})
	cl := client(t, k.boot)
	for i := 0; i < 90; i++ {
		produceSync(t, cl, &kgo.Record{Topic: topic, Partition: int32(i % 3), Key: []byte(fmt.Sprint("k", i)), Value: []byte(strings.Repeat("v", i)),
			Headers: []kgo.RecordHeader{{Key: "n", Value: []byte(fmt.Sprint(i))}}})
	}
	want := readAll(t, k.boot, topic)
	ids := topicIDs(t, k.boot)
	if ids[topic] == "" {
		t.Fatalf("no id for %s: %v", topic, ids)
	}

	k.startAgent(t)
	target := t.TempDir()
	rp := k.backup(t, "kr", target, topic)

	// The manifest: the node's snapshot and log, sizes and checksums, the
	// ids of its meta.properties.
	data, err := os.ReadFile(filepath.Join(target, rp))
	if err != nil {
		t.Fatal(err)
	}
	m, err := backupset.ReadManifest(rp, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.KRaftLog) != 1 || m.Mode != "kraft" {
		t.Fatalf("manifest kraft_log %+v, mode %s", m.KRaftLog, m.Mode)
	}
	n := m.KRaftLog[0]
	origMeta := kraftlog.ParseMeta(mustRead(t, filepath.Join(k.dataDir(), kraftlog.MetaFile)))
	if n.Node != 1 || n.ClusterID != k.cid || n.EndOffset == 0 || len(n.Files) < 2 || n.MetadataDirID() != origMeta.DirectoryID {
		t.Errorf("node in the manifest: %+v (meta.properties: %+v)", n, origMeta)
	}
	for _, f := range n.Files {
		if !strings.HasPrefix(f.Name, m.TaskDir+"/") || len(f.SHA256) != 64 {
			t.Errorf("file %+v", f)
		}
		b := mustRead(t, filepath.Join(target, f.Name))
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(b)) != f.Size {
			t.Errorf("%s: %d bytes, SHA-256 %x; the manifest says %d, %s", f.Name, len(b), sum, f.Size, f.SHA256)
		}
	}
	if r := kbr(t, 2*time.Minute, "backups", "verify", filepath.Join(target, rp), "--json"); r.code != 0 {
		t.Errorf("verify: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	r := kbr(t, time.Minute, "backups", "show", filepath.Join(target, rp), "--json")
	if r.code != 0 {
		t.Fatalf("backups show: exit %d %s", r.code, r.stderr)
	}
	var shown struct {
		Metadata kraftlog.Summary `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tp := range shown.Metadata.Topics {
		if tp.Name == topic {
			found = true
			if tp.ID != ids[topic] || len(tp.Partitions) != 3 {
				t.Errorf("show: %s has id %s and %d partitions, want %s and 3", topic, tp.ID, len(tp.Partitions), ids[topic])
			}
		}
	}
	if !found || shown.Metadata.Features["metadata.version"] == 0 {
		t.Errorf("show: %s not listed (%d topics), features %v", topic, len(shown.Metadata.Topics), shown.Metadata.Features)
	}

	// Metadata written after the backup is lost by the restore.
	after := topic + "-after"
	createTopic(t, adm, after, 1, 1, nil)

	// The accident: the metadata log gone, meta.properties of a reinstall.
	k.stopAndSave(t)
	if err := os.RemoveAll(filepath.Join(k.dataDir(), kraftlog.Dir)); err != nil {
		t.Fatal(err)
	}
	fresh := kraftlog.UUIDString([]byte("kbr-reinstalled!"))
	freshDir := kraftlog.UUIDString([]byte("kbr-new-dir-id!!"))
	reinstalled := fmt.Sprintf("#\nnode.id=1\ndirectory.id=%s\nversion=1\ncluster.id=%s\n", freshDir, fresh)
	if err := os.WriteFile(filepath.Join(k.dataDir(), kraftlog.MetaFile), []byte(reinstalled), 0o644); err != nil {
		t.Fatal(err)
	}

	r = kbr(t, 10*time.Minute, "restore", "kraft", "-f", k.restoreConfig(t, target, rp), "--json")
	out := parseKRaftRestore(t, r)
	if r.code != 0 {
		b, _ := os.ReadFile(filepath.Join(k.env.StackDir, "kraft1", "server.log"))
		t.Fatalf("KRaft restore exit %d: %s\nstderr: %s\nkraft1's log, the end:\n%s", r.code, out.Error, r.stderr, tail(string(b), 3000))
	}
	rep := out.Result
	if rep.ClusterID != k.cid || rep.Health == nil || fmt.Sprint(rep.Health.Brokers) != "[1]" {
		t.Errorf("report: cluster id %s (want %s), health %+v", rep.ClusterID, k.cid, rep.Health)
	}
	if rep.SafetyBackup == nil {
		t.Error("no safety backup")
	} else if sm, err := os.ReadFile(filepath.Join(target, rep.SafetyBackup.RecoveryPoint)); err != nil || !strings.Contains(string(sm), fresh) {
		t.Errorf("safety backup %s: %v (it should hold the reinstalled cluster id %s)", rep.SafetyBackup.RecoveryPoint, err, fresh)
	}
	if notes := strings.Join(rep.Notes, " "); !strings.Contains(notes, "metadata written after it is lost") || !strings.Contains(notes, "original topic ids") {
		t.Errorf("notes %q", rep.Notes)
	}
	if got := kraftlog.ParseMeta(mustRead(t, filepath.Join(k.dataDir(), kraftlog.MetaFile))); got != origMeta {
		t.Errorf("meta.properties after the restore %+v, before the accident %+v", got, origMeta)
	}
	if id := liveKRaftID(t, k.boot); id != k.cid {
		t.Errorf("cluster id %s, want %s", id, k.cid)
	}
	now := topicIDs(t, k.boot)
	if now[topic] != ids[topic] {
		t.Errorf("topic %s has id %s, had %s", topic, now[topic], ids[topic])
	}
	if _, ok := now[after]; ok {
		t.Errorf("%s, created after the backup, is there", after)
	}
	got := readAll(t, k.boot, topic)
	wd, wn := digest(want)
	gd, gn := digest(got)
	if wd != gd || wn != 90 {
		t.Errorf("%s: %d records, digest %s; before the accident %d, %s", topic, gn, gd, wn, wd)
	}
	compareTopic(t, topic, want, got)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKRaftRestoreStackRefusals: a version mismatch, a missing agent and a
// damaged recovery point are refused in preflight, before the node is
// stopped or anything is written.
func TestKRaftRestoreStackRefusals(t *testing.T) {
	takeStack(t) // nothing should stop; if something did, no one else is hurt by it
	k := stackKRaft(t)
	topic := "e2e-" + randID() + "-kraftref"
	createTopic(t, kadm.NewClient(client(t, k.boot)), topic, 1, 1, nil)
	stop := k.startAgent(t)
	target := t.TempDir()
	rp := k.backup(t, "krref", target, topic)
	stop() // each case starts the agent it needs
	cfg := k.restoreConfig(t, target, rp)
	pid := hostops.ListenerPID(portOf(k.b.Addr))
	if pid <= 0 {
		t.Fatalf("no process listens on %s", k.b.Addr)
	}
	check := func(t *testing.T, want ...string) {
		t.Helper()
		r := kbr(t, 3*time.Minute, "restore", "kraft", "-f", cfg, "--json")
		out := parseKRaftRestore(t, r)
		if r.code != 1 || !strings.Contains(out.Error, "refused before anything was stopped") {
			t.Errorf("exit %d, error %q; want a refusal\nstderr: %s", r.code, out.Error, r.stderr)
		}
		for _, w := range want {
			if !strings.Contains(out.Error, w) {
				t.Errorf("refusal %q does not say %q", out.Error, w)
			}
		}
		if now := hostops.ListenerPID(portOf(k.b.Addr)); now != pid {
			t.Errorf("the node's process changed: %d before, %d after", pid, now)
		}
		if m, _ := filepath.Glob(filepath.Join(target, k.name+"-before-restore_*")); len(m) > 0 {
			t.Errorf("a refused restore wrote a safety copy: %v", m)
		}
	}
	t.Run("version mismatch", func(t *testing.T) {
		defer k.startAgent(t, "--kafka-version", "3.9.1")()
		check(t, "has Kafka 3.9.1 installed, the backup was taken from Kafka 4.1")
	})
	t.Run("missing agent", func(t *testing.T) {
		check(t, "node 1: no agent answered for host "+k.host)
	})
	t.Run("damaged recovery point", func(t *testing.T) {
		defer k.startAgent(t)()
		segs, _ := filepath.Glob(filepath.Join(target, "krref_*", "*_kraftlog_*", "node-1", "*.log"))
		if len(segs) != 1 {
			t.Fatalf("node 1's segments in the backup: %v", segs)
		}
		b := mustRead(t, segs[0])
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(segs[0], b, 0o644); err != nil {
			t.Fatal(err)
		}
		check(t, "damaged", filepath.Base(segs[0]))
	})
}

// TestKRaftRestoreStackRetry fails a restore at "start Kafka" (the node's
// start command fails once) and resumes it with `kbr restore retry`: the
// retry's history schedules no activity of the steps the first run
// completed, and the node ends healthy with the topic's original id; a
// succeeded restore cannot run again.
func TestKRaftRestoreStackRetry(t *testing.T) {
	takeStack(t)
	k := stackKRaft(t)
	ctx := context.Background()
	adm := kadm.NewClient(client(t, k.boot))
	kept := "e2e-" + randID() + "-kraftkept"
	createTopic(t, adm, kept, 2, 1, nil)
	produceSync(t, client(t, k.boot), &kgo.Record{Topic: kept, Value: []byte("v")})
	ids := topicIDs(t, k.boot)
	mark := filepath.Join(t.TempDir(), "failed-once")
	failOnce := fmt.Sprintf(`if [ ! -e %s ]; then touch %s; echo "the start fails once, on purpose"; exit 1; fi; %s`, mark, mark, k.b.Start)
	k.startAgent(t, "--start-command", failOnce)
	target := t.TempDir()
	rp := k.backup(t, "krretry", target, kept)
	drift := kept + "-drift" // created after the backup: the restore undoes it
	createTopic(t, adm, drift, 1, 1, nil)
	// The node's metadata log, copied aside while it is stopped: the
	// cleanup puts it back if the node does not come back.
	k.stopAndSave(t)
	mustStack(t, k.env, "broker-start", "kraft1")

	id := "kraft-retry-" + randID()
	cfg := k.restoreConfig(t, target, rp)
	r := kbr(t, 10*time.Minute, "restore", "kraft", "-f", cfg, "--id", id, "--json")
	out := parseKRaftRestore(t, r)
	if r.code != 1 || !strings.Contains(out.Error, "start Kafka") || !strings.Contains(out.Error, "fails once, on purpose") {
		t.Fatalf("first run: exit %d, error %q, want a failure at start Kafka\nstderr: %s", r.code, out.Error, r.stderr)
	}
	st := kbr(t, time.Minute, "restore", "status", id, "--json")
	var p workflows.Progress
	if err := json.Unmarshal([]byte(st.stdout), &p); err != nil {
		t.Fatalf("status --json: %v\n%s%s", err, st.stdout, st.stderr)
	}
	if len(p.Steps) != len(workflows.KRaftRestoreSteps) {
		t.Errorf("steps %+v", p.Steps)
	}
	for i, step := range p.Steps {
		want := "done"
		switch step.Name {
		case workflows.StepStartKafka:
			want = "failed"
		case workflows.StepWaitHealthy, workflows.StepReport:
			want = "pending"
		}
		if i >= len(workflows.KRaftRestoreSteps) || step.Name != workflows.KRaftRestoreSteps[i] || step.Status != want {
			t.Errorf("after the failed run, step %d %q is %s, want %s", i, step.Name, step.Status, want)
		}
	}
	tc := temporalClient(t)
	first, err := tc.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	r = kbr(t, 10*time.Minute, "restore", "retry", id, "--json")
	out = parseKRaftRestore(t, r)
	if r.code != 0 {
		t.Fatalf("retry exit %d: %s\nstderr: %s", r.code, out.Error, r.stderr)
	}
	if out.Result.ResumedFrom != first.GetWorkflowExecutionInfo().GetExecution().GetRunId() {
		t.Errorf("resumed from %q", out.Result.ResumedFrom)
	}
	var types []string
	it := tc.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			types = append(types, a.GetActivityType().GetName())
		}
	}
	joined := " " + strings.Join(types, " ") + " "
	for _, a := range []string{"ResolveRecoveryPoint", "KRaftRestorePreflight", "KRaftInspect", "CopyKRaftLog", "WriteIndex", "StopKafka", "PutKRaftLog", "FixKRaftMeta"} {
		if strings.Contains(joined, " "+a+" ") {
			t.Errorf("the retry ran %s again (activities %v)", a, types)
		}
	}
	if !strings.Contains(joined, " StartKafka ") || !strings.Contains(joined, " WaitKRaftHealthy ") {
		t.Errorf("the retry's activities %v lack StartKafka or WaitKRaftHealthy", types)
	}
	if m, _ := filepath.Glob(filepath.Join(target, k.name+"-before-restore_*", "*_manifest_*.json")); len(m) != 1 {
		t.Errorf("safety backups: %v, want exactly one", m)
	}
	now := topicIDs(t, k.boot)
	if now[kept] != ids[kept] || now[drift] != "" {
		t.Errorf("after the restore %s has id %q (had %s), %s id %q (created after the backup)", kept, now[kept], ids[kept], drift, now[drift])
	}
	if r := kbr(t, time.Minute, "restore", "retry", id); r.code == 0 || !strings.Contains(r.stderr, "succeeded") {
		t.Errorf("second retry: exit %d, %s", r.code, r.stderr)
	}
	if r := kbr(t, time.Minute, "restore", "kraft", "-f", cfg, "--id", id); r.code == 0 || !strings.Contains(r.stderr, "runs once") {
		t.Errorf("same id again: exit %d, %s", r.code, r.stderr)
	}
}

type kraftRestoreOut struct {
	WorkflowID string                       `json:"workflow_id"`
	Status     string                       `json:"status"`
	Error      string                       `json:"error"`
	Result     workflows.KRaftRestoreReport `json:"result"`
}

func parseKRaftRestore(t *testing.T, r result) kraftRestoreOut {
	t.Helper()
	var out kraftRestoreOut
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("--json output: %v\nstdout: %s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return out
}

// topicIDs names each topic's id.
func topicIDs(t *testing.T, brokers []string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	td, err := kadm.NewClient(client(t, brokers)).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range td {
		out[d.Topic] = kraftlog.UUIDString(d.ID[:])
	}
	return out
}

// digest is the SHA-256 of every record of a topic as readAll reads it.
func digest(recs map[int32][]rec) (string, int) {
	h := sha256.New()
	var ps []int32
	for p := range recs {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	n := 0
	for _, p := range ps {
		for _, r := range recs[p] {
			fmt.Fprintf(h, "%d/%d/%x/%x/%d/", p, r.Offset, r.Key, r.Value, r.Timestamp)
			for _, hd := range r.Headers {
				fmt.Fprintf(h, "%s=%x,", hd.Key, hd.Value)
			}
			n++
		}
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

func liveKRaftID(t *testing.T, brokers []string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	md, err := kadm.NewClient(client(t, brokers)).Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return md.Cluster
}
