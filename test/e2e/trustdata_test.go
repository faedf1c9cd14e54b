package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/kbatch"
	"github.com/kbr-project/kbr/internal/kdata"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/workflows"
)

// fillSlow makes a one-partition topic of n records of 1 kB in batches of
// 64 KiB, so that a throttled export takes several fetches.
func fillSlow(t *testing.T, env testenv.Env, n int) string {
	t.Helper()
	topic := "e2e-" + randID() + "-lost"
	cl := client(t, env.ZKModeBootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(64<<10),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	createTopic(t, kadm.NewClient(cl), topic, 1, 3, nil)
	var rs []*kgo.Record
	for i := 0; i < n; i++ {
		v := make([]byte, 1000)
		for j := range v {
			v[j] = byte(i*31 + j*7)
		}
		rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%05d", i)), Value: v})
	}
	produceSync(t, cl, rs...)
	return topic
}

// A backup that finds records of its cut deleted by retention (here
// DeleteRecords, while the export is throttled) says so loudly: the run's
// status is records-lost, its result and history memo name the partition
// and the range, and the recovery point holds every other record with its
// offset. With options.fail_on_lost_records the run fails and writes no
// manifest. Guards against a gap that only reached the manifest's `lost`
// field while the run said "succeeded".
func TestBackupRecordsLostIsLoud(t *testing.T) {
	env := testenv.Load(t)
	c := temporalClient(t)
	for _, failOnLoss := range []bool{false, true} {
		topic := fillSlow(t, env, 4000)
		want := readAll(t, env.ZKModeBootstrap, topic)[0]
		target := filepath.Join(t.TempDir(), "backups")
		cfg := writeFile(t, "backup.yaml", `
cluster: {name: zkmode, bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`}
task: lost-`+randID()+`
data_sources: [topicdata]
topics: {include: ["`+topic+`"]}
target: {type: LocalDir, path: `+target+`}
options:
  min_free_bytes: 1GiB
  segment_bytes: 1MiB
  throttle_bytes_per_second: 256KiB
  fail_on_lost_records: `+fmt.Sprint(failOnLoss)+`
`)
		r := kbr(t, time.Minute, "backup", "run", "-f", cfg, "--detach", "--json")
		if r.code != 0 {
			t.Fatalf("start: exit %d: %s", r.code, r.stderr)
		}
		var started struct {
			WorkflowID string `json:"workflow_id"`
		}
		json.Unmarshal([]byte(r.stdout), &started)
		id := started.WorkflowID
		waitSegments(t, c, id, 1, target) // the export has read about a MiB
		deleteRecords(t, kadm.NewClient(client(t, env.ZKModeBootstrap)), topic, 0, 3000)

		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		var res workflows.BackupResult
		err := c.GetWorkflow(ctx, id, "").Get(ctx, &res)
		cancel()
		d, derr := c.DescribeWorkflowExecution(context.Background(), id, "")
		if derr != nil {
			t.Fatal(derr)
		}
		var status string
		_ = converter.GetDefaultDataConverter().FromPayload(d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()[names.AttrStatus], &status)
		if failOnLoss {
			var app *temporal.ApplicationError
			if err == nil || !strings.Contains(err.Error(), "records lost") || !errorsAs(err, &app) {
				t.Fatalf("fail_on_lost_records: the run ended with %v, want a failure saying records were lost", err)
			}
			if status != names.StatusFailed {
				t.Errorf("fail_on_lost_records: status %q, want failed", status)
			}
			if rps, _ := filepath.Glob(filepath.Join(target, "*", "*_manifest_*.json")); len(rps) != 0 {
				t.Errorf("fail_on_lost_records: a manifest was written: %v", rps)
			}
			continue
		}
		if err != nil {
			t.Fatalf("backup: %v", err)
		}
		if status != names.StatusRecordsLost {
			t.Errorf("KbrStatus %q, want %q", status, names.StatusRecordsLost)
		}
		if res.Lost == nil || res.Lost.Partitions != 1 || res.Lost.Ranges != 1 || len(res.Lost.Examples) != 1 || !strings.Contains(res.Lost.Examples[0], topic+"[0] offsets ") {
			t.Fatalf("result lost %+v, want one range of %s[0] named", res.Lost, topic)
		}
		var memo workflows.HistoryMemo
		_ = converter.GetDefaultDataConverter().FromPayload(d.GetWorkflowExecutionInfo().GetMemo().GetFields()[names.MemoHistory], &memo)
		if !strings.Contains(memo.Note, "RECORDS LOST") || !strings.Contains(memo.Note, topic+"[0]") {
			t.Errorf("history memo note %q does not say records were lost", memo.Note)
		}
		// The recovery point: every record before the gap and from 3000 on,
		// each at its offset, and the gap exactly what is missing.
		v, b := loadView(t, target, res.RecoveryPoint)
		p := v.Partitions[0]
		if len(p.Lost) != 1 || p.Lost[0].To != 3000 || p.Lost[0].From <= 0 {
			t.Fatalf("manifest lost %+v, want one range ending at 3000", p.Lost)
		}
		from := p.Lost[0].From
		var got []rec
		if err := kdata.Records(context.Background(), b, p, func(r kbatch.Record) error {
			got = append(got, rec{Offset: r.Offset, Key: r.Key, Value: r.Value})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var wantKept []rec
		for _, w := range want {
			if w.Offset < from || w.Offset >= 3000 {
				wantKept = append(wantKept, w)
			}
		}
		if res.Lost.Offsets != 3000-from || len(got) != len(wantKept) {
			t.Fatalf("%d records backed up, want %d (lost %d offsets from %d)", len(got), len(wantKept), res.Lost.Offsets, from)
		}
		for i := range got {
			if got[i].Offset != wantKept[i].Offset || string(got[i].Key) != string(wantKept[i].Key) || string(got[i].Value) != string(wantKept[i].Value) {
				t.Fatalf("record %d: got offset %d key %s, want offset %d key %s", i, got[i].Offset, got[i].Key, wantKept[i].Offset, wantKept[i].Key)
			}
		}
	}
}

func errorsAs(err error, app **temporal.ApplicationError) bool {
	for e := err; e != nil; {
		if a, ok := e.(*temporal.ApplicationError); ok {
			*app = a
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// topicConfig reads one config of a topic.
func topicConfig(t *testing.T, adm *kadm.Client, topic, key string) string {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rc.Configs {
		if c.Key == key && c.Value != nil {
			return *c.Value
		}
	}
	return ""
}

// A LogAppendTime topic with finite retention comes back with the times
// its consumers saw (the brokers' append times, not the restore's), its
// message.timestamp.type LogAppendTime again and its retention.ms as it
// was. Into a topic that exists and holds records (allow_nonempty), the
// records append after the existing ones, the group offsets translate to
// the new positions, and the target keeps its own retention. Guards
// against restamped records and retention left at -1.
func TestRestoreKeepsTimesAndSettings(t *testing.T) {
	env := testenv.Load(t)
	src := "e2e-" + randID() + "-lat"
	zk := client(t, env.ZKModeBootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	zkAdm := kadm.NewClient(zk)
	createTopic(t, zkAdm, src, 2, 3, map[string]*string{"message.timestamp.type": sptr("LogAppendTime"), "retention.ms": sptr("86400000")})
	var rs []*kgo.Record
	for i := 0; i < 200; i++ {
		rs = append(rs, &kgo.Record{Topic: src, Partition: int32(i % 2), Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("v%d", i)),
			Timestamp: time.UnixMilli(1_000_000_000_000)}) // the broker stamps its own time over this
	}
	produceSync(t, zk, rs...)
	want := readAll(t, env.ZKModeBootstrap, src)
	for _, r := range want[0][:1] {
		if r.Timestamp < time.Now().Add(-time.Hour).UnixMilli() {
			t.Fatalf("the source did not stamp append times: %d", r.Timestamp)
		}
	}
	group := "e2e-" + randID() + "-g"
	if _, err := zkAdm.CommitOffsets(context.Background(), group, offsetsOf(src, map[int32]int64{0: 40, 1: 100})); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "backups")
	cfg := writeFile(t, "backup.yaml", `
cluster: {name: zkmode, bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`}
task: lat-`+randID()+`
data_sources: [metadata, topicdata, offsets]
topics: {include: ["`+src+`"]}
target: {type: LocalDir, path: `+target+`}
options: {min_free_bytes: 1GiB}
`)
	out := mustKbr(t, 3*time.Minute, "backup", "run", "-f", cfg, "--json")
	var bres struct {
		Result workflows.BackupResult `json:"result"`
	}
	json.Unmarshal([]byte(out), &bres)
	time.Sleep(1500 * time.Millisecond) // a restamp would show

	kr := client(t, env.KRaftBootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	krAdm := kadm.NewClient(kr)
	dst := src + "-r"
	restoreInto(t, env, target, bres.Result.RecoveryPoint, []string{src}, "-r")
	got := readAll(t, env.KRaftBootstrap, dst)
	compareTopic(t, dst, want, got)
	if v := topicConfig(t, krAdm, dst, "message.timestamp.type"); v != "LogAppendTime" {
		t.Errorf("%s message.timestamp.type %q after the restore, want LogAppendTime", dst, v)
	}
	if v := topicConfig(t, krAdm, dst, "retention.ms"); v != "86400000" {
		t.Errorf("%s retention.ms %q after the restore, want 86400000 as backed up", dst, v)
	}

	// Into an existing topic holding records, with its own retention.
	existing := src + "-x"
	createTopic(t, krAdm, existing, 2, 1, map[string]*string{"retention.ms": sptr("3600000")})
	produceSync(t, kr, &kgo.Record{Topic: existing, Partition: 0, Value: []byte("old-0")}, &kgo.Record{Topic: existing, Partition: 1, Value: []byte("old-1")},
		&kgo.Record{Topic: existing, Partition: 1, Value: []byte("old-2")})
	rcfg := writeFile(t, "restore-x.yaml", `
cluster: {name: kraft, bootstrap_servers: `+quoteList(env.KRaftBootstrap)+`}
source: {target: {type: LocalDir, path: `+target+`}, recovery_point: `+bres.Result.RecoveryPoint+`}
topics: ["`+src+`"]
rename: ["`+src+`:`+existing+`"]
allow_nonempty: true
`)
	xout := mustKbr(t, 3*time.Minute, "restore", "run", "-f", rcfg, "--json")
	var xres struct {
		WorkflowID string `json:"workflow_id"`
	}
	json.Unmarshal([]byte(xout), &xres)
	gotX := readAll(t, env.KRaftBootstrap, existing)
	for p, base := range map[int32]int{0: 1, 1: 2} {
		if len(gotX[p]) != base+len(want[p]) {
			t.Fatalf("%s[%d]: %d records, want %d old and %d restored", existing, p, len(gotX[p]), base, len(want[p]))
		}
		for i, w := range want[p] {
			g := gotX[p][base+i]
			if string(g.Key) != string(w.Key) || string(g.Value) != string(w.Value) || g.Timestamp != w.Timestamp {
				t.Fatalf("%s[%d] record %d: %+v, want %+v", existing, p, base+i, g, w)
			}
		}
	}
	if v := topicConfig(t, krAdm, existing, "retention.ms"); v != "3600000" {
		t.Errorf("%s retention.ms %q after the restore, want its own 3600000", existing, v)
	}
	fetched, err := krAdm.FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	for p, at := range map[int32]int64{0: 1 + 40, 1: 2 + 100} {
		if o, ok := fetched.Lookup(existing, p); !ok || o.At != at {
			t.Errorf("group %s %s[%d] at %d (found %v), want %d: translated past the existing records", group, existing, p, o.At, ok, at)
		}
	}
	// No bookmarks left behind.
	if off, err := krAdm.FetchOffsets(context.Background(), "kbr-restore-"+xres.WorkflowID); err != nil || len(off) != 0 {
		t.Errorf("bookmark group of %s after the restore succeeded: %v %v", xres.WorkflowID, off, err)
	}

	// The worker dies right after it created the topics and before it
	// bookmarked them: the retried attempt finds them relaxed (retention
	// -1, CreateTime) and must still set back the backed-up settings, not
	// take the relaxed ones for the topic's own.
	dstF := src + "-f"
	h.stopWorker(syscall.SIGTERM)
	h.worker = h.startFaultWorker(t, "KBR_FAULT_PREPARE_EXIT=1")
	fcfg := writeFile(t, "restore-f.yaml", `
cluster: {name: kraft, bootstrap_servers: `+quoteList(env.KRaftBootstrap)+`}
source: {target: {type: LocalDir, path: `+target+`}, recovery_point: `+bres.Result.RecoveryPoint+`}
topics: ["`+src+`"]
rename: ["`+src+`:`+dstF+`"]
`)
	fout := mustKbr(t, time.Minute, "restore", "run", "-f", fcfg, "--detach", "--json")
	var fres struct {
		WorkflowID string `json:"workflow_id"`
	}
	if err := json.Unmarshal([]byte(fout), &fres); err != nil {
		t.Fatalf("restore --detach --json: %v: %s", err, fout)
	}
	exited := make(chan error, 1)
	go func() { exited <- h.worker.Wait() }()
	ended := make(chan error, 1)
	go func() {
		ended <- temporalClient(t).GetWorkflow(context.Background(), fres.WorkflowID, "").Get(context.Background(), nil)
	}()
	select {
	case err := <-exited:
		if err == nil {
			t.Fatal("the fault-injected worker exited cleanly")
		}
	case err := <-ended:
		t.Fatalf("restore %s ended before the fault-injected worker died in its prepare step: %v", fres.WorkflowID, err)
	case <-time.After(3 * time.Minute):
		t.Fatalf("the fault-injected worker still runs 3 minutes into restore %s", fres.WorkflowID)
	}
	h.worker = nil
	if v := topicConfig(t, krAdm, dstF, "retention.ms"); v != "-1" {
		t.Fatalf("%s retention.ms %q after the first attempt, want the relaxed -1 (the fault came too early)", dstF, v)
	}
	h.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := temporalClient(t).GetWorkflow(ctx, fres.WorkflowID, "").Get(ctx, nil); err != nil {
		t.Fatalf("restore %s after the worker died in its prepare step: %v", fres.WorkflowID, err)
	}
	compareTopic(t, dstF, want, readAll(t, env.KRaftBootstrap, dstF))
	if v := topicConfig(t, krAdm, dstF, "retention.ms"); v != "86400000" {
		t.Errorf("%s retention.ms %q after a restore whose first attempt died after creating it, want 86400000 as backed up", dstF, v)
	}
	if v := topicConfig(t, krAdm, dstF, "message.timestamp.type"); v != "LogAppendTime" {
		t.Errorf("%s message.timestamp.type %q after a restore whose first attempt died after creating it, want LogAppendTime", dstF, v)
	}
}

func offsetsOf(topic string, m map[int32]int64) kadm.Offsets {
	o := kadm.Offsets{}
	for p, at := range m {
		o.AddOffset(topic, p, at, -1)
	}
	return o
}

// A restore pins the recovery point it reads, so retention keeps it: while
// the restore runs, after it failed and waits for `kbr restore retry`, and
// until the retry succeeds; then the next prune removes it. Guards against
// a prune trusting a visibility query (eventually consistent, and blind to
// failed restores).
func TestRetentionKeepsPinnedRecoveryPoints(t *testing.T) {
	env := testenv.Load(t)
	c := temporalClient(t)
	topic := fillSlow(t, env, 3000)
	target := filepath.Join(t.TempDir(), "backups")
	task := "pin-" + randID()
	cfg := writeFile(t, "backup.yaml", `
cluster: {name: zkmode-pin, bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`}
task: `+task+`
task_created: 2026-01-01T00:00:00Z
max_copies: 1
data_sources: [topicdata]
topics: {include: ["`+topic+`"]}
target: {type: LocalDir, path: `+target+`}
options: {min_free_bytes: 1GiB}
`)
	backup := func() workflows.BackupResult {
		out := mustKbr(t, 3*time.Minute, "backup", "run", "-f", cfg, "--json")
		var r struct {
			Result workflows.BackupResult `json:"result"`
		}
		json.Unmarshal([]byte(out), &r)
		return r.Result
	}
	exists := func(rp string) bool {
		_, err := os.Stat(filepath.Join(target, rp))
		return err == nil
	}
	first := backup()
	// A slow restore of it.
	rcfg := writeFile(t, "restore.yaml", `
cluster: {name: kraft, bootstrap_servers: `+quoteList(env.KRaftBootstrap)+`}
source: {target: {type: LocalDir, path: `+target+`}, recovery_point: `+first.RecoveryPoint+`}
rename: ["`+topic+`:`+topic+`-pin"]
options: {throttle_bytes_per_second: 200KiB}
`)
	r := kbr(t, time.Minute, "restore", "run", "-f", rcfg, "--detach", "--json")
	var started struct {
		WorkflowID string `json:"workflow_id"`
	}
	json.Unmarshal([]byte(r.stdout), &started)
	pins := filepath.Join(target, filepath.Dir(first.RecoveryPoint), "pins")
	deadline := time.Now().Add(time.Minute)
	for {
		if es, _ := os.ReadDir(pins); len(es) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pin in %s", pins)
		}
		time.Sleep(50 * time.Millisecond)
	}
	second := backup()
	if !exists(first.RecoveryPoint) {
		t.Fatal("retention deleted the recovery point a running restore reads")
	}
	if second.Retention == nil || !contains(second.Retention.KeptInUse, first.RecoveryPoint) {
		t.Errorf("retention %+v: want %s kept in use", second.Retention, first.RecoveryPoint)
	}
	// The restore fails (terminated): its pin stays while it can be retried.
	if err := c.TerminateWorkflow(context.Background(), started.WorkflowID, "", "e2e: a failed restore"); err != nil {
		t.Fatal(err)
	}
	third := backup()
	if !exists(first.RecoveryPoint) {
		t.Fatal("retention deleted the recovery point of a failed restore awaiting retry")
	}
	_ = third
	// The retry finishes it; the pin goes, and so does the recovery point.
	out := mustKbr(t, 5*time.Minute, "restore", "retry", started.WorkflowID, "--json")
	if !strings.Contains(out, "succeeded") && !strings.Contains(out, `"recovery_point"`) {
		t.Logf("retry output: %s", out)
	}
	d, err := c.DescribeWorkflowExecution(context.Background(), started.WorkflowID, "")
	if err != nil || d.GetWorkflowExecutionInfo().GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("retry of %s: %v %v", started.WorkflowID, err, d.GetWorkflowExecutionInfo().GetStatus())
	}
	if es, _ := os.ReadDir(pins); len(es) != 0 {
		t.Errorf("pins left after the restore succeeded: %d", len(es))
	}
	backup()
	if exists(first.RecoveryPoint) {
		t.Errorf("%s kept after its restore succeeded and max copies is 1", first.RecoveryPoint)
	}
	compareTopic(t, topic, readAll(t, env.ZKModeBootstrap, topic), readAll(t, env.KRaftBootstrap, topic+"-pin"))
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
