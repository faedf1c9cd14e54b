package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/lock"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/storage"
	_ "github.com/kbr-project/kbr/storage/localdir"
)

func testConfig() config.Backup {
	c := config.Backup{
		Cluster: config.Cluster{Name: "c1", BootstrapServers: []string{"127.0.0.1:9092"}},
		Target:  storage.Target{Type: "LocalDir", Path: "/backups"},
	}
	c.Options.Parallelism = 2
	return c
}

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(BackupWorkflow, workflow.RegisterOptions{Name: names.BackupWorkflow})
	env.RegisterWorkflowWithOptions(RestoreWorkflow, workflow.RegisterOptions{Name: names.RestoreWorkflow})
	env.RegisterActivity(&activities.Activities{})
	// The cluster lock: the request goes out and the grant comes back.
	env.OnActivity(a.RequestClusterLock, mock.Anything, mock.Anything).Return(nil)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(names.SignalLockReply, lock.Reply{Granted: true}) }, time.Millisecond)
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, mock.Anything, names.SignalLockRelease, mock.Anything).Return(nil)
	return env
}

// A run refused by the cluster lock (its task already running, or the
// queue full) fails with that reason before any preflight.
func TestBackupWorkflowRefusedByLock(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(BackupWorkflow, workflow.RegisterOptions{Name: names.BackupWorkflow})
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.RequestClusterLock, mock.Anything, mock.Anything).Return(nil)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(names.SignalLockReply, lock.Reply{Position: 1, Holder: "backup of task other"})
	}, time.Millisecond)
	env.RegisterDelayedCallback(func() {
		v, _ := env.QueryWorkflow(names.QueryProgress)
		var p Progress
		v.Get(&p)
		if !strings.Contains(p.Waiting, "backup of task other") {
			t.Errorf("while queued, progress says %q", p.Waiting)
		}
		env.SignalWorkflow(names.SignalLockReply, lock.Reply{Refused: "task c1 is already running (x)"})
	}, time.Second)
	preflight := false
	env.OnActivity(a.Preflight, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.PreflightInput) (*activities.PreflightReport, error) {
		preflight = true
		return nil, errors.New("unexpected")
	})
	env.ExecuteWorkflow(names.BackupWorkflow, testConfig())
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("got %v, want the lock's refusal", err)
	}
	if preflight {
		t.Error("preflight ran without the cluster lock")
	}
}

// The backup runs the MRS steps in order, skips empty partitions without an
// activity, and writes a manifest that lists every partition.
func TestBackupWorkflowWritesManifestLast(t *testing.T) {
	env := newEnv(t)
	// Mocked activities run on the test environment's goroutines.
	var mu sync.Mutex
	var order []string
	step := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	rep := &activities.PreflightReport{KafkaVersion: "3.9", TaskDir: "c1_20260101T000000Z", ClusterID: "cid",
		Topics: []activities.TopicRef{{Name: "a", Partitions: 3}, {Name: "b", Partitions: 1}}}
	env.OnActivity(a.Preflight, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.PreflightInput) (*activities.PreflightReport, error) {
		step("preflight")
		return rep, nil
	})
	env.OnActivity(a.SnapshotMetadata, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SnapshotInput) (*backupset.FileEntry, error) {
		step("metadata")
		return &backupset.FileEntry{Name: in.TaskDir + "/meta.tar.gz", Size: 10, SHA256: "x"}, nil
	})
	env.OnActivity(a.SnapshotOffsets, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SnapshotInput) (*backupset.FileEntry, error) {
		step("offsets")
		return &backupset.FileEntry{Name: in.TaskDir + "/offsets.json", Size: 5, SHA256: "y"}, nil
	})
	env.OnActivity(a.CutOffsets, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CutInput) ([]activities.PartitionRange, error) {
		step("cut")
		return []activities.PartitionRange{
			{Topic: "a", Partition: 0, Start: 0, End: 10}, {Topic: "a", Partition: 1, Start: 5, End: 5},
			{Topic: "a", Partition: 2, Start: 0, End: 3}, {Topic: "b", Partition: 0, Start: 2, End: 4},
		}, nil
	})
	exported := 0
	env.OnActivity(a.ExportPartition, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ExportInput) (*activities.ExportProgress, error) {
		mu.Lock()
		exported++
		mu.Unlock()
		step("export")
		seg := backupset.SegmentInfo{Name: in.Dir + "/" + in.Range.Topic, Size: 100, Records: in.Range.End - in.Range.Start}
		return &activities.ExportProgress{NextOffset: in.Range.End, Segments: []backupset.SegmentInfo{seg}, Records: seg.Records, Bytes: 100}, nil
	})
	var written *backupset.Manifest
	env.OnActivity(a.WriteManifest, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ManifestInput) (string, error) {
		step("manifest")
		written = in.Manifest
		return "c1_20260101T000000Z/3.9_manifest_x.json", nil
	})

	env.ExecuteWorkflow(names.BackupWorkflow, testConfig())
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("workflow: completed=%v err=%v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	if exported != 3 {
		t.Errorf("export activities: got %d, want 3 (the empty partition needs none)", exported)
	}
	if order[len(order)-1] != "manifest" || order[0] != "preflight" {
		t.Errorf("step order %v: want preflight first and manifest last", order)
	}
	if written == nil || len(written.Partitions) != 4 || written.Metadata == nil || written.Offsets == nil {
		t.Fatalf("manifest: %+v", written)
	}
	if got := written.Partition("a", 1); got == nil || got.StartOffset != 5 || got.EndOffset != 5 || len(got.Segments) != 0 {
		t.Errorf("empty partition in manifest: %+v", got)
	}
	var res BackupResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Totals.Records != 15 || res.Totals.Files != 5 {
		t.Errorf("result %+v (%v), want 15 records in 5 files", res, err)
	}
	v, err := env.QueryWorkflow(names.QueryProgress)
	if err != nil {
		t.Fatal(err)
	}
	var p Progress
	if err := v.Get(&p); err != nil || p.Status != names.StatusSucceeded || p.PartitionsDone != 4 {
		t.Errorf("progress %+v (%v)", p, err)
	}
}

// A failed export fails the backup and no manifest is written: a recovery
// point without all its data must not exist.
func TestBackupWorkflowNoManifestAfterFailedExport(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(a.Preflight, mock.Anything, mock.Anything).Return(&activities.PreflightReport{KafkaVersion: "3.9", TaskDir: "d",
		Topics: []activities.TopicRef{{Name: "a", Partitions: 2}}}, nil)
	env.OnActivity(a.SnapshotMetadata, mock.Anything, mock.Anything).Return(&backupset.FileEntry{Name: "d/m"}, nil)
	env.OnActivity(a.SnapshotOffsets, mock.Anything, mock.Anything).Return(&backupset.FileEntry{Name: "d/o"}, nil)
	env.OnActivity(a.CutOffsets, mock.Anything, mock.Anything).Return([]activities.PartitionRange{
		{Topic: "a", Partition: 0, End: 10}, {Topic: "a", Partition: 1, End: 10}}, nil)
	env.OnActivity(a.ExportPartition, mock.Anything, mock.Anything).Return(nil, errors.New("disk on fire"))
	manifest := false
	env.OnActivity(a.WriteManifest, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.ManifestInput) (string, error) {
		manifest = true
		return "", nil
	})
	env.ExecuteWorkflow(names.BackupWorkflow, testConfig())
	if env.GetWorkflowError() == nil {
		t.Fatal("backup succeeded with a failed export")
	}
	if manifest {
		t.Error("manifest written after a failed export")
	}
}

// Bad config fails the workflow at once, before any activity.
func TestBackupWorkflowRefusesBadConfig(t *testing.T) {
	env := newEnv(t)
	cfg := testConfig()
	cfg.Cluster.BootstrapServers = nil
	env.ExecuteWorkflow(names.BackupWorkflow, cfg)
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "cluster.bootstrap_servers") {
		t.Fatalf("got %v, want an error naming cluster.bootstrap_servers", err)
	}
}

// Group offsets translate through each partition's offset map, including
// partitions with no records; topics not restored are left out.
func TestTranslateGroups(t *testing.T) {
	prep := activities.PrepareResult{GroupOffsets: map[string][]activities.GroupOffset{
		"g": {{Topic: "a", Partition: 0, Offset: 7}, {Topic: "a", Partition: 1, Offset: 0}, {Topic: "gone", Partition: 0, Offset: 3}},
	}}
	results := []activities.RestorePartitionResult{
		{Plan: activities.PartitionPlan{SourceTopic: "a", TargetTopic: "a2", Partition: 0}, Translated: map[string]int64{"7": 4}},
		{Plan: activities.PartitionPlan{SourceTopic: "a", TargetTopic: "a2", Partition: 1}, Translated: map[string]int64{"0": 0}},
	}
	got := translateGroups(prep, results)
	if got["g"]["a2"][0] != 4 || got["g"]["a2"][1] != 0 || len(got["g"]) != 1 {
		t.Errorf("got %v, want g: a2[0]=4 a2[1]=0 only", got)
	}
}

// The committed histories of real backups replay on today's workflow code:
// a change that would break running backups fails here. backup_history.json
// is refreshed by the e2e round trip with KBR_UPDATE_HISTORY=1;
// backup_history_remote_steps.json is a run from before the short steps
// became local activities.
func TestReplayBackupHistory(t *testing.T) {
	for _, f := range []string{"testdata/backup_history.json", "testdata/backup_history_remote_steps.json"} {
		r := worker.NewWorkflowReplayer()
		r.RegisterWorkflowWithOptions(BackupWorkflow, workflow.RegisterOptions{Name: names.BackupWorkflow})
		if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
			t.Errorf("replay %s: %v", f, err)
		}
	}
}
