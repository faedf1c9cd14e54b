package exporter

import (
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/kbr-project/kbr/internal/metrics"
	"github.com/kbr-project/kbr/internal/metrics/metricstest"
)

// sdkTags are the tags the Temporal SDK puts on a workflow's handler.
var sdkTags = map[string]string{"namespace": "default", "client_name": "temporal_go", "worker_type": "WorkflowWorker",
	"workflow_type": "BackupWorkflow", "activity_type": "none", "task_queue": "kbr"}

func scrape(t *testing.T, srv *Server) metricstest.Scrape {
	t.Helper()
	s, err := metricstest.Get("http://" + srv.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitFor scrapes until cond holds (values reach the registry every
// ReportInterval).
func waitFor(t *testing.T, srv *Server, what string, cond func(metricstest.Scrape) bool) metricstest.Scrape {
	t.Helper()
	deadline := time.Now().Add(10 * ReportInterval)
	for {
		s := scrape(t, srv)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen in a scrape within %s", what, 10*ReportInterval)
		}
		time.Sleep(ReportInterval / 4)
	}
}

// kbr's metrics keep their own labels whatever tags the SDK put on the
// handler they were emitted through, so the series of a name line up from
// every call site (and the tally reporter never drops one for a label set
// that differs from the first it saw); the SDK's own names pass through
// with the SDK's tags.
func TestOwnLabelsAndValues(t *testing.T) {
	reg := New(nil)
	defer reg.Close()
	srv, err := Serve("127.0.0.1:0", reg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	h := reg.Handler().WithTags(sdkTags)
	run := metrics.Run{Kind: "backup", Cluster: "prod-a", Task: "orders.hourly"}
	metrics.StepStarted(h, run, "export partitions")
	metrics.StepEnded(h, run, "export partitions", metrics.OutcomeDone, 3*time.Second)
	metrics.SetProgress(h, run, metrics.Progress{BytesDone: 10, BytesPlanned: 20, RecordsDone: 3, RecordsPlanned: 6, PartitionsDone: 1, PartitionsPlanned: 2})
	metrics.Moved(h, run, 10, 3, 0)
	metrics.Moved(h, run, 5, 2, 1)
	metrics.RunEnded(h, run, "succeeded", time.Minute)
	at := time.Unix(1_800_000_000, 0)
	metrics.BackupSucceeded(h, "prod-a", "orders.hourly", at)
	// The seed at a worker's start: no SDK tags at all, the same series.
	metrics.BackupSucceeded(reg.Handler(), "prod-b", "t2", at.Add(-time.Hour))
	metrics.RetentionDeleted(h, "prod-a", "orders.hourly", 2, 7, 1000)
	act := reg.Handler().WithTags(sdkTags).WithTags(map[string]string{"activity_type": "ExportPartition", "worker_type": "ActivityWorker"})
	metrics.ActivityRetried(act)
	metrics.ActivityRetried(act)
	h.Counter("temporal_request").Inc(1) // an SDK metric

	s := waitFor(t, srv, "every metric", func(s metricstest.Scrape) bool {
		v1, _ := s.Value(metrics.ActivityRetries)
		v2, _ := s.Value("temporal_request_total")
		v3, _ := s.Value(metrics.LastBackupSuccess, "task", "t2")
		return v1 == 2 && v2 == 1 && v3 > 0
	})
	for name, spec := range metrics.Specs {
		got := s.LabelNames(name)
		if got == nil {
			continue
		}
		want := slices.Clone(spec.Labels)
		sort.Strings(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: labels %v, want %v", name, got, want)
		}
	}
	check := func(name string, want float64, match ...string) {
		t.Helper()
		if got, ok := s.Value(name, match...); !ok || got != want {
			t.Errorf("%s%v = %v (present %v), want %v", name, match, got, ok, want)
		}
	}
	check(metrics.StepsStarted, 1, "kind", "backup", "cluster", "prod-a", "task", "orders.hourly", "step", "export partitions")
	check(metrics.StepDuration, 1, "step", "export partitions", "outcome", "done")
	check(metrics.BytesDone, 10, "task", "orders.hourly")
	check(metrics.PartitionsPlanned, 2, "task", "orders.hourly")
	check(metrics.Bytes, 15, "kind", "backup")
	check(metrics.Records, 5, "kind", "backup")
	check(metrics.RecordsLost, 1, "kind", "backup")
	check(metrics.Runs, 1, "outcome", "succeeded")
	check(metrics.RunDuration, 1, "outcome", "succeeded")
	check(metrics.LastBackupSuccess, float64(at.Unix()), "cluster", "prod-a", "task", "orders.hourly")
	check(metrics.LastBackupSuccess, float64(at.Add(-time.Hour).Unix()), "cluster", "prod-b", "task", "t2")
	check(metrics.RetentionDeletedRecoveryPoints, 2, "task", "orders.hourly")
	check(metrics.RetentionDeletedBytes, 1000, "task", "orders.hourly")
	check(metrics.ActivityRetries, 2, "activity_type", "ExportPartition")
	check("temporal_request_total", 1, "namespace", "default", "workflow_type", "BackupWorkflow")
	if v, _ := s.Value(metrics.RegisterErrors); v != 0 {
		t.Errorf("%s = %v, want 0", metrics.RegisterErrors, v)
	}
	if sum := s.Series(metrics.StepDuration, "outcome", "done")[0].Sum; sum != 3 {
		t.Errorf("step duration sum %v s, want 3", sum)
	}
	if _, ok := s.Value("go_goroutines"); !ok {
		t.Error("no Go runtime metrics")
	}
}
