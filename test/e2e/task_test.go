package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	sdkclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/catalog"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/internal/tasks"
	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/storage/localdir"
	"github.com/kbr-project/kbr/workflows"
)

// taskFile writes a task definition on the ZooKeeper-mode cluster.
func taskFile(t *testing.T, env testenv.Env, name, body string) string {
	t.Helper()
	return writeFile(t, name+".yaml", `
name: `+name+`
cluster:
  name: zkmode
  bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`
  zookeeper: {connect: ["`+env.ZKConnect+`"], chroot: `+env.ZKChroot+`}
`+body)
}

func mustKbr(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	r := kbr(t, timeout, args...)
	if r.code != 0 {
		t.Fatalf("kbr %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// runTask is Back Up Now, waited for.
func runTask(t *testing.T, name string) workflows.BackupResult {
	t.Helper()
	out := mustKbr(t, 5*time.Minute, "task", "run", name, "--json")
	var res struct {
		Result workflows.BackupResult `json:"result"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("task run --json: %v\n%s", err, out)
	}
	return res.Result
}

func readManifest(t *testing.T, target, name string) *backupset.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(target, name))
	if err != nil {
		t.Fatal(err)
	}
	m, err := backupset.UnmarshalManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Format >= 2 {
		// Its partitions are in its parts: load them as a reader does.
		be, err := localdir.New(target)
		if err != nil {
			t.Fatal(err)
		}
		parts, err := catalog.Parts(context.Background(), be, name, m)
		if err != nil {
			t.Fatalf("parts of %s: %v", name, err)
		}
		for _, p := range parts {
			m.Partitions = append(m.Partitions, p.Partitions...)
		}
	}
	return m
}

// allFiles lists every file of a recovery point but its manifest: what the
// manifest lists and, in format 2, what its parts list (the pack files).
func allFiles(t *testing.T, target, name string) []backupset.FileEntry {
	t.Helper()
	m := readManifest(t, target, name)
	out := m.Files()
	if m.Format >= 2 {
		be, err := localdir.New(target)
		if err != nil {
			t.Fatal(err)
		}
		parts, err := catalog.Parts(context.Background(), be, name, m)
		if err != nil {
			t.Fatalf("parts of %s: %v", name, err)
		}
		for _, p := range parts {
			out = append(out, p.Files...)
		}
	}
	return out
}

// restoreInto restores a recovery point into the KRaft cluster with every
// topic renamed topic+suffix, and returns the restore's workflow id.
func restoreInto(t *testing.T, env testenv.Env, target, rp string, topics []string, suffix string) string {
	t.Helper()
	var rename []string
	for _, topic := range topics {
		rename = append(rename, topic+":"+topic+suffix)
	}
	cfg := writeFile(t, "restore"+suffix+".yaml", `
cluster: {name: kraft, bootstrap_servers: `+quoteList(env.KRaftBootstrap)+`}
source: {target: {type: LocalDir, path: `+target+`}, recovery_point: `+rp+`}
topics: `+quoteList(topics)+`
rename: `+quoteList(rename)+`
`)
	out := mustKbr(t, 5*time.Minute, "restore", "run", "-f", cfg, "--json")
	var res struct {
		WorkflowID string `json:"workflow_id"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.WorkflowID == "" {
		t.Fatalf("restore run --json: %v\n%s", err, out)
	}
	return res.WorkflowID
}

func deleteRecords(t *testing.T, adm *kadm.Client, topic string, partition int32, before int64) {
	t.Helper()
	o := kadm.Offsets{}
	o.AddOffset(topic, partition, before, -1)
	resp, err := adm.DeleteRecords(context.Background(), o)
	if err != nil || resp.Error() != nil {
		t.Fatalf("delete records of %s[%d] before %d: %v %v", topic, partition, before, err, resp.Error())
	}
}

func produceN(t *testing.T, cl *kgo.Client, topic string, partitions int32, n int, tag string) {
	t.Helper()
	var rs []*kgo.Record
	for i := 0; i < n; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i) % partitions, Key: []byte(fmt.Sprintf("%s-%d", tag, i)),
			Value: []byte(strings.Repeat(tag, 1+i%40)), Timestamp: time.Date(2024, 5, 6, 7, 8, 9, i*1e6, time.UTC),
			Headers: []kgo.RecordHeader{{Key: "tag", Value: []byte(tag)}}})
	}
	produceSync(t, cl, rs...)
}

// compactRound rewrites keys of a compacted topic until the cleaner has
// removed some, then waits until the topic stops changing.
func compactRound(t *testing.T, cl *kgo.Client, brokers []string, topic, tag string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for round := 0; ; round++ {
		var rs []*kgo.Record
		for k := 0; k < 10; k++ {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: 0, Key: []byte(fmt.Sprintf("ck%d", k)), Value: []byte(fmt.Sprintf("%s round %d", tag, round))})
		}
		produceSync(t, cl, rs...)
		time.Sleep(500 * time.Millisecond)
		if got := readAll(t, brokers, topic)[0]; hasGap(got) && round >= 2 && int64(len(got)) < got[len(got)-1].Offset-5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not compacted within 90s", topic)
		}
	}
	var last []rec
	for i := 0; i < 20; i++ {
		time.Sleep(1500 * time.Millisecond)
		got := readAll(t, brokers, topic)[0]
		if last != nil && len(got) == len(last) {
			return
		}
		last = got
	}
}

// Full + three incrementals with new records, deleted records, compactions
// and a recreated topic in between: restoring the last recovery point gives
// exactly what the source holds (what a full backup at that moment gives).
func TestTaskIncrementalChainIsExact(t *testing.T) {
	env := testenv.Load(t)
	id := randID()
	mainT, compT, recrT := "e2e-"+id+"-inc", "e2e-"+id+"-inccomp", "e2e-"+id+"-increcr"
	cl := client(t, env.ZKModeBootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	createTopic(t, adm, mainT, 3, 3, map[string]*string{"retention.ms": sptr("-1")})
	createTopic(t, adm, compT, 1, 3, map[string]*string{
		"cleanup.policy": sptr("compact"), "segment.ms": sptr("300"), "min.cleanable.dirty.ratio": sptr("0.01"),
		"min.compaction.lag.ms": sptr("0"), "delete.retention.ms": sptr("100"), "retention.ms": sptr("-1")})
	createTopic(t, adm, recrT, 2, 3, map[string]*string{"retention.ms": sptr("-1")})
	produceN(t, cl, mainT, 3, 300, "a")
	produceN(t, cl, recrT, 2, 50, "r1")
	compactRound(t, cl, env.ZKModeBootstrap, compT, "c1")

	target := filepath.Join(t.TempDir(), "backups")
	name := "inc-" + id
	mustKbr(t, 3*time.Minute, "task", "create", "-f", taskFile(t, env, name, `
mode: manual
topics: {include: ["`+mainT+`", "`+compT+`", "`+recrT+`"]}
target: {type: LocalDir, path: `+target+`}
policy: incremental
max_copies: 10
options: {min_free_bytes: 1GiB, segment_bytes: 1MiB}
`))

	r1 := runTask(t, name)
	if r1.Kind != backupset.KindFull {
		t.Fatalf("first run: %s, want full", r1.Kind)
	}
	// Run 2: new records everywhere.
	produceN(t, cl, mainT, 3, 90, "b")
	compactRound(t, cl, env.ZKModeBootstrap, compT, "c2")
	r2 := runTask(t, name)
	m2 := readManifest(t, target, r2.RecoveryPoint)
	if r2.Kind != backupset.KindIncremental || m2.Base != r1.RecoveryPoint {
		t.Fatalf("second run: %s based on %q, want incremental on %s", r2.Kind, m2.Base, r1.RecoveryPoint)
	}
	if p := m2.Partition(mainT, 0); !p.Incremental || p.Records != 30 {
		t.Errorf("run 2 %s[0]: incremental %v with %d records, want incremental with the 30 new", mainT, p.Incremental, p.Records)
	}
	if p := m2.Partition(compT, 0); p.Incremental || !strings.Contains(p.FullReason, "compacted") {
		t.Errorf("run 2 %s[0]: incremental %v reason %q, want a full copy of the compacted topic", compT, p.Incremental, p.FullReason)
	}

	// Run 3: records deleted past the previous end on main[0] (as
	// retention would), and the topic recreated.
	end2 := m2.Partition(mainT, 0).EndOffset
	produceN(t, cl, mainT, 3, 60, "c")
	deleteRecords(t, adm, mainT, 0, end2+5)
	if _, err := adm.DeleteTopics(context.Background(), recrT); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		// Deletion is asynchronous in ZooKeeper mode: create until it takes.
		resp, err := adm.CreateTopic(context.Background(), 2, 3, map[string]*string{"retention.ms": sptr("-1")}, recrT)
		if err == nil && resp.Err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s not recreated: %v %v", recrT, err, resp.Err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	waitLeaders(t, adm, recrT, 2)
	// A fresh producer: the old one may still hold the deleted topic's ID.
	produceN(t, client(t, env.ZKModeBootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner())), recrT, 2, 20, "r2")
	r3 := runTask(t, name)
	m3 := readManifest(t, target, r3.RecoveryPoint)
	if r3.Kind != backupset.KindIncremental {
		t.Fatalf("third run: %s, want incremental", r3.Kind)
	}
	if p := m3.Partition(mainT, 0); p.Incremental || !strings.Contains(p.FullReason, "retention") {
		t.Errorf("run 3 %s[0]: incremental %v reason %q, want a full copy naming retention", mainT, p.Incremental, p.FullReason)
	}
	if p := m3.Partition(mainT, 1); !p.Incremental {
		t.Errorf("run 3 %s[1]: full (%s), want incremental", mainT, p.FullReason)
	}
	if p := m3.Partition(recrT, 1); p.Incremental || !strings.Contains(p.FullReason, "recreated") {
		t.Errorf("run 3 %s[1]: incremental %v reason %q, want a full copy naming the recreation", recrT, p.Incremental, p.FullReason)
	}
	joined := strings.Join(r3.FullPartitions, "\n")
	if !strings.Contains(joined, recrT+"[0]") || !strings.Contains(joined, mainT+"[0]") {
		t.Errorf("run 3 result does not say which partitions were copied whole: %v", r3.FullPartitions)
	}

	// Run 4: records deleted below the previous end on main[1] (the chain
	// still holds them; a full backup now would not), more compaction.
	produceN(t, cl, mainT, 3, 30, "d")
	deleteRecords(t, adm, mainT, 1, 40)
	compactRound(t, cl, env.ZKModeBootstrap, compT, "c4")
	r4 := runTask(t, name)
	if r4.Kind != backupset.KindIncremental {
		t.Fatalf("fourth run: %s, want incremental", r4.Kind)
	}
	want := map[string]map[int32][]rec{}
	for _, topic := range []string{mainT, compT, recrT} {
		want[topic] = readAll(t, env.ZKModeBootstrap, topic)
	}
	if first := want[mainT][1][0].Offset; first != 40 {
		t.Fatalf("%s[1] starts at %d after delete-records, want 40", mainT, first)
	}

	restoreInto(t, env, target, r4.RecoveryPoint, []string{mainT, compT, recrT}, "-chain")
	for _, topic := range []string{mainT, compT, recrT} {
		compareTopic(t, topic+" (chain of 4)", want[topic], readAll(t, env.KRaftBootstrap, topic+"-chain"))
	}

	// The history lists each run, newest first, with its kind and path.
	var hist []tasks.Execution
	if err := json.Unmarshal([]byte(mustKbr(t, time.Minute, "task", "history", name, "--json")), &hist); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, x := range hist {
		kinds = append(kinds, x.Kind)
		if x.Status != "succeeded" || !strings.HasSuffix(x.Path, x.RecoveryPoint) || x.RecoveryPoint == "" || x.End == nil {
			t.Errorf("history entry %+v: want succeeded with its recovery point's full path", x)
		}
	}
	if strings.Join(kinds, ",") != "incremental,incremental,incremental,full" {
		t.Errorf("history kinds %v, want incremental x3 then full (newest first)", kinds)
	}
	text := mustKbr(t, time.Minute, "task", "history", name)
	if !strings.Contains(text, r4.RecoveryPoint) || !strings.Contains(text, "BACKUP PATH") {
		t.Errorf("task history output lacks the backup path:\n%s", text)
	}
}

// targetFiles lists every regular file under dir, relative to it.
func targetFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// Max copies 2 over five runs of full-then-incremental: the kept recovery
// points verify and restore, nothing else is left, and a prune whose worker
// dies midway is finished by the retry.
func TestTaskRetentionKeepsChains(t *testing.T) {
	env := testenv.Load(t)
	id := randID()
	topic := "e2e-" + id + "-ret"
	cl := client(t, env.ZKModeBootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, kadm.NewClient(cl), topic, 2, 3, map[string]*string{"retention.ms": sptr("-1")})
	target := filepath.Join(t.TempDir(), "backups")
	name := "ret-" + id
	mustKbr(t, 3*time.Minute, "task", "create", "-f", taskFile(t, env, name, `
topics: {include: ["`+topic+`"]}
target: {type: LocalDir, path: `+target+`}
policy: incremental
max_copies: 2
options: {min_free_bytes: 1GiB, segment_bytes: 1MiB}
`))
	var runs []workflows.BackupResult
	var firstFiles []backupset.FileEntry
	snapshots := []map[int32][]rec{}
	for i := 0; i < 5; i++ {
		produceN(t, cl, topic, 2, 40, fmt.Sprintf("r%d", i))
		if i == 3 {
			// The fourth run's worker dies in the middle of its prune,
			// which deletes runs 1 and 2 (run 3 is a new full).
			firstFiles = allFiles(t, target, runs[0].RecoveryPoint)
			h.stopWorker(syscall.SIGTERM)
			h.worker = h.startFaultWorker(t, "KBR_FAULT_PRUNE_EXIT=1")
			out := mustKbr(t, time.Minute, "task", "run", name, "--detach", "--json")
			var s struct {
				WorkflowID string `json:"workflow_id"`
			}
			json.Unmarshal([]byte(out), &s)
			if err := h.worker.Wait(); err == nil {
				t.Fatal("the fault-injected worker exited cleanly")
			}
			h.worker = nil
			// Between the two: run 1's manifest gone, its files still there.
			if _, err := os.Stat(filepath.Join(target, runs[0].RecoveryPoint)); !os.IsNotExist(err) {
				t.Fatalf("run 1's manifest survived the interrupted prune: %v", err)
			}
			if _, err := os.Stat(filepath.Join(target, firstFiles[0].Name)); err != nil {
				t.Fatalf("the interrupted prune got as far as run 1's files: %v", err)
			}
			h.startWorker()
			runs = append(runs, waitBackup(t, temporalClient(t), s.WorkflowID))
		} else {
			runs = append(runs, runTask(t, name))
		}
		snapshots = append(snapshots, readAll(t, env.ZKModeBootstrap, topic))
	}
	var kinds []string
	for _, r := range runs {
		kinds = append(kinds, r.Kind)
	}
	// A chain longer than max copies is never started: F I F I F.
	if strings.Join(kinds, ",") != "full,incremental,full,incremental,full" {
		t.Errorf("kinds %v, want full,incremental,full,incremental,full", kinds)
	}
	// Kept: the newest two (runs 5 and 4) and the full run 4 needs (run 3).
	keptRuns := []int{2, 3, 4}
	wantFiles := map[string]bool{}
	for _, i := range keptRuns {
		wantFiles[runs[i].RecoveryPoint] = true
		for _, f := range allFiles(t, target, runs[i].RecoveryPoint) {
			wantFiles[f.Name] = true
		}
	}
	got := targetFiles(t, target)
	for _, f := range got {
		if !wantFiles[f] {
			t.Errorf("left on the target: %s (not part of a kept recovery point)", f)
		}
		delete(wantFiles, f)
	}
	for f := range wantFiles {
		t.Errorf("missing from the target: %s", f)
	}
	// Nor the pruned recovery points' directories.
	filepath.WalkDir(target, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			if entries, _ := os.ReadDir(p); len(entries) == 0 {
				t.Errorf("empty directory left on the target: %s", p)
			}
		}
		return nil
	})
	for _, i := range keptRuns {
		mustKbr(t, 3*time.Minute, "backups", "verify", filepath.Join(target, runs[i].RecoveryPoint))
	}
	// The kept incremental restores to exactly what the source held then.
	restoreInto(t, env, target, runs[3].RecoveryPoint, []string{topic}, "-ret4")
	compareTopic(t, topic+" (run 4)", snapshots[3], readAll(t, env.KRaftBootstrap, topic+"-ret4"))

	// Verify of the incremental names a flipped byte in its base's segment.
	seg := dataFiles(t, target, runs[2].RecoveryPoint)[0]
	b, _ := os.ReadFile(seg)
	b[len(b)/2] ^= 0xff
	os.WriteFile(seg, b, 0o644)
	rel, _ := filepath.Rel(target, seg)
	r := kbr(t, 3*time.Minute, "backups", "verify", filepath.Join(target, runs[3].RecoveryPoint))
	if r.code != 1 || !strings.Contains(r.stderr, rel) {
		t.Errorf("verify of an incremental whose base is damaged: exit %d, want 1 naming %s:\n%s", r.code, rel, r.stderr)
	}
}

// Retention spares a recovery point a running restore reads, beyond max
// copies, and prunes it once that run has ended. The running restore is a
// stand-in: a RestoreWorkflow execution on a task queue no worker polls,
// carrying the search attributes a real restore sets once it has resolved
// its recovery point (kind restore, the manifest's name), so it stays
// "running" as long as the test needs.
func TestTaskRetentionSparesRecoveryPointInUse(t *testing.T) {
	env := testenv.Load(t)
	id := randID()
	topic := "e2e-" + id + "-inuse"
	cl := client(t, env.ZKModeBootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, kadm.NewClient(cl), topic, 1, 3, nil)
	target := filepath.Join(t.TempDir(), "backups")
	name := "inuse-" + id
	mustKbr(t, 3*time.Minute, "task", "create", "-f", taskFile(t, env, name, `
topics: {include: ["`+topic+`"]}
target: {type: LocalDir, path: `+target+`}
max_copies: 1
options: {min_free_bytes: 1GiB}
`))
	produceN(t, cl, topic, 1, 20, "a")
	first := runTask(t, name)

	c := temporalClient(t)
	ctx := context.Background()
	standIn, err := c.ExecuteWorkflow(ctx, sdkclient.StartWorkflowOptions{
		ID: "e2e-restore-standin-" + id, TaskQueue: "e2e-nobody-polls-" + id,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			names.SAKind.ValueSet(names.KindRestore), names.SARecoveryPoint.ValueSet(first.RecoveryPoint)),
	}, names.RestoreWorkflow)
	if err != nil {
		t.Fatal(err)
	}
	defer c.TerminateWorkflow(ctx, standIn.GetID(), "", "test over")
	// Visibility is eventually consistent: wait until a query sees it.
	waitVisible(t, c, fmt.Sprintf("WorkflowId = '%s' AND ExecutionStatus = 'Running' AND KbrRecoveryPoint = '%s'", standIn.GetID(), first.RecoveryPoint), 1)

	produceN(t, cl, topic, 1, 20, "b")
	second := runTask(t, name)
	if second.Retention == nil || strings.Join(second.Retention.KeptInUse, ",") != first.RecoveryPoint ||
		len(second.Retention.DeletedManifests) != 0 {
		t.Fatalf("retention while a restore reads %s: %+v", first.RecoveryPoint, second.Retention)
	}
	mustKbr(t, 3*time.Minute, "backups", "verify", filepath.Join(target, first.RecoveryPoint))

	if err := c.TerminateWorkflow(ctx, standIn.GetID(), "", "restore over"); err != nil {
		t.Fatal(err)
	}
	waitVisible(t, c, fmt.Sprintf("WorkflowId = '%s' AND ExecutionStatus = 'Running'", standIn.GetID()), 0)
	produceN(t, cl, topic, 1, 20, "c")
	third := runTask(t, name)
	if third.Retention == nil || len(third.Retention.KeptInUse) != 0 || len(third.Retention.DeletedManifests) != 2 {
		t.Fatalf("retention after the restore ended: %+v", third.Retention)
	}
	// A real restore says which recovery point it reads before it verifies it.
	rid := restoreInto(t, env, target, "latest", []string{topic}, "-inuse")
	var announced, verifyAt int64
	it := c.GetWorkflowHistory(ctx, rid, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetUpsertWorkflowSearchAttributesEventAttributes(); a != nil && announced == 0 {
			if p, ok := a.GetSearchAttributes().GetIndexedFields()["KbrRecoveryPoint"]; ok && strings.Contains(string(p.GetData()), third.RecoveryPoint) {
				announced = ev.GetEventId()
			}
		}
		// The first activity that reads the recovery point: ResolveRecoveryPoint
		// in the shape before the data-plane rebuild, PlanVerify since.
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && verifyAt == 0 &&
			(a.GetActivityType().GetName() == "ResolveRecoveryPoint" || a.GetActivityType().GetName() == "PlanVerify") {
			verifyAt = ev.GetEventId()
		}
	}
	if announced == 0 || verifyAt == 0 || announced > verifyAt {
		t.Errorf("restore %s: KbrRecoveryPoint=%s set at event %d, verify scheduled at event %d; want it set first", rid, third.RecoveryPoint, announced, verifyAt)
	}

	want := map[string]bool{third.RecoveryPoint: true}
	for _, f := range allFiles(t, target, third.RecoveryPoint) {
		want[f.Name] = true
	}
	got := targetFiles(t, target)
	if len(got) != len(want) {
		t.Errorf("left on the target: %v, want only the files of %s", got, third.RecoveryPoint)
	}
	for _, f := range got {
		if !want[f] {
			t.Errorf("left on the target: %s", f)
		}
	}
}

// waitVisible waits until a visibility query lists n executions.
func waitVisible(t *testing.T, c sdkclient.Client, query string, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err == nil && len(resp.Executions) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("visibility never listed %d executions for %s (error %v)", n, query, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func showTask(t *testing.T, name string) tasks.Info {
	t.Helper()
	var info tasks.Info
	if err := json.Unmarshal([]byte(mustKbr(t, time.Minute, "task", "show", name, "--json")), &info); err != nil {
		t.Fatal(err)
	}
	return info
}

func history(t *testing.T, name string) []tasks.Execution {
	t.Helper()
	var hist []tasks.Execution
	if err := json.Unmarshal([]byte(mustKbr(t, time.Minute, "task", "history", name, "--json")), &hist); err != nil {
		t.Fatal(err)
	}
	return hist
}

// A periodic task fires on time; a firing while its run is still going is
// skipped; a locked task does not fire; a second task of the cluster run
// meanwhile waits for the lock, and a third beyond the queue is refused;
// a firing missed by more than 120 s (the server was down) is skipped.
func TestTaskSchedules(t *testing.T) {
	env := testenv.Load(t)
	id := randID()
	slow, small := "e2e-"+id+"-sched", "e2e-"+id+"-sched-small"
	// Small batches: the throttle waits between fetches, and a fetch always
	// returns at least one whole batch, so 3 MB in one batch would be read
	// in one fetch however slow the throttle.
	cl := client(t, env.ZKModeBootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(16<<10))
	adm := kadm.NewClient(cl)
	createTopic(t, adm, slow, 1, 3, nil)
	// produceN stamps records in 2024: time retention must not take them.
	createTopic(t, adm, small, 1, 3, map[string]*string{"retention.ms": sptr("-1")})
	var rs []*kgo.Record
	for i := 0; i < 1500; i++ {
		v := make([]byte, 2000)
		rand.Read(v) // incompressible, so the throttle sees real bytes
		rs = append(rs, &kgo.Record{Topic: slow, Key: []byte(fmt.Sprint(i)), Value: v})
	}
	produceSync(t, cl, rs...)
	produceN(t, cl, small, 1, 10, "s")
	target := filepath.Join(t.TempDir(), "backups")
	cluster := "sched-" + id
	def := func(name, topic, sched string) string {
		return writeFile(t, name+".yaml", `
name: `+name+`
cluster: {name: `+cluster+`, lock_queue: 1, bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`}
`+sched+`
data_sources: [topicdata]
topics: {include: ["`+topic+`"]}
target: {type: LocalDir, path: `+target+`}
max_copies: 5
options: {min_free_bytes: 1GiB, compression: none, throttle_bytes_per_second: 20KiB}
`)
	}
	start := time.Now().UTC().Truncate(time.Second).Add(25 * time.Second)
	periodic := "mode: periodic\nperiod: 120s\nstart_time: " + start.Format(time.RFC3339)
	p, l := "p-"+id, "l-"+id
	mustKbr(t, 3*time.Minute, "task", "create", "-f", def(p, slow, periodic))
	mustKbr(t, 3*time.Minute, "task", "create", "-f", def(l, small, periodic))
	mustKbr(t, time.Minute, "task", "lock", l, "--note", "e2e")
	q, r := "q-"+id, "r-"+id
	m := "m-" + id
	t.Cleanup(func() { // also when the test fails half way: no schedule keeps firing
		for _, n := range []string{p, l, q, r, m} {
			kbr(t, time.Minute, "task", "delete", n)
		}
	})
	mustKbr(t, 3*time.Minute, "task", "create", "-f", def(q, small, "mode: manual"))
	mustKbr(t, 3*time.Minute, "task", "create", "-f", def(r, small, "mode: manual"))
	if info := showTask(t, l); !info.Locked || info.LockNote != "e2e" {
		t.Fatalf("task %s: locked %v note %q, want locked", l, info.Locked, info.LockNote)
	}
	if info := showTask(t, p); len(info.Next) == 0 || !info.Next[0].Equal(start) {
		t.Fatalf("task %s next runs %v, want %s first", p, info.Next, start)
	}

	// It fires on time.
	deadline := start.Add(30 * time.Second)
	var first tasks.Execution
	for {
		if hist := history(t, p); len(hist) > 0 {
			first = hist[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s did not fire at %s", p, start)
		}
		time.Sleep(time.Second)
	}
	if d := first.Start.Sub(start); d < 0 || d > 10*time.Second {
		t.Errorf("task %s started at %s, scheduled %s", p, first.Start, start)
	}

	// Meanwhile Back Up Now of another task of the cluster waits for the
	// lock, and one more is refused by the queue bound.
	waitOut := mustKbr(t, time.Minute, "task", "run", q, "--detach", "--json")
	var qrun struct {
		WorkflowID string `json:"workflow_id"`
	}
	json.Unmarshal([]byte(waitOut), &qrun)
	c := temporalClient(t)
	for dl := time.Now().Add(30 * time.Second); ; {
		if pr, ok := queryProgress(t, c, qrun.WorkflowID); ok && strings.Contains(pr.Waiting, p) {
			break
		}
		if time.Now().After(dl) {
			t.Fatalf("task %s's run does not say it waits for %s; runs of %s: %+v; runs of %s: %+v", q, p, p, history(t, p), q, history(t, q))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if res := kbr(t, time.Minute, "task", "run", r); res.code != 1 || !strings.Contains(res.stderr, "lock_queue") {
		t.Errorf("third run on a busy cluster: exit %d, want 1 naming lock_queue:\n%s", res.code, res.stderr)
	}

	// The second firing, while the first run still goes, is skipped; the
	// locked task never fired.
	for time.Now().Before(start.Add(120*time.Second + 15*time.Second)) {
		time.Sleep(time.Second)
	}
	if hist := history(t, p); len(hist) != 1 || hist[0].Status != "running" {
		t.Errorf("task %s after its second firing: %d runs (%+v), want the first still running alone", p, len(hist), hist)
	}
	if info := showTask(t, p); info.Skipped < 1 {
		t.Errorf("task %s: %d firings skipped for overlap, want at least 1", p, info.Skipped)
	}
	if hist := history(t, l); len(hist) != 0 {
		t.Errorf("locked task %s ran: %+v", l, hist)
	}
	mustKbr(t, time.Minute, "task", "lock", p)
	// The waiting run goes once the first ends.
	if res := waitBackup(t, c, qrun.WorkflowID); res.Totals.Records != 10 {
		t.Errorf("task %s's run backed up %d records, want 10", q, res.Totals.Records)
	}
	if hist := history(t, p); len(hist) != 1 || hist[0].Status != "succeeded" {
		t.Errorf("task %s: %+v, want one succeeded run", p, hist)
	}

	// Missed window: the server is down across a firing and comes back more
	// than 120 s after it; the firing is skipped to the next period.
	mstart := time.Now().UTC().Truncate(time.Second).Add(20 * time.Second)
	mustKbr(t, 3*time.Minute, "task", "create", "-f", def(m, small, "mode: periodic\nperiod: 10m\nstart_time: "+mstart.Format(time.RFC3339)))
	h.stopServer(syscall.SIGTERM)
	for time.Now().Before(mstart.Add(CatchupSlack())) {
		time.Sleep(time.Second)
	}
	if err := h.startServer(); err != nil {
		t.Fatal(err)
	}
	for dl := time.Now().Add(60 * time.Second); ; {
		if info := showTask(t, m); info.Missed >= 1 {
			break
		}
		if time.Now().After(dl) {
			t.Errorf("task %s: the schedule does not count a firing missed beyond the catch-up window", m)
			break
		}
		time.Sleep(2 * time.Second)
	}
	time.Sleep(5 * time.Second)
	if hist := history(t, m); len(hist) != 0 {
		t.Errorf("task %s ran a firing missed by more than 120s: %+v", m, hist)
	}
	for _, n := range []string{p, l, q, r, m} {
		mustKbr(t, time.Minute, "task", "delete", n)
	}
}

// CatchupSlack is how long after a firing the server comes back: beyond
// the 120 s catch-up window.
func CatchupSlack() time.Duration { return tasks.CatchupWindow + 15*time.Second }

// Bad task definitions are refused with the field named, and nothing is stored.
func TestTaskBadInput(t *testing.T) {
	env := testenv.Load(t)
	id := randID()
	topic := "e2e-" + id + "-badtask"
	cl := client(t, env.ZKModeBootstrap)
	createTopic(t, kadm.NewClient(cl), topic, 1, 1, nil)
	target := filepath.Join(t.TempDir(), "backups")
	good := func(extra string) string {
		return "topics: {include: [\"" + topic + "\"]}\ntarget: {type: LocalDir, path: " + target + "}\n" + extra
	}
	dup := "dup-" + id
	mustKbr(t, 3*time.Minute, "task", "create", "-f", taskFile(t, env, dup, good("max_copies: 3\n")))
	cases := []struct{ name, body, want string }{
		{"period-" + id, good("max_copies: 3\nmode: periodic\nperiod: 60s\n"), "period: 1m0s is under the minimum of 120s"},
		{"type-" + id, "target: {type: FTP, path: /x}\nmax_copies: 3\n", "target.type: unknown path type \"FTP\""},
		{"copies-" + id, good("max_copies: 0\n"), "max_copies: 0"},
		{dup, good("max_copies: 3\n"), "exists already"},
		{"pattern-" + id, "topics: {include: [\"no-such-topic-" + id + ".*\"]}\ntarget: {type: LocalDir, path: " + target + "}\nmax_copies: 3\n", "topics.include[0]"},
		{"policy-" + id, good("max_copies: 3\npolicy: full_every_n\n"), "full_every"},
	}
	for _, c := range cases {
		r := kbr(t, 3*time.Minute, "task", "create", "-f", taskFile(t, env, c.name, c.body))
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("task %s: exit %d, want 2 with %q:\n%s", c.name, r.code, c.want, r.stderr)
		}
	}
	var all []tasks.Info
	if err := json.Unmarshal([]byte(mustKbr(t, time.Minute, "task", "list", "--json")), &all); err != nil {
		t.Fatal(err)
	}
	for _, info := range all {
		for _, c := range cases {
			if info.Name == c.name && c.name != dup {
				t.Errorf("refused task %s was stored", c.name)
			}
		}
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("a refused task wrote to its target: %v", err)
	}
	// An update keeps the task's creation time (its folder); a bad one changes nothing.
	before := showTask(t, dup)
	mustKbr(t, 3*time.Minute, "task", "update", "-f", taskFile(t, env, dup, good("max_copies: 7\n")))
	if r := kbr(t, 3*time.Minute, "task", "update", "-f", taskFile(t, env, dup, good("max_copies: 7\nmode: periodic\nperiod: 10s\n"))); r.code != 2 {
		t.Errorf("bad update: exit %d, want 2: %s", r.code, r.stderr)
	}
	if after := showTask(t, dup); after.MaxCopies != 7 || !after.Created.Equal(before.Created) || after.Mode != "manual" {
		t.Errorf("after update: max copies %d created %s mode %s; want 7, %s, manual", after.MaxCopies, after.Created, after.Mode, before.Created)
	}
	// A run that fails is in the history with its reason.
	if _, err := kadm.NewClient(cl).DeleteTopics(context.Background(), topic); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if r := kbr(t, 3*time.Minute, "task", "run", dup); r.code != 1 {
		t.Errorf("run of a task whose topic is gone: exit %d, want 1: %s", r.code, r.stderr)
	}
	if hist := history(t, dup); len(hist) != 1 || hist[0].Status != "failed" || !strings.Contains(hist[0].Error, "matches no topic") {
		t.Errorf("history of the failed run: %+v, want failed naming the topic pattern", hist)
	}
	mustKbr(t, time.Minute, "task", "delete", dup)
	if r := kbr(t, time.Minute, "task", "show", dup); r.code != 2 || !strings.Contains(r.stderr, "no task named") {
		t.Errorf("show of a deleted task: exit %d: %s", r.code, r.stderr)
	}
}

// Registering a cluster the first time creates its default task: hourly,
// full, metadata only, LocalDir, 168 copies; registering it again does not.
func TestClusterRegisterCreatesDefaultTask(t *testing.T) {
	env := testenv.Load(t)
	cluster := "reg-" + randID()
	file := writeFile(t, "cluster.yaml", `
name: `+cluster+`
bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`
zookeeper: {connect: ["`+env.ZKConnect+`"], chroot: `+env.ZKChroot+`}
`)
	dir := filepath.Join(t.TempDir(), "LocalBackup")
	var info tasks.Info
	if err := json.Unmarshal([]byte(mustKbr(t, 3*time.Minute, "cluster", "register", "-f", file, "--local-dir", dir, "--json")), &info); err != nil {
		t.Fatal(err)
	}
	name := tasks.DefaultTaskName(cluster)
	if info.Name != name || info.Mode != "periodic" || info.Period.D() != time.Hour || info.MaxCopies != 168 ||
		strings.Join(info.DataSources, ",") != "metadata" || info.Target.Type != "LocalDir" || info.Target.Path != dir || info.Policy != "full" {
		t.Errorf("default task %+v: want %s hourly full metadata to LocalDir %s keeping 168", info, name, dir)
	}
	if len(info.Next) == 0 || info.Next[0].Minute() != 0 || info.Next[0].Second() != 0 {
		t.Errorf("default task next runs %v: want on the hour", info.Next)
	}
	out := mustKbr(t, 3*time.Minute, "cluster", "register", "-f", file, "--local-dir", dir)
	if !strings.Contains(out, "already has tasks") {
		t.Errorf("second register: %s", out)
	}
	// The operator can run it now, lock it and delete it like any task.
	res := runTask(t, name)
	if res.Kind != "full" || !strings.Contains(res.RecoveryPoint, "_manifest_") {
		t.Errorf("default task run: %+v", res)
	}
	m := readManifest(t, dir, res.RecoveryPoint)
	if m.Metadata == nil || len(m.Partitions) != 0 {
		t.Errorf("default task recovery point: metadata %v, %d partitions; want metadata only", m.Metadata, len(m.Partitions))
	}
	mustKbr(t, time.Minute, "task", "lock", name)
	mustKbr(t, time.Minute, "task", "delete", name)
}
