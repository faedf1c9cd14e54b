package workflows

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/metrics"
	"github.com/kbr-project/kbr/internal/metrics/exporter"
	"github.com/kbr-project/kbr/internal/metrics/metricstest"
	"github.com/kbr-project/kbr/internal/names"
)

// trackedRun drives the step tracker the way a backup does: two steps,
// progress, a retention, and an end with the given outcome.
func trackedRun(ctx workflow.Context, fail bool) error {
	p := Progress{Kind: "backup (full)", Cluster: "prod-a", Task: "orders", Status: names.StatusRunning}
	t := newTracker(ctx, &p, StepPreflight, StepExport, StepRetention)
	t.start(StepPreflight)
	_ = workflow.Sleep(ctx, 2*time.Second)
	t.done(StepPreflight, "ok")
	t.start(StepExport)
	p.PartitionsTotal, p.RecordsTotal, p.EstimatedBytes = 4, 1000, 8000
	p.PartitionsDone, p.RecordsDone, p.BytesDone = 1, 250, 2000
	t.details()
	p.PartitionsDone, p.RecordsDone, p.BytesDone = 4, 990, 7900
	p.RecordsLost, p.LostPartitions = 10, 1
	t.details()
	var err error
	if fail {
		err = errors.New("broker gone")
		t.fail(StepExport, err)
		p.Status = names.StatusFailed
	} else {
		t.done(StepExport, "4 partitions")
		t.start(StepRetention)
		t.pruned(activities.PruneResult{DeletedManifests: []string{"a", "b"}, DeletedFiles: 9, DeletedBytes: 4096})
		t.done(StepRetention, "kept 2")
		p.Status = names.StatusSucceeded
	}
	t.end()
	return err
}

// The tracker's metrics: steps by outcome with their workflow-time
// durations, progress gauges and totals that add only what moved, the run's
// outcome, the task's last success (a succeeded backup only) and what
// retention deleted.
func TestTrackerEmitsMetrics(t *testing.T) {
	reg := exporter.New(nil)
	defer reg.Close()
	var s testsuite.WorkflowTestSuite
	s.SetMetricsHandler(reg.Handler())
	for _, fail := range []bool{false, true} {
		env := s.NewTestWorkflowEnvironment()
		env.RegisterWorkflowWithOptions(trackedRun, workflow.RegisterOptions{Name: names.BackupWorkflow})
		env.ExecuteWorkflow(names.BackupWorkflow, fail)
		if err := env.GetWorkflowError(); (err != nil) != fail {
			t.Fatalf("fail=%v: workflow error %v", fail, err)
		}
	}
	if err := reg.Close(); err != nil { // reports what is pending
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	reg.HTTPHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	sc, err := metricstest.Parse(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	run := []string{"kind", names.KindBackup, "cluster", "prod-a", "task", "orders"}
	check := func(name string, want float64, match ...string) {
		t.Helper()
		if got, ok := sc.Value(name, append(append([]string{}, run...), match...)...); !ok || got != want {
			t.Errorf("%s%v = %v (present %v), want %v", name, match, got, ok, want)
		}
	}
	check(metrics.StepsStarted, 2, "step", StepPreflight)
	check(metrics.StepDuration, 2, "step", StepPreflight, "outcome", metrics.OutcomeDone)
	check(metrics.StepDuration, 1, "step", StepExport, "outcome", metrics.OutcomeFailed)
	check(metrics.StepDuration, 1, "step", StepExport, "outcome", metrics.OutcomeDone)
	check(metrics.Runs, 1, "outcome", names.StatusSucceeded)
	check(metrics.Runs, 1, "outcome", names.StatusFailed)
	check(metrics.PartitionsDone, 4)
	check(metrics.PartitionsPlanned, 4)
	check(metrics.RecordsPlanned, 1000)
	check(metrics.LostPartitions, 1)
	check(metrics.Records, 2*990) // two runs, each counted once
	check(metrics.Bytes, 2*7900)
	check(metrics.RecordsLost, 2*10)
	if ss := sc.Series(metrics.StepDuration, "step", StepPreflight); len(ss) != 1 || ss[0].Sum != 4 {
		t.Errorf("preflight durations %+v, want two of 2 s (workflow time)", ss)
	}
	if v, ok := sc.Value(metrics.LastBackupSuccess, "cluster", "prod-a", "task", "orders"); !ok || v <= 0 {
		t.Errorf("last success %v (present %v), want the succeeded run's time", v, ok)
	}
	if v, _ := sc.Value(metrics.RetentionDeletedRecoveryPoints, "task", "orders"); v != 2 {
		t.Errorf("retention deleted %v recovery points, want 2", v)
	}
	if v, _ := sc.Value(metrics.RetentionDeletedBytes, "task", "orders"); v != 4096 {
		t.Errorf("retention deleted %v bytes, want 4096", v)
	}
}
