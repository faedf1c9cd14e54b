package workflows

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/lock"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/internal/restoreplan"
	"github.com/kbr-project/kbr/storage"
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
	env.RegisterWorkflowWithOptions(ExportWorkflow, workflow.RegisterOptions{Name: names.ExportWorkflow})
	env.RegisterWorkflowWithOptions(ImportWorkflow, workflow.RegisterOptions{Name: names.ImportWorkflow})
	env.RegisterWorkflowWithOptions(VerifyWorkflow, workflow.RegisterOptions{Name: names.VerifyWorkflow})
	env.RegisterWorkflowWithOptions(SchemasRestoreWorkflow, workflow.RegisterOptions{Name: names.SchemasRestoreWorkflow})
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
	env.OnActivity(a.BackupPreflight, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.PreflightInput) (*activities.PreflightReport, error) {
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

type backupMocks struct {
	mu       sync.Mutex
	order    []string
	units    map[int]int // unit -> export attempts
	manifest *backupset.Manifest
	lost     map[int]bool
	fail     error // every export fails with it
}

func (m *backupMocks) step(s string) { m.mu.Lock(); m.order = append(m.order, s); m.mu.Unlock() }

// mockBackup mocks a backup's activities with n work units.
func mockBackup(env *testsuite.TestWorkflowEnvironment, n int) *backupMocks {
	m := &backupMocks{units: map[int]int{}, lost: map[int]bool{}}
	rep := &activities.PreflightReport{KafkaVersion: "3.9", TaskDir: "c1_20260101T000000Z", ClusterID: "cid", TopicCount: 2, Partitions: 4}
	env.OnActivity(a.BackupPreflight, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.PreflightInput) (*activities.PreflightReport, error) {
		m.step("preflight")
		return rep, nil
	})
	env.OnActivity(a.SnapshotMetadata, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SnapshotInput) (*backupset.FileEntry, error) {
		m.step("metadata")
		return &backupset.FileEntry{Name: in.TaskDir + "/meta.tar.gz", Size: 10, SHA256: "x"}, nil
	})
	env.OnActivity(a.SnapshotOffsets, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SnapshotInput) (*backupset.FileEntry, error) {
		m.step("offsets")
		return &backupset.FileEntry{Name: in.TaskDir + "/offsets.json", Size: 5, SHA256: "y"}, nil
	})
	env.OnActivity(a.PlanExport, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PlanExportInput) (*activities.ExportPlan, error) {
		m.step("plan")
		p := &activities.ExportPlan{Topics: 2}
		for i := 0; i < n; i++ {
			p.Units = append(p.Units, activities.UnitRef{Unit: i, Plan: fmt.Sprintf("%s/plan/%05d.json", in.Dir, i), Partitions: 3, Offsets: 30})
			p.Partitions += 3
			p.Offsets += 30
		}
		return p, nil
	})
	env.OnActivity(a.ExportUnit, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ExportUnitInput) (*activities.UnitResult, error) {
		m.mu.Lock()
		m.units[in.Unit.Unit]++
		lost, fail := m.lost[in.Unit.Unit], m.fail
		m.mu.Unlock()
		if fail != nil {
			return nil, fail
		}
		r := &activities.UnitResult{Unit: in.Unit.Unit, Part: backupset.PartRef{FileEntry: backupset.FileEntry{Name: fmt.Sprintf("part-%d", in.Unit.Unit), Size: 1},
			Unit: in.Unit.Unit, Partitions: 3, Records: 30, Bytes: 300, Files: 1}}
		if lost {
			r.LostPartitions, r.LostRanges, r.LostOffsets, r.LostExamples = 1, 1, 7, []string{"a[0] offsets 3..9"}
		}
		return r, nil
	})
	env.OnActivity(a.WriteIndex, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.IndexInput) (string, error) {
		m.step("manifest")
		m.mu.Lock()
		m.manifest = in.Manifest
		m.mu.Unlock()
		return backupset.ManifestName(in.Manifest.TaskDir, in.Manifest.KafkaVersion, in.Manifest.ExecutedAt), nil
	})
	return m
}

// The backup runs the MRS steps in order, its units in child workflows of
// UnitsPerChild units (one continuing as new when its history grows), and
// writes the manifest last, listing every unit's part in unit order.
func TestBackupWorkflowUnitsInChildren(t *testing.T) {
	defer func(u, e int) { UnitsPerChild, DefaultMaxEvents = u, e }(UnitsPerChild, DefaultMaxEvents)
	UnitsPerChild, DefaultMaxEvents = 10, 40
	env := newEnv(t)
	m := mockBackup(env, 25)
	env.ExecuteWorkflow(names.BackupWorkflow, testConfig())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res BackupResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m.order, ","); got != "preflight,metadata,offsets,plan,manifest" {
		t.Errorf("steps ran %s", got)
	}
	if len(m.units) != 25 {
		t.Fatalf("%d units exported, want 25", len(m.units))
	}
	for u, n := range m.units {
		if n != 1 {
			t.Errorf("unit %d exported %d times", u, n)
		}
	}
	if len(m.manifest.Parts) != 25 {
		t.Fatalf("manifest lists %d parts", len(m.manifest.Parts))
	}
	for i, p := range m.manifest.Parts {
		if p.Unit != i || p.Name != fmt.Sprintf("part-%d", i) {
			t.Fatalf("part %d is %+v: not in unit order", i, p)
		}
	}
	if m.manifest.Metadata == nil || m.manifest.Offsets == nil || m.manifest.Format != backupset.FormatVersion {
		t.Errorf("manifest %+v", m.manifest)
	}
	if res.Units != 25 || res.Lost != nil {
		t.Errorf("result %+v", res)
	}
	v, err := env.QueryWorkflow(names.QueryProgress)
	if err != nil {
		t.Fatal(err)
	}
	var p Progress
	if err := v.Get(&p); err != nil {
		t.Fatal(err)
	}
	if p.UnitsDone != 25 || p.PartitionsDone != 75 || p.RecordsDone != 750 || p.BytesDone != 7500 || p.Status != names.StatusSucceeded {
		t.Errorf("progress after the run: %+v", p)
	}
}

// Records deleted by retention before the export read them make the run's
// outcome records-lost, named in the result; with fail_on_lost_records the
// run fails and writes no manifest.
func TestBackupWorkflowRecordsLost(t *testing.T) {
	env := newEnv(t)
	m := mockBackup(env, 3)
	m.lost[1] = true
	env.ExecuteWorkflow(names.BackupWorkflow, testConfig())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res BackupResult
	_ = env.GetWorkflowResult(&res)
	if res.Lost == nil || res.Lost.Offsets != 7 || res.Lost.Partitions != 1 || !strings.Contains(strings.Join(res.Lost.Examples, ""), "a[0] offsets 3..9") {
		t.Fatalf("result lost %+v", res.Lost)
	}
	v, _ := env.QueryWorkflow(names.QueryProgress)
	var p Progress
	_ = v.Get(&p)
	if p.Status != names.StatusRecordsLost || p.RecordsLost != 7 {
		t.Errorf("status %q, records lost %d", p.Status, p.RecordsLost)
	}

	env = newEnv(t)
	m = mockBackup(env, 3)
	m.lost[2] = true
	cfg := testConfig()
	cfg.Options.FailOnLostRecords = true
	env.ExecuteWorkflow(names.BackupWorkflow, cfg)
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "records lost") || !strings.Contains(err.Error(), "fail_on_lost_records") {
		t.Fatalf("with fail_on_lost_records: %v", err)
	}
	if m.manifest != nil {
		t.Error("a manifest was written for a run that failed on lost records")
	}
}

// A failed unit fails the export step, and no manifest is written.
func TestBackupWorkflowNoManifestAfterFailedUnit(t *testing.T) {
	env := newEnv(t)
	m := mockBackup(env, 4)
	m.fail = temporal.NewNonRetryableApplicationError("topic deleted", names.ErrTopicGone, nil)
	env.ExecuteWorkflow(names.BackupWorkflow, testConfig())
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), StepExport) || !strings.Contains(err.Error(), "topic deleted") {
		t.Fatalf("got %v, want the export step's failure", err)
	}
	if m.manifest != nil {
		t.Error("manifest written after a failed unit")
	}
}

// Bad config fails the workflow at its first step, before any activity.
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

// A restore verifies in shares, prepares, restores its units in children,
// sets retention back and unpins what it read, in that order.
func TestRestoreWorkflowSteps(t *testing.T) {
	defer func(u int) { UnitsPerChild = u }(UnitsPerChild)
	UnitsPerChild = 4
	env := newEnv(t)
	var mu sync.Mutex
	var order []string
	step := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	rp := "t_20260101T000000Z/3.9_manifest_20260101T010000Z.json"
	env.OnActivity(a.ResolveName, mock.Anything, mock.Anything).Return(rp, nil)
	env.OnActivity(a.PinRecoveryPoint, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PinInput) error {
		step("pin " + in.Manifest)
		return nil
	})
	env.OnActivity(a.UnpinRecoveryPoint, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PinInput) error {
		step("unpin")
		return nil
	})
	var refs []activities.VerifyRef
	for i := 0; i < 20; i++ {
		refs = append(refs, activities.VerifyRef{Manifest: rp, Part: i - 1})
	}
	env.OnActivity(a.PlanVerify, mock.Anything, mock.Anything).Return(&activities.VerifyPlan{Manifest: rp, Chain: []string{rp}, Refs: refs,
		Summary: &activities.RecoveryPoint{Task: "t", Records: 100}}, nil)
	verified := 0
	env.OnActivity(a.VerifyFiles, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.VerifyFilesInput) (*activities.VerifyResult, error) {
		mu.Lock()
		verified += len(in.Refs)
		mu.Unlock()
		return &activities.VerifyResult{Files: len(in.Refs)}, nil
	})
	var units []restoreplan.UnitRef
	for i := 0; i < 9; i++ {
		units = append(units, restoreplan.UnitRef{Index: i, Part: i, Partitions: 2, Records: 10})
	}
	env.OnActivity(a.PrepareImport, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PrepareInput) (*activities.PrepareResult, error) {
		step("prepare")
		return &activities.PrepareResult{Units: units, TopicCount: 1, Partitions: 18, Records: 90, Groups: 1,
			Offsets: &backupset.FileEntry{Name: "o"}}, nil
	})
	imported := map[int]int{}
	env.OnActivity(a.ImportUnit, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ImportUnitInput) (*activities.ImportUnitResult, error) {
		mu.Lock()
		imported[in.Unit.Index]++
		mu.Unlock()
		return &activities.ImportUnitResult{Index: in.Unit.Index, Partitions: 2, Records: 10, Produced: 10, Groups: 1}, nil
	})
	env.OnActivity(a.FinishImport, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.FinishInput) (*activities.FinishResult, error) {
		step("finish")
		return &activities.FinishResult{Topics: 1}, nil
	})
	cfg := config.Restore{Cluster: config.Cluster{Name: "dst", BootstrapServers: []string{"127.0.0.1:1"}},
		Source: config.Source{Target: storage.Target{Type: "LocalDir", Path: "/b"}, RecoveryPoint: "latest"}}
	env.ExecuteWorkflow(names.RestoreWorkflow, cfg)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res RestoreResult
	_ = env.GetWorkflowResult(&res)
	if got := strings.Join(order, ","); got != "pin "+rp+",prepare,finish,unpin" {
		t.Errorf("steps ran %s", got)
	}
	if verified != 20 || len(imported) != 9 {
		t.Errorf("verified %d refs (want 20), imported %d units (want 9)", verified, len(imported))
	}
	if res.Records != 90 || res.Partitions != 18 || res.GroupsCommitted != 9 || res.RecoveryPoint != rp {
		t.Errorf("result %+v", res)
	}
}

// A damaged file fails the verify step naming it, before anything is created.
func TestRestoreWorkflowRefusesDamaged(t *testing.T) {
	env := newEnv(t)
	rp := "t_20260101T000000Z/3.9_manifest_20260101T010000Z.json"
	env.OnActivity(a.ResolveName, mock.Anything, mock.Anything).Return(rp, nil)
	env.OnActivity(a.PinRecoveryPoint, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(a.PlanVerify, mock.Anything, mock.Anything).Return(&activities.VerifyPlan{Manifest: rp, Chain: []string{rp},
		Refs: []activities.VerifyRef{{Manifest: rp, Part: -1}}, Summary: &activities.RecoveryPoint{}}, nil)
	env.OnActivity(a.VerifyFiles, mock.Anything, mock.Anything).Return(&activities.VerifyResult{Files: 3, Damaged: []string{"x/p.pack: sha256 aa, manifest says bb"}}, nil)
	prepared := false
	env.OnActivity(a.PrepareImport, mock.Anything, mock.Anything).Return(func(context.Context, activities.PrepareInput) (*activities.PrepareResult, error) {
		prepared = true
		return nil, errors.New("unexpected")
	})
	cfg := config.Restore{Cluster: config.Cluster{Name: "dst", BootstrapServers: []string{"127.0.0.1:1"}},
		Source: config.Source{Target: storage.Target{Type: "LocalDir", Path: "/b"}, RecoveryPoint: rp}}
	env.ExecuteWorkflow(names.RestoreWorkflow, cfg)
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "x/p.pack") || !strings.Contains(err.Error(), StepVerify) {
		t.Fatalf("got %v", err)
	}
	if prepared {
		t.Error("topics prepared after a damaged verify")
	}
}

// The committed histories of real runs replay on today's workflow code: a
// change that would break running workflows fails here. The _v1 ones are
// runs from before format 2 (one activity per partition), which replay on
// the kept v1 code; backup_history.json, export_history.json,
// restore_history.json and import_history.json are refreshed by the e2e
// round trip with KBR_UPDATE_HISTORY=1.
func TestReplayHistories(t *testing.T) {
	for _, c := range []struct {
		file, name string
		fn         any
	}{
		{"testdata/backup_history_v1.json", names.BackupWorkflow, BackupWorkflow},
		{"testdata/backup_history_v1_remote_steps.json", names.BackupWorkflow, BackupWorkflow},
		{"testdata/backup_history.json", names.BackupWorkflow, BackupWorkflow},
		{"testdata/export_history.json", names.ExportWorkflow, ExportWorkflow},
		{"testdata/restore_history.json", names.RestoreWorkflow, RestoreWorkflow},
		{"testdata/import_history.json", names.ImportWorkflow, ImportWorkflow},
	} {
		r := worker.NewWorkflowReplayer()
		r.RegisterWorkflowWithOptions(c.fn, workflow.RegisterOptions{Name: c.name})
		f, err := os.Open(c.file)
		if err != nil {
			t.Fatal(err)
		}
		hist, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		// Children are named after the run's own id: replay under it.
		var exec workflow.Execution
		for _, ev := range hist.Events {
			if a := ev.GetStartChildWorkflowExecutionInitiatedEventAttributes(); a != nil {
				exec.ID, _, _ = strings.Cut(a.GetWorkflowId(), "/units-")
				break
			}
		}
		if err := r.ReplayWorkflowHistoryWithOptions(nil, hist, worker.ReplayWorkflowHistoryOptions{OriginalExecution: exec}); err != nil {
			t.Errorf("replay %s: %v", c.file, err)
		}
	}
}
