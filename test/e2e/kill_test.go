package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/api/enums/v1"
	sdkclient "go.temporal.io/sdk/client"

	"github.com/kbr-project/kbr/internal/kbatch"
	"github.com/kbr-project/kbr/internal/kdata"
	"github.com/kbr-project/kbr/internal/metrics"
	"github.com/kbr-project/kbr/internal/metrics/metricstest"
	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/storage/localdir"
	"github.com/kbr-project/kbr/workflows"
)

// SIGKILL the worker five times at random moments in the middle of the
// export (one work unit of four partitions) and start a new one each time:
// the backup completes from its checkpoints and holds exactly the source's
// records. Guards against lost or duplicated packs on resume.
func TestWorkerKilledDuringExport(t *testing.T) {
	env := testenv.Load(t)
	topic, want, target, id := startThrottledBackup(t, env)
	c := temporalClient(t)

	// Each kill waits until the unit has committed a pack more than before
	// (the attempt that runs since the last restart made progress) and then
	// a random moment, so that the kills land inside the unit's work, not
	// between attempts.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	packs := 1
	for k := 0; k < 5; k++ {
		waitSegments(t, c, id, packs+1, target)
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		packs = countPacks(target)
		h.stopWorker(syscall.SIGKILL)
		time.Sleep(time.Second)
		h.startWorker()
	}
	res := waitBackup(t, c, id)
	t.Logf("%s: completed after five kills; attempts %v", id, activityAttempts(t, c, id))

	// Some export resumed on a later attempt: the kill really interrupted it.
	if !resumed(t, c, id, "ExportUnit") {
		t.Errorf("no ExportUnit ran more than one attempt: the kill did not interrupt an export (attempts: %v)", activityAttempts(t, c, id))
	}
	// The new worker ran the retried attempt: its metrics count it.
	if s, err := metricstest.Get("http://" + h.metrics + "/metrics"); err != nil {
		t.Errorf("scrape the worker: %v", err)
	} else if v, _ := s.Value(metrics.ActivityRetries); v < 1 {
		t.Errorf("%s = %v after an export was retried, want at least 1", metrics.ActivityRetries, v)
	}
	checkBackupEqualsSource(t, target, res, topic, want)
}

// Stop `kbr server` (Ctrl-C) in the middle of a backup and start it again
// on the same data dir: the backup resumes and completes exactly.
func TestServerRestartResumesBackup(t *testing.T) {
	env := testenv.Load(t)
	topic, want, target, id := startThrottledBackup(t, env)
	c := temporalClient(t)
	waitSegments(t, c, id, 2, target)
	h.stopServer(syscall.SIGINT)
	time.Sleep(time.Second)
	if err := h.startServer(); err != nil {
		t.Fatal(err)
	}
	c2 := temporalClient(t)
	res := waitBackup(t, c2, id)
	checkBackupEqualsSource(t, target, res, topic, want)
}

func temporalClient(t *testing.T) sdkclient.Client {
	t.Helper()
	c, err := sdkclient.Dial(sdkclient.Options{HostPort: h.address})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// waitSegments waits until the backup has committed n pack files on the
// LocalDir target (durable checkpoints: a retried unit resumes after the
// packs its heartbeats named).
func waitSegments(t *testing.T, c sdkclient.Client, id string, n int, target string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for countPacks(target) < n {
		if time.Now().After(deadline) {
			t.Fatal("the export never reached a checkpoint")
		}
		if d, err := c.DescribeWorkflowExecution(context.Background(), id, ""); err == nil &&
			d.GetWorkflowExecutionInfo().GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			err := c.GetWorkflow(context.Background(), id, "").Get(context.Background(), nil)
			t.Fatalf("%s ended (%s) before its export reached a checkpoint: %v", id, d.GetWorkflowExecutionInfo().GetStatus(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// countPacks counts the committed pack files under a LocalDir target.
func countPacks(target string) int {
	n := 0
	filepath.WalkDir(target, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".pack") {
			n++
		}
		return nil
	})
	return n
}

func waitBackup(t *testing.T, c sdkclient.Client, id string) workflows.BackupResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var res workflows.BackupResult
	if err := c.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
		t.Fatalf("backup %s: %v", id, err)
	}
	return res
}

// startThrottledBackup fills a topic and starts a slow backup of it.
func startThrottledBackup(t *testing.T, env testenv.Env) (topic string, want map[int32][]rec, target, workflowID string) {
	t.Helper()
	topic = "e2e-" + randID() + "-kill"
	// Uncompressed: the throttle counts the bytes fetched, which the
	// producers' compression would make a fraction of the records'.
	cl := client(t, env.ZKModeBootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(10*time.Millisecond), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(256<<10))
	createTopic(t, kadm.NewClient(cl), topic, 4, 3, nil)
	value := make([]byte, 4000)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	var rs []*kgo.Record
	for i := 0; i < 6000; i++ { // ~24 MB, 6 MB per partition
		rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i % 4), Key: []byte(fmt.Sprintf("key-%06d", i)), Value: value,
			Headers: []kgo.RecordHeader{{Key: "n", Value: []byte(fmt.Sprint(i))}}})
	}
	produceSync(t, cl, rs...)
	want = readAll(t, env.ZKModeBootstrap, topic)

	target = filepath.Join(t.TempDir(), "backups")
	cfg := writeFile(t, "backup.yaml", `
cluster:
  name: zkmode
  bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`
task: kill-`+randID()+`
data_sources: [topicdata]
topics: {include: ["`+topic+`"]}
target: {type: LocalDir, path: `+target+`}
options:
  parallelism: 2
  min_free_bytes: 1GiB
  segment_bytes: 1MiB
  compression: none
  throttle_bytes_per_second: 1MiB
`)
	r := kbr(t, time.Minute, "backup", "run", "-f", cfg, "--detach", "--json")
	if r.code != 0 {
		t.Fatalf("start backup: exit %d: %s", r.code, r.stderr)
	}
	var started struct {
		WorkflowID string `json:"workflow_id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &started); err != nil {
		t.Fatalf("--detach --json: %v: %s", err, r.stdout)
	}
	return topic, want, target, started.WorkflowID
}

// checkBackupEqualsSource reads every segment of the recovery point and
// compares it with the source, and checks nothing else is on the target.
func checkBackupEqualsSource(t *testing.T, target string, res workflows.BackupResult, topic string, want map[int32][]rec) {
	t.Helper()
	ctx := context.Background()
	b, err := localdir.New(target)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := loadView(t, target, res.RecoveryPoint)
	m := v.Manifest
	got := map[int32][]rec{}
	for _, p := range m.Partitions {
		got[p.Partition] = []rec{}
		err := kdata.Records(ctx, b, p, func(r kbatch.Record) error {
			got[p.Partition] = append(got[p.Partition], rec{Offset: r.Offset, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp})
			return nil
		})
		if err != nil {
			t.Fatalf("read %s[%d]: %v", p.Topic, p.Partition, err)
		}
	}
	// A backup keeps each record's offset: compare them too (compareTopic
	// ignores offsets, which a restore renumbers).
	compareTopic(t, topic, want, got)
	sameOffsets(t, topic, want, got)
	for _, p := range m.Partitions {
		ws := want[p.Partition]
		if len(ws) > 0 && (p.StartOffset > ws[0].Offset || p.EndOffset <= ws[len(ws)-1].Offset) {
			t.Errorf("%s[%d]: manifest range [%d, %d) does not hold the source's offsets %d..%d", topic, p.Partition, p.StartOffset, p.EndOffset, ws[0].Offset, ws[len(ws)-1].Offset)
		}
	}
	for p, rs := range got {
		for i := 1; i < len(rs); i++ {
			if rs[i].Offset <= rs[i-1].Offset {
				t.Fatalf("partition %d: offset %d after %d: duplicated or reordered on resume", p, rs[i].Offset, rs[i-1].Offset)
			}
		}
	}
	// Nothing but the recovery point's files is left on the target.
	listed, _ := b.List(ctx, "")
	if len(listed) != m.Totals.Files+1 {
		var names []string
		for _, f := range listed {
			names = append(names, f.Name)
		}
		t.Errorf("target holds %d files, manifest lists %d (+1 manifest): %s", len(listed), m.Totals.Files, strings.Join(names, "\n"))
	}
}

// resumed reports whether an activity of one of the given types ran an
// attempt > 1. It used to count any retried activity (a preflight retried
// over a slow broker passed it), not the exports the kill interrupted.
func resumed(t *testing.T, c sdkclient.Client, id string, types ...string) bool {
	t.Helper()
	return resumedIn(t, c, id, types...)
}

// sameOffsets checks that got holds each record of want at its offset.
func sameOffsets(t *testing.T, topic string, want, got map[int32][]rec) {
	t.Helper()
	for p, ws := range want {
		gs := got[p]
		for i := range ws {
			if i >= len(gs) {
				break // compareTopic reports the count
			}
			if gs[i].Offset != ws[i].Offset {
				t.Errorf("%s[%d] record %d: offset %d, want %d", topic, p, i, gs[i].Offset, ws[i].Offset)
				break
			}
		}
	}
}
