package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/workflows"
)

// Point in time: a restore to T has exactly the records appended before T,
// and group offsets from the newest recovery point of the chain taken at or
// before T.
func TestRestoreToPointInTime(t *testing.T) {
	env := testenv.Load(t)
	id := randID()
	topic, group := "e2e-"+id+"-pitr", "e2e-"+id+"-pitr-g"
	cl := client(t, env.ZKModeBootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	createTopic(t, adm, topic, 2, 3, map[string]*string{"retention.ms": sptr("-1")})
	commitAt := func(offs map[int32]int64) {
		o := kadm.Offsets{}
		for p, at := range offs {
			o.AddOffset(topic, p, at, -1)
		}
		if _, err := adm.CommitOffsets(context.Background(), group, o); err != nil {
			t.Fatal(err)
		}
	}
	produceBatch := func(tag string, n int) {
		var rs []*kgo.Record
		for i := 0; i < n; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i % 2), Key: []byte(fmt.Sprintf("%s-%d", tag, i)), Value: []byte(tag)})
		}
		produceSync(t, cl, rs...)
	}
	produceBatch("before", 40)
	commitAt(map[int32]int64{0: 20, 1: 15})
	target := filepath.Join(t.TempDir(), "backups")
	name := "pitr-" + id
	mustKbr(t, 3*time.Minute, "task", "create", "-f", taskFile(t, env, name, `
topics: {include: ["`+topic+`"]}
target: {type: LocalDir, path: `+target+`}
policy: incremental
max_copies: 5
options: {min_free_bytes: 1GiB}
`))
	runTask(t, name)
	time.Sleep(1100 * time.Millisecond)
	at := time.Now().UTC().Truncate(time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	produceBatch("after", 30)
	commitAt(map[int32]int64{0: 35, 1: 35})
	r2 := runTask(t, name)
	if r2.Kind != "incremental" {
		t.Fatalf("second run %s, want incremental", r2.Kind)
	}

	all := readAll(t, env.ZKModeBootstrap, topic)
	want := map[int32][]rec{}
	for p, rs := range all {
		for _, r := range rs {
			if r.Timestamp < at.UnixMilli() {
				want[p] = append(want[p], r)
			}
		}
		if len(want[p]) != 20 || len(rs) != 35 {
			t.Fatalf("source %s[%d]: %d records, %d before %s; want 35 and 20", topic, p, len(rs), len(want[p]), at)
		}
	}
	cfg := writeFile(t, "restore-pitr.yaml", `
cluster: {name: kraft, bootstrap_servers: `+quoteList(env.KRaftBootstrap)+`}
source: {target: {type: LocalDir, path: `+target+`}, recovery_point: `+r2.RecoveryPoint+`}
rename: ["`+topic+`:`+topic+`-pitr"]
`)
	out := mustKbr(t, 5*time.Minute, "restore", "run", "-f", cfg, "--to-time", at.Format(time.RFC3339Nano), "--json")
	var res struct {
		Result workflows.RestoreResult `json:"result"`
	}
	json.Unmarshal([]byte(out), &res)
	compareTopic(t, topic+" to "+at.Format(time.RFC3339Nano), want, readAll(t, env.KRaftBootstrap, topic+"-pitr"))
	if !strings.Contains(strings.Join(res.Result.Warnings, "\n"), "consumer offsets as of") {
		t.Errorf("restore warnings %v: want a note naming the recovery point whose offsets were used", res.Result.Warnings)
	}
	// The group as of T (20 and 15 on the source) lands on the same records.
	fetched, err := kadm.NewClient(client(t, env.KRaftBootstrap)).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	for p, src := range map[int32]int64{0: 20, 1: 15} {
		o, ok := fetched.Lookup(topic+"-pitr", p)
		wantAt := int64(len(want[p]))
		if src < wantAt {
			wantAt = src // the topic was fresh: source offsets below the cut map one to one
		}
		if !ok || o.At != wantAt {
			t.Errorf("group %s %s-pitr[%d]: offset %v (found %v), want %d", group, topic, p, o.At, ok, wantAt)
		}
	}
}

// The worker is SIGKILLed at five random points of a data restore and a
// broker of the target cluster is restarted once: the target still holds
// every record exactly once, in order, and the group offsets translated.
func TestRestoreSurvivesKillsAndBrokerRestart(t *testing.T) {
	env := testenv.Load(t)
	id := randID()
	topic, group := "e2e-"+id+"-rkill", "e2e-"+id+"-rkill-g"
	cl := client(t, env.ZKModeBootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(10*time.Millisecond), kgo.ProducerBatchCompression(kgo.NoCompression()))
	adm := kadm.NewClient(cl)
	createTopic(t, adm, topic, 3, 3, map[string]*string{"retention.ms": sptr("-1")})
	value := make([]byte, 2000)
	var rs []*kgo.Record
	for i := 0; i < 9000; i++ { // ~18 MB
		for j := range value {
			value[j] = byte(i + j)
		}
		rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i % 3), Key: []byte(fmt.Sprintf("k%06d", i)),
			Value: append([]byte(nil), value...), Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(fmt.Sprint(i))}}})
	}
	produceSync(t, cl, rs...)
	o := kadm.Offsets{}
	o.AddOffset(topic, 0, 1234, -1)
	o.AddOffset(topic, 2, 2999, -1)
	if _, err := adm.CommitOffsets(context.Background(), group, o); err != nil {
		t.Fatal(err)
	}
	want := readAll(t, env.ZKModeBootstrap, topic)
	target := filepath.Join(t.TempDir(), "backups")
	bcfg := writeFile(t, "backup-rkill.yaml", `
cluster: {name: zkmode, bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`}
task: rkill-`+id+`
data_sources: [metadata, topicdata, offsets]
topics: {include: ["`+topic+`"]}
target: {type: LocalDir, path: `+target+`}
options: {min_free_bytes: 1GiB, segment_bytes: 1MiB, compression: none}
`)
	out := mustKbr(t, 5*time.Minute, "backup", "run", "-f", bcfg, "--json")
	var b struct {
		Result workflows.BackupResult `json:"result"`
	}
	json.Unmarshal([]byte(out), &b)

	// Restore into the ZooKeeper-mode cluster (three brokers, one of which
	// is restarted), renamed, throttled so the kills land mid-way.
	dst := topic + "-restored"
	rcfg := writeFile(t, "restore-rkill.yaml", `
cluster: {name: zkmode-restore-`+id+`, bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`}
source: {target: {type: LocalDir, path: `+target+`}, recovery_point: `+b.Result.RecoveryPoint+`}
rename: ["`+topic+`:`+dst+`"]
options: {parallelism: 3, throttle_bytes_per_second: 256KiB}
`)
	out = mustKbr(t, time.Minute, "restore", "run", "-f", rcfg, "--detach", "--json")
	var started struct {
		WorkflowID string `json:"workflow_id"`
	}
	json.Unmarshal([]byte(out), &started)
	c := temporalClient(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for k := 0; k < 5; k++ {
		time.Sleep(time.Duration(2000+rng.IntN(4000)) * time.Millisecond)
		h.stopWorker(syscall.SIGKILL)
		h.startWorker()
		if k == 2 {
			// A broker of the target restarts while the restore produces.
			time.Sleep(3 * time.Second)
			zk2 := env.Broker("zk2")
			for _, cmd := range []string{zk2.Stop, zk2.Start} {
				if out, err := exec.Command("sh", "-c", cmd).CombinedOutput(); err != nil {
					t.Fatalf("%s: %v\n%s", cmd, err, out)
				}
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var res workflows.RestoreResult
	if err := c.GetWorkflow(ctx, started.WorkflowID, "").Get(ctx, &res); err != nil {
		t.Fatalf("restore after kills: %v", err)
	}
	got := readAll(t, env.ZKModeBootstrap, dst)
	compareTopic(t, dst, want, got)
	for p, rs := range got {
		seen := map[string]bool{}
		for _, r := range rs {
			if seen[string(r.Key)] {
				t.Fatalf("%s[%d]: key %s restored twice", dst, p, r.Key)
			}
			seen[string(r.Key)] = true
		}
	}
	fetched, err := kadm.NewClient(client(t, env.ZKModeBootstrap)).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	for p, at := range map[int32]int64{0: 1234, 2: 2999} {
		if o, ok := fetched.Lookup(dst, p); !ok || o.At != at {
			t.Errorf("group %s %s[%d]: %v (found %v), want %d", group, dst, p, o.At, ok, at)
		}
	}
	if !resumedIn(t, c, started.WorkflowID, "ImportUnit") {
		t.Error("no ImportUnit ran a second attempt: the kills missed the restore")
	}
}

// A data restore stopped midway (terminated) is resumed by `kbr restore
// retry` with the plan its run fixed: every record exactly once, the group
// offsets translated; a succeeded restore is not run again.
func TestRestoreRetryResumesData(t *testing.T) {
	env := testenv.Load(t)
	id := randID()
	topic, group := "e2e-"+id+"-retry", "e2e-"+id+"-retry-g"
	cl := client(t, env.ZKModeBootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	adm := kadm.NewClient(cl)
	createTopic(t, adm, topic, 2, 3, map[string]*string{"retention.ms": sptr("-1")})
	var rs []*kgo.Record
	for i := 0; i < 4000; i++ {
		v := make([]byte, 1000)
		for j := range v {
			v[j] = byte(i*7 + j)
		}
		rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i % 2), Key: []byte(fmt.Sprintf("k%05d", i)), Value: v})
	}
	produceSync(t, cl, rs...)
	o := kadm.Offsets{}
	o.AddOffset(topic, 1, 1500, -1)
	if _, err := adm.CommitOffsets(context.Background(), group, o); err != nil {
		t.Fatal(err)
	}
	want := readAll(t, env.ZKModeBootstrap, topic)
	target := filepath.Join(t.TempDir(), "backups")
	bcfg := writeFile(t, "b-retry.yaml", `
cluster: {name: zkmode, bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`}
task: retry-`+id+`
topics: {include: ["`+topic+`"]}
target: {type: LocalDir, path: `+target+`}
options: {min_free_bytes: 1GiB, compression: none}
`)
	mustKbr(t, 3*time.Minute, "backup", "run", "--json", "-f", bcfg)
	dst := topic + "-r"
	restoreID := "restore-retry-" + id
	rcfg := writeFile(t, "r-retry.yaml", `
cluster: {name: kraft, bootstrap_servers: `+quoteList(env.KRaftBootstrap)+`}
source: {target: {type: LocalDir, path: `+target+`}, recovery_point: latest, task: retry-`+id+`}
rename: ["`+topic+`:`+dst+`"]
options: {throttle_bytes_per_second: 128KiB}
`)
	mustKbr(t, time.Minute, "restore", "run", "--detach", "--id", restoreID, "-f", rcfg)
	// Stop it once records have landed.
	kadmK := kadm.NewClient(client(t, env.KRaftBootstrap))
	for dl := time.Now().Add(60 * time.Second); ; {
		ends, err := kadmK.ListEndOffsets(context.Background(), dst)
		if o, ok := ends.Lookup(dst, 0); err == nil && ok && o.Offset > 200 {
			break
		}
		if time.Now().After(dl) {
			t.Fatal("no records landed within 60s")
		}
		time.Sleep(300 * time.Millisecond)
	}
	c := temporalClient(t)
	if err := c.TerminateWorkflow(context.Background(), restoreID, "", "e2e: stopped midway"); err != nil {
		t.Fatal(err)
	}
	if r := kbr(t, time.Minute, "restore", "run", "--id", restoreID, "-f", rcfg); r.code == 0 {
		t.Errorf("a fresh run over the half-restored topic was not refused")
	}
	// A newer backup lands before the retry: "latest" now names it, but the
	// retry finishes the recovery point the failed run started.
	produceSync(t, cl, &kgo.Record{Topic: topic, Partition: 0, Key: []byte("after"), Value: []byte("the first restore")})
	mustKbr(t, 3*time.Minute, "backup", "run", "--json", "-f", bcfg)
	mustKbr(t, 5*time.Minute, "restore", "retry", restoreID, "--json")
	compareTopic(t, dst+" after retry", want, readAll(t, env.KRaftBootstrap, dst))
	fetched, err := kadmK.FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup(dst, 1); !ok || o.At != 1500 {
		t.Errorf("group %s %s[1]: %v (found %v), want 1500", group, dst, o.At, ok)
	}
	if r := kbr(t, time.Minute, "restore", "retry", restoreID); r.code != 2 || !strings.Contains(r.stderr, "runs once") {
		t.Errorf("retry of a succeeded restore: exit %d: %s", r.code, r.stderr)
	}
}
