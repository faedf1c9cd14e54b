package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/kbr-project/kbr/internal/hostops"
	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/internal/zkmeta"
	"github.com/kbr-project/kbr/workflows"
)

// These tests stop, start and wipe the shared ZooKeeper-mode stack. They
// hold /tmp/kbr-stack-busy while they do (other agents' tests wait for it)
// and put the stack back as it was, also when they fail.

const stackBusyFile = "/tmp/kbr-stack-busy"

var zkBrokers = []string{"zk1", "zk2", "zk3"}

// takeStack waits until no one else holds the stack, then holds it until
// the test ends. Its cleanup is registered first, so it runs last.
func takeStack(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Minute)
	for {
		f, err := os.OpenFile(stackBusyFile, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "kbr e2e %s (issue 5 metadata restore), pid %d, since %s\n", t.Name(), os.Getpid(), time.Now().UTC().Format(time.RFC3339))
			f.Close()
			t.Cleanup(func() { os.Remove(stackBusyFile) })
			return
		}
		if !errors.Is(err, os.ErrExist) {
			t.Fatalf("take %s: %v", stackBusyFile, err)
		}
		if b, _ := os.ReadFile(stackBusyFile); holderGone(b) {
			// Its holder was killed (a test run interrupted): nobody holds it.
			t.Logf("removing %s left by a process that is gone: %s", stackBusyFile, strings.TrimSpace(string(b)))
			os.Remove(stackBusyFile)
			continue
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(stackBusyFile)
			t.Fatalf("the stack is still busy after 30 minutes: %s", b)
		}
		time.Sleep(5 * time.Second)
	}
}

var holderPID = regexp.MustCompile(`\bpid (\d+)\b`)

// holderGone says whether the busy file names a process that no longer runs.
// A file that names none is taken as held.
func holderGone(b []byte) bool {
	m := holderPID.FindSubmatch(b)
	if m == nil {
		return false
	}
	pid, err := strconv.Atoi(string(m[1]))
	if err != nil || pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

// stack runs deploy/stack.sh of the running stack.
func stack(env testenv.Env, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, env.Vars["KBR_STACK_SH"], args...).CombinedOutput()
	return string(out), err
}

func mustStack(t *testing.T, env testenv.Env, args ...string) {
	t.Helper()
	if out, err := stack(env, args...); err != nil {
		t.Fatalf("stack.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// stackState is what the stack looked like before a test changed it.
type stackState struct {
	env       testenv.Env
	clusterID string
	meta      map[string][]byte // log dir -> meta.properties
	// zkAside is ZooKeeper's original data dir, moved aside by a wipe.
	zkAside string
}

func saveStack(t *testing.T, env testenv.Env) *stackState {
	t.Helper()
	s := &stackState{env: env, meta: map[string][]byte{}}
	for _, n := range zkBrokers {
		for _, d := range env.Broker(n).LogDirs {
			b, err := os.ReadFile(filepath.Join(d, hostops.MetaFile))
			if err != nil {
				t.Fatalf("read %s meta.properties: %v", n, err)
			}
			s.meta[d] = b
		}
	}
	s.clusterID = liveClusterID(t, env)
	if s.clusterID == "" {
		t.Fatal("the ZooKeeper-mode cluster reports no cluster id: is the stack healthy?")
	}
	t.Cleanup(func() { s.heal(t) })
	return s
}

func liveClusterID(t *testing.T, env testenv.Env) string {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.ZKModeBootstrap...))
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

// healthy: three brokers, the original cluster id, no partition
// under-replicated, and the original meta.properties everywhere.
func (s *stackState) healthy(t *testing.T) string {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.env.ZKModeBootstrap...))
	if err != nil {
		return err.Error()
	}
	defer cl.Close()
	md, err := kadm.NewClient(cl).Metadata(ctx)
	if err != nil {
		return err.Error()
	}
	if len(md.Brokers) != 3 || md.Cluster != s.clusterID {
		return fmt.Sprintf("%d brokers, cluster id %s (want 3, %s)", len(md.Brokers), md.Cluster, s.clusterID)
	}
	for _, td := range md.Topics {
		for _, p := range td.Partitions {
			if len(p.ISR) < len(p.Replicas) || p.Leader < 0 {
				return fmt.Sprintf("%s[%d] under-replicated", td.Topic, p.Partition)
			}
		}
	}
	for d, want := range s.meta {
		if got, _ := os.ReadFile(filepath.Join(d, hostops.MetaFile)); string(got) != string(want) {
			return d + "/meta.properties changed"
		}
	}
	return ""
}

// heal puts the stack back as it was: ZooKeeper's original data (when a
// test wiped it and failed), the original meta.properties, every broker
// running. It never fails the test for what it finds, only for what it
// cannot fix.
func (s *stackState) heal(t *testing.T) {
	env := s.env
	for d := range s.meta {
		os.Remove(filepath.Join(d, hostops.MetaFile+hostops.OrigSuffix))
	}
	zkData := filepath.Join(env.StackDir, "zk", "data")
	if s.zkAside != "" && !t.Failed() && s.healthy(t) == "" {
		// The restore brought the metadata back: the moved-aside copy is no longer needed.
		os.RemoveAll(s.zkAside)
		return
	}
	if s.zkAside == "" {
		if why := s.healthy(t); why == "" {
			return
		} else {
			t.Logf("heal: %s", why)
		}
	}
	t.Logf("heal: putting the stack back")
	for i := len(zkBrokers) - 1; i >= 0; i-- {
		if out, err := stack(env, "broker-stop", zkBrokers[i]); err != nil {
			t.Errorf("heal: broker-stop %s: %v\n%s", zkBrokers[i], err, out)
		}
	}
	if s.zkAside != "" {
		if out, err := stack(env, "zk-stop"); err != nil {
			t.Errorf("heal: zk-stop: %v\n%s", err, out)
		}
		os.RemoveAll(zkData)
		if err := os.Rename(s.zkAside, zkData); err != nil {
			t.Errorf("heal: put ZooKeeper's data back: %v", err)
		}
		s.zkAside = ""
		if out, err := stack(env, "zk-start"); err != nil {
			t.Errorf("heal: zk-start: %v\n%s", err, out)
		}
	}
	for d, b := range s.meta {
		if err := os.WriteFile(filepath.Join(d, hostops.MetaFile), b, 0o644); err != nil {
			t.Errorf("heal: %v", err)
		}
	}
	for _, n := range zkBrokers {
		if out, err := stack(env, "broker-start", n); err != nil {
			t.Errorf("heal: broker-start %s: %v\n%s", n, err, out)
		}
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		why := s.healthy(t)
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("heal: the stack is not healthy after 3 minutes: %s", why)
			return
		}
		time.Sleep(2 * time.Second)
	}
}

// wipeZooKeeper stops ZooKeeper, moves its data aside (heal puts it back
// if the test fails) and starts it empty.
func (s *stackState) wipeZooKeeper(t *testing.T) {
	t.Helper()
	mustStack(t, s.env, "zk-stop")
	data := filepath.Join(s.env.StackDir, "zk", "data")
	s.zkAside = data + ".kbr-e2e-" + randID()
	if err := os.Rename(data, s.zkAside); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	mustStack(t, s.env, "zk-start")
}

// startAgents runs one `kbr agent` per broker host; extra adds flags for
// one host (later flags win). Hosts in skip get no agent.
func startAgents(t *testing.T, env testenv.Env, extra map[string][]string, skip ...string) {
	t.Helper()
	for _, n := range zkBrokers {
		if strings.Contains(strings.Join(skip, " "), n) {
			continue
		}
		b := env.Broker(n)
		args := []string{"agent", "--address", h.address, "--host", n, "--server-properties", b.Properties,
			"--stop-command", b.Stop, "--start-command", b.Start, "--listener", b.Addr,
			"--kafka-libs", filepath.Join(env.StackDir, "lib", "kafka39"), "--log-level", "warn"}
		args = append(args, extra[n]...)
		cmd := h.start(args...)
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_, _ = cmd.Process.Wait()
		})
	}
	time.Sleep(2 * time.Second) // let them poll
}

// backupMetadata takes a metadata-only backup into target and returns the
// recovery point.
func backupMetadata(t *testing.T, env testenv.Env, task, target string) string {
	t.Helper()
	cfg := writeFile(t, "backup.yaml", `
cluster:
  name: zkmode
  bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`
  zookeeper:
    connect: ["`+env.ZKConnect+`"]
    chroot: `+env.ZKChroot+`
task: `+task+`
data_sources: [metadata]
target: {type: LocalDir, path: `+target+`}
options:
  min_free_bytes: 1GiB
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

func metaRestoreConfig(t *testing.T, env testenv.Env, target, rp string) string {
	return writeFile(t, "metarestore.yaml", `
cluster:
  name: zkmode
  bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`
  zookeeper:
    connect: ["`+env.ZKConnect+`"]
    chroot: `+env.ZKChroot+`
source:
  target: {type: LocalDir, path: `+target+`}
  recovery_point: `+rp+`
brokers:
  - {id: 1, host: zk1}
  - {id: 2, host: zk2}
  - {id: 3, host: zk3}
options:
  healthy_timeout: 4m
  start_timeout: 3m
`)
}

type restoreOut struct {
	WorkflowID string                      `json:"workflow_id"`
	Status     string                      `json:"status"`
	Error      string                      `json:"error"`
	Result     workflows.MetaRestoreReport `json:"result"`
}

func parseRestore(t *testing.T, r result) restoreOut {
	t.Helper()
	var out restoreOut
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("--json output: %v\nstdout: %s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return out
}

func metaClusterIDs(t *testing.T, env testenv.Env) map[string]string {
	out := map[string]string{}
	for _, n := range zkBrokers {
		for _, d := range env.Broker(n).LogDirs {
			id, err := hostops.ReadClusterID(d)
			if err != nil {
				t.Errorf("%s: %v", d, err)
			}
			out[d] = id
		}
	}
	return out
}

// TestMetadataRestoreSeedScenario is seed 001's case: ZooKeeper's data is
// lost and started fresh, the brokers then fail with
// InconsistentClusterIdException (one of them was reinstalled and carries
// the fresh cluster's id), and the metadata restore brings the cluster back
// with its topics, configs, ACLs and cluster id, every meta.properties
// fixed, no partition under-replicated.
func TestMetadataRestoreSeedScenario(t *testing.T) {
	env := testenv.Load(t)
	takeStack(t)
	s := saveStack(t, env)
	ctx := context.Background()

	topic := "mr-seed-" + randID()
	cl := client(t, env.ZKModeBootstrap)
	adm := kadm.NewClient(cl)
	createTopic(t, adm, topic, 3, 3, map[string]*string{"retention.ms": sptr("123456789"), "max.message.bytes": sptr("524288")})
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = kadm.NewClient(client(t, env.ZKModeBootstrap)).DeleteTopics(dctx, topic)
	})
	acl := kadm.NewACLs().Allow("User:mr-alice").AllowHosts().Topics(topic).Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	if _, err := adm.CreateACLs(ctx, acl); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		del := kadm.NewACLs().Allow("User:mr-alice").AllowHosts().Topics(topic).Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
		_, _ = kadm.NewClient(client(t, env.ZKModeBootstrap)).DeleteACLs(dctx, del)
	})
	for i := 0; i < 30; i++ {
		produceSync(t, cl, &kgo.Record{Topic: topic, Partition: int32(i % 3), Key: []byte(fmt.Sprint(i)), Value: []byte("v")})
	}
	want := readAll(t, env.ZKModeBootstrap, topic)
	cl.Close()

	target := t.TempDir()
	rp := backupMetadata(t, env, "mrseed", target)

	// The accident: ZooKeeper's data is lost.
	for i := len(zkBrokers) - 1; i >= 0; i-- {
		mustStack(t, env, "broker-stop", zkBrokers[i])
	}
	s.wipeZooKeeper(t)
	logf := filepath.Join(env.StackDir, "zk1", "server.log")
	before, _ := os.Stat(logf)
	if out, err := stack(env, "broker-start", "zk1"); err == nil {
		t.Fatalf("zk1 started against the wiped ZooKeeper:\n%s", out)
	}
	data, _ := os.ReadFile(logf)
	if before != nil && int64(len(data)) >= before.Size() {
		data = data[before.Size():]
	}
	// Kafka before 3.7 throws InconsistentClusterIdException (the seed's
	// message); 3.7 and later word the same check "Invalid cluster.id in:
	// <log dir>/meta.properties. Expected <ZooKeeper's id>, but read <its own>".
	if !strings.Contains(string(data), "InconsistentClusterIdException") && !strings.Contains(string(data), "Invalid cluster.id in") {
		t.Fatalf("zk1 did not fail on its cluster id; its log:\n%s", tail(string(data), 3000))
	}
	// The fresh ZooKeeper now holds a new cluster id; zk3 is "reinstalled":
	// its log dirs carry that id, as after the seed's service reinstall.
	fresh := zkClusterID(t, env)
	if fresh == "" || fresh == s.clusterID {
		t.Fatalf("fresh cluster id %q (original %s)", fresh, s.clusterID)
	}
	for _, d := range env.Broker("zk3").LogDirs {
		p := filepath.Join(d, hostops.MetaFile)
		b, _ := os.ReadFile(p)
		if err := os.WriteFile(p, []byte(strings.Replace(string(b), "cluster.id="+s.clusterID, "cluster.id="+fresh, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	startAgents(t, env, nil)
	r := kbr(t, 12*time.Minute, "restore", "metadata", "-f", metaRestoreConfig(t, env, target, rp), "--json")
	out := parseRestore(t, r)
	if r.code != 0 {
		t.Fatalf("metadata restore exit %d: %s\nstderr: %s", r.code, out.Error, r.stderr)
	}
	rep := out.Result
	if rep.Znodes != nil {
		t.Logf("znodes: %+v, %d unchanged, skipped %v", rep.Znodes.Applied, rep.Znodes.Unchanged, rep.Znodes.Skipped)
	}
	for _, f := range rep.ClusterIDs {
		t.Logf("cluster.id on %s: %+v", f.Host, f.Fixes)
	}
	if rep.ClusterID != s.clusterID {
		t.Errorf("restored cluster id %s, want %s", rep.ClusterID, s.clusterID)
	}
	if rep.SafetyBackup == nil || !strings.HasPrefix(rep.SafetyBackup.RecoveryPoint, "zkmode-before-restore_") {
		t.Errorf("safety backup = %+v", rep.SafetyBackup)
	} else if _, err := os.Stat(filepath.Join(target, rep.SafetyBackup.RecoveryPoint)); err != nil {
		t.Errorf("safety backup: %v", err)
	}
	if !strings.Contains(strings.Join(rep.Notes, " "), "rolled back") {
		t.Errorf("report notes %q do not say consumer offsets rolled back", rep.Notes)
	}

	// Every meta.properties carries the restored id; zk3's were fixed and
	// their originals kept.
	for d, id := range metaClusterIDs(t, env) {
		if id != s.clusterID {
			t.Errorf("%s: cluster.id=%s, want %s", d, id, s.clusterID)
		}
	}
	for _, d := range env.Broker("zk3").LogDirs {
		orig, err := os.ReadFile(filepath.Join(d, hostops.MetaFile+hostops.OrigSuffix))
		if err != nil || !strings.Contains(string(orig), "cluster.id="+fresh) {
			t.Errorf("%s: kept original %q, %v", d, orig, err)
		}
	}

	// The cluster: same id, three brokers, the topic with its configs and
	// records, the ACL.
	if why := s.healthy(t); why != "" {
		t.Errorf("after the restore: %s", why)
	}
	adm = kadm.NewClient(client(t, env.ZKModeBootstrap))
	cfgs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range rc.Configs {
		if c.Source == 1 { // DYNAMIC_TOPIC_CONFIG
			got[c.Key] = c.MaybeValue()
		}
	}
	if got["retention.ms"] != "123456789" || got["max.message.bytes"] != "524288" {
		t.Errorf("topic configs after restore %v", got)
	}
	acls, err := adm.DescribeACLs(ctx, kadm.NewACLs().Allow("User:mr-alice").AllowHosts().Topics(topic).Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))
	if err != nil || len(acls) == 0 || len(acls[0].Described) != 1 {
		t.Errorf("ACL after restore: %+v, %v", acls, err)
	}
	// Changes made after the restore reach every broker (the restored
	// notification queues must not hold their sequence counters back).
	acl2 := kadm.NewACLs().Allow("User:mr-carol").AllowHosts().Topics(topic).Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	if _, err := adm.CreateACLs(ctx, acl2); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = kadm.NewClient(client(t, env.ZKModeBootstrap)).DeleteACLs(dctx, acl2)
	})
	waitACLsOnEveryBroker(t, env, topic, 2)
	// The records themselves, at their offsets: the log dirs were never
	// touched, so the same bytes must come back (not only as many).
	gotRecs := readAll(t, env.ZKModeBootstrap, topic)
	compareTopic(t, topic, want, gotRecs)
	sameOffsets(t, topic, want, gotRecs)
}

func zkClusterID(t *testing.T, env testenv.Env) string {
	t.Helper()
	c, err := zkmeta.Connect(context.Background(), []string{env.ZKConnect}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data, _, err := c.Get(env.ZKChroot + "/cluster/id")
	if errors.Is(err, zk.ErrNoNode) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(data, &v)
	return v.ID
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestMetadataRestoreRetry fails a restore at "start Kafka" (zk2's start
// command fails once), retries it, and checks that the retry did not
// repeat steps 1-5 (no such activity in its history), that the cluster
// ends healthy with the backed-up config, and that a succeeded restore
// cannot run again.
func TestMetadataRestoreRetry(t *testing.T) {
	env := testenv.Load(t)
	takeStack(t)
	s := saveStack(t, env)
	ctx := context.Background()

	topic := "mr-retry-" + randID()
	adm := kadm.NewClient(client(t, env.ZKModeBootstrap))
	createTopic(t, adm, topic, 2, 3, map[string]*string{"retention.ms": sptr("1000000")})
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = kadm.NewClient(client(t, env.ZKModeBootstrap)).DeleteTopics(dctx, topic)
	})
	target := t.TempDir()
	rp := backupMetadata(t, env, "mrretry", target)
	// Drift after the backup, which the restore undoes.
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: sptr("2000000")}}, topic); err != nil {
		t.Fatal(err)
	}

	mark := filepath.Join(t.TempDir(), "failed-once")
	failOnce := fmt.Sprintf(`if [ ! -e %s ]; then touch %s; echo "zk2 start fails once, on purpose"; exit 1; fi; %s`, mark, mark, env.Broker("zk2").Start)
	startAgents(t, env, map[string][]string{"zk2": {"--start-command", failOnce}})
	id := "mr-retry-" + randID()
	cfg := metaRestoreConfig(t, env, target, rp)
	r := kbr(t, 12*time.Minute, "restore", "metadata", "-f", cfg, "--id", id, "--json")
	out := parseRestore(t, r)
	if r.code != 1 || !strings.Contains(out.Error, "start Kafka") || !strings.Contains(out.Error, "fails once, on purpose") {
		t.Fatalf("first run: exit %d, error %q, want a failure at start Kafka\nstderr: %s", r.code, out.Error, r.stderr)
	}
	st := kbr(t, time.Minute, "restore", "status", id, "--json")
	var p workflows.Progress
	if err := json.Unmarshal([]byte(st.stdout), &p); err != nil {
		t.Fatalf("status --json: %v\n%s%s", err, st.stdout, st.stderr)
	}
	// Every step, in order: a loop over an empty list passed.
	var names []string
	for _, step := range p.Steps {
		names = append(names, step.Name)
	}
	if strings.Join(names, ",") != strings.Join(workflows.MetaRestoreSteps, ",") {
		t.Errorf("after the failed run, steps %v, want %v", names, workflows.MetaRestoreSteps)
	}
	for _, step := range p.Steps {
		wantStatus := "done"
		switch step.Name {
		case workflows.StepStartKafka:
			wantStatus = "failed"
		case workflows.StepWaitHealthy, workflows.StepReport:
			wantStatus = "pending"
		}
		if step.Status != wantStatus {
			t.Errorf("after the failed run, step %q is %s, want %s", step.Name, step.Status, wantStatus)
		}
	}
	tc := temporalClient(t)
	firstRun, err := tc.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}

	saveHistoryAs(t, id, "metarestore_failed_history.json")
	r = kbr(t, 12*time.Minute, "restore", "retry", id, "--json")
	out = parseRestore(t, r)
	if r.code != 0 {
		t.Fatalf("retry exit %d: %s\nstderr: %s", r.code, out.Error, r.stderr)
	}
	if out.Result.ResumedFrom != firstRun.GetWorkflowExecutionInfo().GetExecution().GetRunId() {
		t.Errorf("resumed from %q, want the first run %s", out.Result.ResumedFrom, firstRun.GetWorkflowExecutionInfo().GetExecution().GetRunId())
	}
	// The retry's history: steps 1-5 ran no activity.
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
	for _, a := range []string{"ResolveRecoveryPoint", "MetadataPreflight", "Ping", "SafetyBackup", "StopKafka", "RestoreZnodes", "FixClusterID"} {
		if strings.Contains(joined, " "+a+" ") {
			t.Errorf("the retry ran %s again (activities %v)", a, types)
		}
	}
	if !strings.Contains(joined, " StartKafka ") || !strings.Contains(joined, " WaitClusterHealthy ") {
		t.Errorf("the retry's activities %v lack StartKafka or WaitClusterHealthy", types)
	}
	saveHistoryAs(t, id, "metarestore_retry_history.json")
	// One safety backup, not two.
	if m, _ := filepath.Glob(filepath.Join(target, "zkmode-before-restore_*", "*_manifest_*.json")); len(m) != 1 {
		t.Errorf("safety backups: %v, want exactly one", m)
	}
	if why := s.healthy(t); why != "" {
		t.Errorf("after the retry: %s", why)
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := cfgs.On(topic, nil); err != nil {
		t.Fatal(err)
	} else {
		for _, c := range rc.Configs {
			if c.Key == "retention.ms" && c.MaybeValue() != "1000000" {
				t.Errorf("retention.ms = %s after the restore, want the backed-up 1000000", c.MaybeValue())
			}
		}
	}
	// A restore that succeeded runs once.
	if r := kbr(t, time.Minute, "restore", "retry", id); r.code == 0 || !strings.Contains(r.stderr, "succeeded") {
		t.Errorf("second retry: exit %d, %s", r.code, r.stderr)
	}
	if r := kbr(t, time.Minute, "restore", "metadata", "-f", cfg, "--id", id); r.code == 0 || !strings.Contains(r.stderr, "runs once") {
		t.Errorf("same id again: exit %d, %s", r.code, r.stderr)
	}
}

// TestMetadataRestoreRefusals: a version mismatch, a missing agent and a
// damaged backup are refused in preflight, before any broker is stopped
// or anything is written.
func TestMetadataRestoreRefusals(t *testing.T) {
	env := testenv.Load(t)
	takeStack(t)
	saveStack(t, env)
	target := t.TempDir()
	rp := backupMetadata(t, env, "mrrefuse", target)
	cfg := metaRestoreConfig(t, env, target, rp)

	pids := func() map[string]int {
		out := map[string]int{}
		for _, n := range zkBrokers {
			out[n] = hostops.ListenerPID(portOf(env.Broker(n).Addr))
		}
		return out
	}
	before := pids()
	check := func(t *testing.T, want string, maxTook time.Duration) {
		t.Helper()
		r := kbr(t, 5*time.Minute, "restore", "metadata", "-f", cfg, "--json")
		out := parseRestore(t, r)
		if r.code != 1 || !strings.Contains(out.Error, "refused before anything was stopped") || !strings.Contains(out.Error, want) {
			t.Errorf("exit %d, error %q; want a refusal saying %q\nstderr: %s", r.code, out.Error, want, r.stderr)
		}
		if r.took > maxTook {
			t.Errorf("took %s, want under %s", r.took, maxTook)
		}
		if after := pids(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("broker processes changed: before %v, after %v", before, after)
		}
		if m, _ := filepath.Glob(filepath.Join(target, "zkmode-before-restore_*")); len(m) > 0 {
			t.Errorf("a refused restore wrote a safety backup: %v", m)
		}
	}

	t.Run("version mismatch", func(t *testing.T) {
		startAgents(t, env, map[string][]string{"zk2": {"--kafka-version", "3.8.1"}})
		check(t, "broker 2 (host zk2) has Kafka 3.8.1 installed, the backup was taken from Kafka 3.9", 2*time.Minute)
	})
	t.Run("missing agent", func(t *testing.T) {
		startAgents(t, env, nil, "zk3")
		check(t, "no agent answered for host zk3 within 15s", time.Minute)
	})
	t.Run("damaged backup", func(t *testing.T) {
		startAgents(t, env, nil)
		m, _ := filepath.Glob(filepath.Join(target, "mrrefuse_*", "*_metadata_*.tar.gz"))
		if len(m) != 1 {
			t.Fatalf("metadata files %v", m)
		}
		b, err := os.ReadFile(m[0])
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(m[0], b, 0o644); err != nil {
			t.Fatal(err)
		}
		r := kbr(t, 5*time.Minute, "restore", "metadata", "-f", cfg, "--json")
		out := parseRestore(t, r)
		if r.code != 1 || !strings.Contains(out.Error, "damaged") || !strings.Contains(out.Error, filepath.Base(m[0])) {
			t.Errorf("exit %d, error %q; want the damaged file named", r.code, out.Error)
		}
		if after := pids(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("broker processes changed: before %v, after %v", before, after)
		}
		if m, _ := filepath.Glob(filepath.Join(target, "zkmode-before-restore_*")); len(m) > 0 {
			t.Errorf("a restore refused for a damaged backup wrote a safety backup: %v", m)
		}
	})
}

func portOf(addr string) int {
	i := strings.LastIndexByte(addr, ':')
	n := 0
	fmt.Sscan(addr[i+1:], &n)
	return n
}

// saveHistoryAs writes the latest run's history to workflows/testdata for
// the replay test, when KBR_UPDATE_HISTORY=1.
func saveHistoryAs(t *testing.T, workflowID, name string) {
	if os.Getenv("KBR_UPDATE_HISTORY") != "1" {
		return
	}
	root, _ := testenv.RepoRoot()
	c := temporalClient(t)
	hist := &historypb.History{}
	it := c.GetWorkflowHistory(context.Background(), workflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		hist.Events = append(hist.Events, ev)
	}
	data, err := protojson.MarshalOptions{Indent: "  "}.Marshal(hist)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(root, "workflows", "testdata", name)
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d events)", dst, len(hist.Events))
}

// TestMetadataRestoreBadInput: the agent and the restore name what is
// wrong in their input and start nothing (exit 2).
func TestMetadataRestoreBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"agent", "--address", "127.0.0.1:1"}, "host: required"},
		{[]string{"agent", "--address", "127.0.0.1:1", "--host", "b1", "--server-properties", "/nonexistent/server.properties"}, "--server-properties"},
		{[]string{"agent", "--address", "127.0.0.1:1", "--host", "b 1", "--server-properties", "/x"}, "host:"},
		{[]string{"restore", "metadata", "-f", writeFile(t, "m.yaml", `
cluster: {name: c, bootstrap_servers: ["127.0.0.1:19092"], zookeeper: {connect: ["127.0.0.1:12181"], chroot: /kafka39}}
source: {target: {type: LocalDir, path: /tmp}, recovery_point: latest}
brokers: [{id: 1, host: zk1}, {id: 1, host: zk2}]
`)}, "brokers[1].id"},
		{[]string{"restore", "metadata", "-f", writeFile(t, "k.yaml", `
cluster: {name: c, bootstrap_servers: ["127.0.0.1:29092"]}
source: {target: {type: LocalDir, path: /tmp}, recovery_point: latest}
brokers: [{id: 1, host: kraft1}]
`)}, "cluster.zookeeper: required"},
		{[]string{"restore", "retry", "no-such-restore"}, "no restore with id no-such-restore"},
	} {
		r := kbr(t, 30*time.Second, c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("kbr %s: exit %d, stderr %q; want exit 2 saying %q", strings.Join(c.args, " "), r.code, r.stderr, c.want)
		}
	}
}
