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
	sdkclient "go.temporal.io/sdk/client"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/kdata"
	"github.com/kbr-project/kbr/internal/metrics"
	"github.com/kbr-project/kbr/internal/metrics/metricstest"
	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/storage/localdir"
	"github.com/kbr-project/kbr/workflows"
)

// SIGKILL the worker in the middle of the export and start a new one: the
// backup completes from its checkpoints and holds exactly the source's
// records. Guards against lost or duplicated segments on resume.
func TestWorkerKilledDuringExport(t *testing.T) {
	env := testenv.Load(t)
	topic, want, target, id := startThrottledBackup(t, env)
	c := temporalClient(t)

	// Wait until a segment is durable but the export is far from done.
	waitSegments(t, c, id, 2)
	h.stopWorker(syscall.SIGKILL)
	time.Sleep(2 * time.Second)
	h.startWorker()
	res := waitBackup(t, c, id)

	// Some export resumed on a later attempt: the kill really interrupted it.
	if !resumed(t, c, id) {
		t.Error("no ExportPartition ran more than one attempt: the kill did not interrupt an export")
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
	waitSegments(t, c, id, 2)
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

func waitSegments(t *testing.T, c sdkclient.Client, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for segmentsDone(t, c, id) < n {
		if time.Now().After(deadline) {
			t.Fatal("the export never reached a checkpoint")
		}
		if d, err := c.DescribeWorkflowExecution(context.Background(), id, ""); err == nil &&
			d.GetWorkflowExecutionInfo().GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			err := c.GetWorkflow(context.Background(), id, "").Get(context.Background(), nil)
			t.Fatalf("%s ended (%s) before its export reached a checkpoint: %v", id, d.GetWorkflowExecutionInfo().GetStatus(), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
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
	cl := client(t, env.ZKModeBootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(10*time.Millisecond))
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
	data, err := os.ReadFile(filepath.Join(target, res.RecoveryPoint))
	if err != nil {
		t.Fatal(err)
	}
	m, err := backupset.UnmarshalManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int32][]rec{}
	for _, p := range m.Partitions {
		got[p.Partition] = []rec{}
		for _, s := range p.Segments {
			err := kdata.ReadSegment(ctx, b, s, m.Compression, func(r *backupset.Record) error {
				hs := make([]kgo.RecordHeader, len(r.Headers))
				for i, h := range r.Headers {
					hs[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
				}
				got[p.Partition] = append(got[p.Partition], rec{Offset: r.Offset, Key: r.Key, Value: r.Value, Headers: hs, Timestamp: r.Timestamp})
				return nil
			})
			if err != nil {
				t.Fatalf("read %s: %v", s.Name, err)
			}
		}
	}
	compareTopic(t, topic, want, got)
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

// segmentsDone counts the durable segments running exports heartbeated.
func segmentsDone(t *testing.T, c sdkclient.Client, id string) int {
	d, err := c.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		return 0
	}
	n := 0
	for _, pa := range d.GetPendingActivities() {
		if pa.GetActivityType().GetName() != "ExportPartition" || pa.GetHeartbeatDetails() == nil {
			continue
		}
		var p struct {
			Segments []json.RawMessage `json:"segments"`
		}
		if len(pa.GetHeartbeatDetails().Payloads) > 0 && json.Unmarshal(pa.GetHeartbeatDetails().Payloads[0].Data, &p) == nil {
			n += len(p.Segments)
		}
	}
	return n
}

// resumed reports whether an ExportPartition completed on attempt > 1.
func resumed(t *testing.T, c sdkclient.Client, id string) bool {
	it := c.GetWorkflowHistory(context.Background(), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && a.GetAttempt() > 1 {
			return true
		}
	}
	return false
}
