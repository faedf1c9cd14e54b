package e2e

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	sdkclient "go.temporal.io/sdk/client"

	"github.com/kbr-project/kbr/internal/metrics"
	"github.com/kbr-project/kbr/internal/metrics/metricstest"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/workflows"
)

// The worker's /metrics during a real backup: the run's progress gauges and
// totals move while it exports, its steps are counted, the run's outcome and
// the task's last-success time appear when it ends, and the Temporal SDK's
// own worker metrics are there. Guards against metrics that exist by name
// but never move.
func TestWorkerMetricsMoveDuringBackup(t *testing.T) {
	env := testenv.Load(t)
	url := "http://" + h.metrics + "/metrics"
	if err := waitPort(h.metrics, time.Minute); err != nil {
		t.Fatalf("the worker's metrics: %v", err)
	}
	before, err := metricstest.Get(url)
	if err != nil {
		t.Fatalf("scrape the worker: %v", err)
	}
	id := startSlowBackup(t, env)
	c := temporalClient(t)
	task := backupTask(t, c, id)
	run := []string{metrics.LabelKind, names.KindBackup, metrics.LabelCluster, "zkmode", metrics.LabelTask, task}

	// Scrape while it runs: the records done must take at least three
	// values below the planned count before the run ends (one partition at
	// a time, each about 1.5 s).
	seen := map[float64]bool{}
	var planned float64
	deadline := time.Now().Add(3 * time.Minute)
	for {
		s, err := metricstest.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		if os.Getenv("KBR_DEBUG_METRICS") != "" {
			pv, _ := s.Value(metrics.RecordsPlanned, run...)
			dv, _ := s.Value(metrics.RecordsDone, run...)
			t.Logf("%s planned %v done %v", time.Now().Format("15:04:05.000"), pv, dv)
		}
		if v, ok := s.Value(metrics.RecordsPlanned, run...); ok && v > 0 {
			planned = v
			if done, _ := s.Value(metrics.RecordsDone, run...); done < planned {
				seen[done] = true
			}
		}
		d, err := c.DescribeWorkflowExecution(context.Background(), id, "")
		if err != nil {
			t.Fatal(err)
		}
		if d.GetWorkflowExecutionInfo().GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	waitBackup(t, c, id)
	if os.Getenv("KBR_DEBUG_METRICS") != "" {
		v, _ := c.QueryWorkflow(context.Background(), id, "", names.QueryProgress)
		var p workflows.Progress
		_ = v.Get(&p)
		for _, st := range p.Steps {
			t.Logf("step %s %s %s %s", st.Name, st.Status, st.EndedAt.Sub(st.StartedAt), st.Detail)
		}
	}
	if planned != 6000 {
		t.Errorf("%s = %v, want 6000 (the cut)", metrics.RecordsPlanned, planned)
	}
	if len(seen) < 3 {
		t.Errorf("%s took %d values below the plan while the backup ran (%v), want it to move", metrics.RecordsDone, len(seen), seen)
	}

	// After the end (values reach the registry within a second).
	var s metricstest.Scrape
	for i := 0; i < 20; i++ {
		if s, err = metricstest.Get(url); err != nil {
			t.Fatal(err)
		}
		if v, _ := s.Value(metrics.Runs, append(run, metrics.LabelOutcome, names.StatusSucceeded)...); v == 1 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	check := func(name string, want float64, match ...string) {
		t.Helper()
		if got, ok := s.Value(name, match...); !ok || got != want {
			t.Errorf("%s%v = %v (present %v), want %v", name, match, got, ok, want)
		}
	}
	check(metrics.Runs, 1, append(run, metrics.LabelOutcome, names.StatusSucceeded)...)
	check(metrics.RecordsDone, 6000, run...)
	check(metrics.PartitionsDone, 6, run...)
	check(metrics.PartitionsPlanned, 6, run...)
	check(metrics.Records, 6000, run...)
	check(metrics.StepsStarted, 1, append(run, metrics.LabelStep, "export partitions")...)
	check(metrics.StepDuration, 1, append(run, metrics.LabelStep, "export partitions", metrics.LabelOutcome, metrics.OutcomeDone)...)
	check(metrics.RunDuration, 1, append(run, metrics.LabelOutcome, names.StatusSucceeded)...)
	if v, ok := s.Value(metrics.Bytes, run...); !ok || v < 6000*1000 {
		t.Errorf("%s = %v, want at least the 6 MB of values", metrics.Bytes, v)
	}
	last, ok := s.Value(metrics.LastBackupSuccess, metrics.LabelCluster, "zkmode", metrics.LabelTask, task)
	if !ok || time.Since(time.Unix(int64(last), 0)) > 5*time.Minute {
		t.Errorf("%s for task %s = %v (present %v), want about now", metrics.LastBackupSuccess, task, last, ok)
	}
	if v, _ := s.Value(metrics.RegisterErrors); v != 0 {
		t.Errorf("%s = %v: some metric was dropped", metrics.RegisterErrors, v)
	}
	// A restarted worker seeds the last success from Temporal's list of
	// succeeded backups: an alert on its age does not go silent.
	query := fmt.Sprintf("WorkflowId = '%s' AND KbrStatus = 'succeeded'", id)
	for i := 0; ; i++ {
		resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err == nil && len(resp.GetExecutions()) == 1 {
			break
		}
		if i == 50 {
			t.Fatalf("visibility does not list %s as succeeded: %v", id, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	h.stopWorker(syscall.SIGTERM)
	h.startWorker()
	if err := waitPort(h.metrics, time.Minute); err != nil {
		t.Fatal(err)
	}
	var seeded float64
	for i := 0; i < 20 && seeded == 0; i++ {
		time.Sleep(250 * time.Millisecond)
		if sc, err := metricstest.Get(url); err == nil {
			seeded, _ = sc.Value(metrics.LastBackupSuccess, metrics.LabelCluster, "zkmode", metrics.LabelTask, task)
		}
	}
	if seeded == 0 || math.Abs(seeded-last) > 5 {
		t.Errorf("after a restart the worker shows %s = %v for task %s, want about %v (the run's close time)", metrics.LastBackupSuccess, seeded, task, last)
	}

	// The SDK's worker metrics, through the same endpoint.
	for _, name := range []string{"temporal_activity_execution_latency_seconds", "temporal_workflow_task_execution_latency_seconds", "temporal_request_total"} {
		b, _ := before.Value(name)
		a, ok := s.Value(name)
		if !ok || a <= b {
			t.Errorf("SDK metric %s: %v before, %v after (present %v): want it to grow", name, b, a, ok)
		}
	}
}

// backupTask is the task of a running backup, from its progress query.
func backupTask(t *testing.T, c sdkclient.Client, id string) string {
	t.Helper()
	v, err := c.QueryWorkflow(context.Background(), id, "", names.QueryProgress)
	if err != nil {
		t.Fatalf("query %s: %v", id, err)
	}
	var p workflows.Progress
	if err := v.Get(&p); err != nil || p.Task == "" {
		t.Fatalf("progress of %s: %v (task %q)", id, err, p.Task)
	}
	return p.Task
}

// startSlowBackup fills a topic of 6 partitions with 1,000 records of 1 kB
// each and starts a backup of it that exports one partition (one work unit)
// at a time at 1 MiB/s: its progress moves in six steps over about 6 s.
func startSlowBackup(t *testing.T, env testenv.Env) string {
	t.Helper()
	topic := "e2e-" + randID() + "-metrics"
	// Batches of 64 KiB: a fetch returns whole batches, and the throttle
	// waits between fetches, so a partition must take several.
	cl := client(t, env.ZKModeBootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(10*time.Millisecond),
		kgo.ProducerBatchMaxBytes(64<<10))
	createTopic(t, kadm.NewClient(cl), topic, 6, 3, nil)
	var rs []*kgo.Record
	for i := 0; i < 6000; i++ {
		// Random values: the producer's compression must not shrink what
		// the throttle counts.
		value := make([]byte, 1000)
		_, _ = crand.Read(value)
		rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i % 6), Key: []byte(fmt.Sprintf("key-%06d", i)), Value: value})
	}
	produceSync(t, cl, rs...)
	cfg := writeFile(t, "backup.yaml", `
cluster:
  name: zkmode
  bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`
task: metrics-`+randID()+`
data_sources: [topicdata]
topics: {include: ["`+topic+`"]}
target: {type: LocalDir, path: `+filepath.Join(t.TempDir(), "backups")+`}
options:
  parallelism: 1
  unit_partitions: 1          # six work units, one after the other: progress moves six times
  fetch_max_bytes: 256KiB     # the throttle waits between fetches: several per unit
  fetch_partition_bytes: 128KiB
  min_free_bytes: 1GiB
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
	return started.WorkflowID
}
