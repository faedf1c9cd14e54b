package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/kraftlog"
	"github.com/kbr-project/kbr/internal/kraftlog/kraftlogtest"
	"github.com/kbr-project/kbr/internal/testenv"
)

// The KRaft metadata restore runs against a quorum of its own
// (deploy/kraftq.sh: three combined nodes with SASL/SCRAM and the
// StandardAuthorizer), started by each test in a temp dir and removed after
// it, so the shared stack's kraft1 is never stopped. One test at a time
// holds its ports (/tmp/kbr-kraftq-busy).

const kraftqBusy = "/tmp/kbr-kraftq-busy"

type kraftq struct {
	dir, script, jars string
	name              string // the cluster's name in kbr
	vars              map[string]string
	bootstrap         []string
	sasl              []string
}

func takeKraftq(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Minute)
	for {
		f, err := os.OpenFile(kraftqBusy, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "kbr e2e %s, pid %d, since %s\n", t.Name(), os.Getpid(), time.Now().UTC().Format(time.RFC3339))
			f.Close()
			t.Cleanup(func() { os.Remove(kraftqBusy) })
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(kraftqBusy)
			t.Fatalf("the KRaft test quorum's ports are still busy after 30 minutes: %s", b)
		}
		time.Sleep(5 * time.Second)
	}
}

// startKraftq brings a fresh quorum up and registers its removal.
func startKraftq(t *testing.T, env testenv.Env) *kraftq {
	t.Helper()
	takeKraftq(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	q := &kraftq{dir: t.TempDir(), script: filepath.Join(root, "deploy", "kraftq.sh"), jars: filepath.Join(env.StackDir, "lib", "kafka4"), name: "kq-" + randID()}
	t.Cleanup(func() {
		if t.Failed() {
			for n := 1; n <= 3; n++ {
				b, _ := os.ReadFile(filepath.Join(q.dir, fmt.Sprintf("n%d", n), "server.log"))
				t.Logf("node %d's log, the end:\n%s", n, tail(string(b), 3000))
			}
		}
		if out, err := q.run("down", q.dir, "--wipe"); err != nil {
			t.Errorf("kraftq down: %v\n%s", err, out)
		}
	})
	if out, err := q.run("up", q.dir); err != nil {
		t.Fatalf("kraftq up: %v\n%s", err, out)
	}
	q.vars = readEnv(t, filepath.Join(q.dir, "kraftq.env"))
	q.bootstrap = strings.Split(q.vars["KRAFTQ_BOOTSTRAP"], ",")
	for n := 1; n <= 3; n++ {
		q.sasl = append(q.sasl, q.vars[fmt.Sprintf("KRAFTQ_N%d_SASL", n)])
	}
	return q
}

func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			out[k] = v
		}
	}
	return out
}

func (q *kraftq) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, q.script, args...)
	cmd.Env = append(os.Environ(), "KBR_KRAFTQ_JARS="+q.jars)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (q *kraftq) v(n int, key string) string { return q.vars[fmt.Sprintf("KRAFTQ_N%d_%s", n, key)] }

// startAgents runs one `kbr agent` per node, host kq<n>; extra adds flags
// for one node (later flags win); nodes in skip get none. They stop when
// the test ends, or when the returned function is called.
func (q *kraftq) startAgents(t *testing.T, extra map[int][]string, skip ...int) (stop func()) {
	t.Helper()
	var cmds []*exec.Cmd
	stop = func() {
		for _, cmd := range cmds {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_, _ = cmd.Process.Wait()
		}
		cmds = nil
	}
	t.Cleanup(stop)
	for n := 1; n <= 3; n++ {
		if slices.Contains(skip, n) {
			continue
		}
		args := []string{"agent", "--address", h.address, "--host", fmt.Sprintf("kq%d", n), "--server-properties", q.v(n, "PROPERTIES"),
			"--stop-command", "KBR_KRAFTQ_JARS=" + q.jars + " " + q.v(n, "STOP"), "--start-command", "KBR_KRAFTQ_JARS=" + q.jars + " " + q.v(n, "START"),
			"--listener", q.v(n, "ADDR"), "--kafka-libs", q.jars, "--log-level", "warn"}
		args = append(args, extra[n]...)
		cmds = append(cmds, h.start(args...))
	}
	time.Sleep(2 * time.Second) // let them poll
	return stop
}

// backup takes a backup of the quorum with the kraft_log data source.
func (q *kraftq) backup(t *testing.T, task, target string) string {
	t.Helper()
	cfg := writeFile(t, "backup.yaml", `
cluster:
  name: `+q.name+`
  bootstrap_servers: `+quoteList(q.bootstrap)+`
  controllers: [{id: 1, host: kq1}, {id: 2, host: kq2}, {id: 3, host: kq3}]
task: `+task+`
data_sources: [metadata, kraft_log]
target: {type: LocalDir, path: `+target+`}
options: {min_free_bytes: 1GiB}
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

func (q *kraftq) restoreConfig(t *testing.T, target, rp string) string {
	return writeFile(t, "kraftrestore.yaml", `
cluster:
  name: `+q.name+`
  bootstrap_servers: `+quoteList(q.bootstrap)+`
source:
  target: {type: LocalDir, path: `+target+`}
  recovery_point: `+rp+`
nodes: [{id: 1, host: kq1}, {id: 2, host: kq2}, {id: 3, host: kq3}]
options: {stop_timeout: 1m, start_timeout: 2m, healthy_timeout: 4m}
`)
}

// disaster stops every node and formats every metadata log dir again with
// a new cluster id, as after a reinstall; the nodes then refuse to start.
func (q *kraftq) disaster(t *testing.T) string {
	t.Helper()
	for n := 3; n >= 1; n-- {
		if out, err := q.run("node-stop", q.dir, fmt.Sprint(n)); err != nil {
			t.Fatalf("node-stop %d: %v\n%s", n, err, out)
		}
	}
	fresh := kraftlog.UUIDString([]byte("kbr-reinstalled!"))
	if out, err := q.run("reinstall", q.dir, fresh); err != nil {
		t.Fatalf("reinstall: %v\n%s", err, out)
	}
	return fresh
}

// scramRead authenticates with SCRAM-SHA-256 and reads a topic's partition
// 0 from the start: how many records it read, or the error.
func (q *kraftq) scramRead(t *testing.T, user, pass, topic string, want int) (int, error) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(q.sasl...), kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}), kgo.RequestRetries(1))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		return 0, err // authentication
	}
	got := 0
	for got < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return got, ctx.Err()
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return got, ferr
		}
		got += fs.NumRecords()
	}
	return got, nil
}

func (q *kraftq) metaIDs(t *testing.T) map[string]kraftlog.Meta {
	out := map[string]kraftlog.Meta{}
	for n := 1; n <= 3; n++ {
		for _, d := range []string{q.v(n, "META"), q.v(n, "DATA")} {
			b, err := os.ReadFile(filepath.Join(d, kraftlog.MetaFile))
			if err != nil {
				t.Errorf("%s: %v", d, err)
			}
			out[d] = kraftlog.ParseMeta(b)
		}
	}
	return out
}

// TestKRaftRestoreScenario: a KRaft cluster whose controllers lost their
// metadata log comes back from the kraft_log backup. Back up (the manifest
// lists every controller's snapshot and log; `kbr backups show` lists the
// topics, ACLs, SCRAM users and feature levels, and kbr's decoder reads
// every record of the backed-up files as kafka-dump-log does); then every
// metadata log dir is deleted and formatted again with a new cluster id, as
// after a reinstall, and the nodes refuse to start; `kbr restore kraft`
// brings the cluster back healthy with its cluster id, the original topic
// ids and every record of the topics, SCRAM users who authenticate with
// their old passwords, and ACLs in force.
func TestKRaftRestoreScenario(t *testing.T) {
	env := testenv.Load(t)
	q := startKraftq(t, env)
	ctx := context.Background()
	adm := kadm.NewClient(client(t, q.bootstrap))
	createTopic(t, adm, "orders", 3, 3, map[string]*string{"retention.ms": sptr("123456789")})
	createTopic(t, adm, "events", 2, 3, nil)
	cl := client(t, q.bootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner())) // Partition is honoured
	for i := 0; i < 60; i++ {
		produceSync(t, cl, &kgo.Record{Topic: "orders", Partition: int32(i % 3), Key: []byte(fmt.Sprint("k", i)), Value: []byte(fmt.Sprint("order ", i)),
			Headers: []kgo.RecordHeader{{Key: "n", Value: []byte(fmt.Sprint(i))}}})
		produceSync(t, cl, &kgo.Record{Topic: "events", Partition: int32(i % 2), Value: []byte(strings.Repeat("e", i))})
	}
	// Kafka refuses a user named twice in one request (DUPLICATE_RESOURCE):
	// bob's second mechanism goes in a request of its own.
	for _, ups := range [][]kadm.UpsertSCRAM{{
		{User: "alice", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "alice-secret-1"},
		{User: "bob", Mechanism: kadm.ScramSha256, Iterations: 8192, Password: "bob-secret-2"},
	}, {
		{User: "bob", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "bob-secret-2"},
	}} {
		res, err := adm.AlterUserSCRAMs(ctx, nil, ups)
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	acl := kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("orders").Operations(kadm.OpRead, kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral)
	if res, err := adm.CreateACLs(ctx, acl); err != nil || res[0].Err != nil {
		t.Fatalf("create ACLs: %v %v", err, res)
	}
	// alice reads orders; bob is authenticated but allowed nothing.
	waitFor(t, 30*time.Second, "alice reads orders over SASL/SCRAM", func() error { _, err := q.scramRead(t, "alice", "alice-secret-1", "orders", 20); return err })
	if _, err := q.scramRead(t, "bob", "bob-secret-2", "orders", 1); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("bob before the backup: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	wantOrders, wantEvents := readAll(t, q.bootstrap, "orders"), readAll(t, q.bootstrap, "events")
	ids := topicIDs(t, q.bootstrap)
	origMeta := q.metaIDs(t)
	origCID := origMeta[q.v(1, "META")].ClusterID
	time.Sleep(6 * time.Second) // a snapshot of all that (metadata.log.max.snapshot.interval.ms=5000)

	q.startAgents(t, nil)
	target := t.TempDir()
	rp := q.backup(t, "kq", target)

	// The manifest: every controller's snapshot and log, with sizes and
	// checksums and the ids of its meta.properties.
	data, err := os.ReadFile(filepath.Join(target, rp))
	if err != nil {
		t.Fatal(err)
	}
	m, err := backupset.ReadManifest(rp, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.KRaftLog) != 3 || m.Mode != "kraft" {
		t.Fatalf("manifest kraft_log %+v, mode %s", m.KRaftLog, m.Mode)
	}
	for _, n := range m.KRaftLog {
		if n.ClusterID != origCID || n.Snapshot == nil || n.Snapshot.EndOffset == 0 || n.EndOffset < n.Snapshot.EndOffset || len(n.Files) < 2 {
			t.Errorf("node %d: %+v", n.Node, n)
		}
		if id := n.MetadataDirID(); id == "" || id != origMeta[q.v(int(n.Node), "META")].DirectoryID {
			t.Errorf("node %d: metadata dir id %s, meta.properties says %s", n.Node, id, origMeta[q.v(int(n.Node), "META")].DirectoryID)
		}
		for _, f := range n.Files {
			if !strings.HasPrefix(f.Name, m.TaskDir+"/") || !strings.Contains(f.Name, "_kraftlog_") || len(f.SHA256) != 64 {
				t.Errorf("file %+v", f)
			}
			// kbr's decoder and Kafka's read the copies alike.
			kraftlogtest.CrossCheck(t, q.jars, filepath.Join(target, f.Name))
		}
	}
	if r := kbr(t, 2*time.Minute, "backups", "verify", filepath.Join(target, rp), "--json"); r.code != 0 {
		t.Errorf("verify: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	// What the backup holds, as `kbr backups show` lists it.
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
	s := shown.Metadata
	got := map[string]string{}
	for _, tp := range s.Topics {
		got[tp.Name] = fmt.Sprintf("%s/%d", tp.ID, len(tp.Partitions))
	}
	if got["orders"] != ids["orders"]+"/3" || got["events"] != ids["events"]+"/2" {
		t.Errorf("show: topics %v, want orders %s/3 and events %s/2", got, ids["orders"], ids["events"])
	}
	if len(s.ACLs) != 2 || s.ACLs[0].Principal != "User:alice" || s.ACLs[0].ResourceName != "orders" {
		t.Errorf("show: ACLs %+v", s.ACLs)
	}
	if fmt.Sprint(s.Scram) != "[{alice SCRAM-SHA-256 4096} {bob SCRAM-SHA-256 8192} {bob SCRAM-SHA-512 4096}]" {
		t.Errorf("show: SCRAM users %+v", s.Scram)
	}
	if s.Features["metadata.version"] == 0 || len(s.Voters) != 3 || s.KRaftVersion != 1 {
		t.Errorf("show: features %v, voters %v, kraft.version %d", s.Features, s.Voters, s.KRaftVersion)
	}
	if strings.Contains(r.stdout, "alice-secret") || strings.Contains(r.stdout, "salt") {
		t.Error("show prints a SCRAM secret")
	}
	if tr := kbr(t, time.Minute, "backups", "show", filepath.Join(target, rp)); tr.code != 0 || !strings.Contains(tr.stdout, "alice SCRAM-SHA-256 (4096 iterations)") ||
		!strings.Contains(tr.stdout, "User:alice ALLOW READ on TOPIC orders") {
		t.Errorf("backups show (text): exit %d\n%s%s", tr.code, tr.stdout, tr.stderr)
	}

	// Metadata written after the backup is lost by the restore.
	createTopic(t, adm, "after-backup", 1, 3, nil)

	// The accident: every metadata log dir lost; a reinstall formats them
	// again with a new cluster id; the nodes refuse to start.
	fresh := q.disaster(t)
	if out, err := q.run("node-start", q.dir, "1"); err == nil {
		t.Fatalf("node 1 started after the reinstall:\n%s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(q.dir, "n1", "server.log")); !strings.Contains(string(b), "Invalid cluster.id in") {
		t.Fatalf("node 1 did not fail on its cluster id; its log:\n%s", tail(string(b), 3000))
	}

	r = kbr(t, 12*time.Minute, "restore", "kraft", "-f", q.restoreConfig(t, target, rp), "--json")
	out := parseKRaftRestore(t, r)
	if r.code != 0 {
		t.Fatalf("KRaft restore exit %d: %s\nstderr: %s", r.code, out.Error, r.stderr)
	}
	rep := out.Result
	for _, f := range rep.MetaFixes {
		t.Logf("meta.properties on %s: %+v", f.Host, f.Fixes)
	}
	if rep.ClusterID != origCID || rep.Health == nil || len(rep.Health.Brokers) != 3 {
		t.Errorf("report: cluster id %s (want %s), health %+v", rep.ClusterID, origCID, rep.Health)
	}
	if rep.SafetyBackup == nil {
		t.Error("no safety backup")
	} else if sm, err := os.ReadFile(filepath.Join(target, rep.SafetyBackup.RecoveryPoint)); err != nil || !strings.Contains(string(sm), fresh) {
		t.Errorf("safety backup %s: %v (it should hold the reinstalled cluster id %s)", rep.SafetyBackup.RecoveryPoint, err, fresh)
	}
	if notes := strings.Join(rep.Notes, " "); !strings.Contains(notes, "metadata written after it is lost") || !strings.Contains(notes, "original topic ids") {
		t.Errorf("notes %q", rep.Notes)
	}

	// Every meta.properties carries the original cluster id and directory id.
	for d, mp := range q.metaIDs(t) {
		if mp != origMeta[d] {
			t.Errorf("%s: %+v after the restore, %+v before the accident", d, mp, origMeta[d])
		}
	}
	// The cluster: its id, the original topic ids, every record.
	if id := liveKRaftID(t, q.bootstrap); id != origCID {
		t.Errorf("cluster id %s, want %s", id, origCID)
	}
	after := topicIDs(t, q.bootstrap)
	for _, tp := range []string{"orders", "events"} {
		if after[tp] != ids[tp] {
			t.Errorf("topic %s has id %s, had %s", tp, after[tp], ids[tp])
		}
	}
	if _, ok := after["after-backup"]; ok {
		t.Error("a topic created after the backup is there")
	}
	for _, c := range []struct {
		topic string
		want  map[int32][]rec
	}{{"orders", wantOrders}, {"events", wantEvents}} {
		gotRecs := readAll(t, q.bootstrap, c.topic)
		wd, wn := digest(c.want)
		gd, gn := digest(gotRecs)
		if wd != gd {
			t.Errorf("%s: %d records, digest %s; before the accident %d, %s", c.topic, gn, gd, wn, wd)
			compareTopic(t, c.topic, c.want, gotRecs)
		}
	}
	// SCRAM credentials and ACLs came back with the metadata.
	if n, err := q.scramRead(t, "alice", "alice-secret-1", "orders", len(wantOrders[0])); err != nil || n != len(wantOrders[0]) {
		t.Errorf("alice after the restore: read %d of %d: %v", n, len(wantOrders[0]), err)
	}
	if _, err := q.scramRead(t, "bob", "bob-secret-2", "orders", 1); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("bob after the restore: %v, want TOPIC_AUTHORIZATION_FAILED (the ACL in force)", err)
	}
	if _, err := q.scramRead(t, "alice", "wrong", "orders", 1); err == nil || !strings.Contains(err.Error(), "SASL") {
		t.Errorf("a wrong password: %v", err)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v after %s", what, err, d)
		}
		time.Sleep(time.Second)
	}
}
