package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporaltest"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/embedded"
	"github.com/kbr-project/kbr/internal/errtext"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/workflows"
)

// The in-process tests call the run<Command> functions against Temporal's
// test server, with stand-ins for kbr's workflows registered under their
// names on kbr's task queue: what a stand-in does is chosen by its input
// (the task or cluster name of the config), so the CLI's side — start,
// follow, print, exit code — is what is tested.

func TestMain(m *testing.M) {
	config.UseStorage(storageRegistry)
	code := m.Run()
	if srv.ts != nil {
		srv.w.Stop()
		srv.ts.Stop()
	}
	os.Exit(code)
}

var srv struct {
	once sync.Once
	ts   *temporaltest.TestServer
	w    worker.Worker
	conn connOpts
	err  error
}

// testConn starts the shared test server (once) and returns the flags that
// reach it.
func testConn(t *testing.T) connOpts {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Temporal's test server")
	}
	srv.once.Do(func() {
		srv.ts = temporaltest.NewServer()
		cl := srv.ts.GetDefaultClient()
		ns := srv.ts.GetDefaultNamespace()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if srv.err = embedded.RegisterSearchAttributes(ctx, cl, ns); srv.err != nil {
			return
		}
		srv.w = worker.New(cl, names.TaskQueue, worker.Options{})
		reg := func(fn any, name string) {
			srv.w.RegisterWorkflowWithOptions(fn, workflow.RegisterOptions{Name: name})
		}
		reg(fakeBackup, names.BackupWorkflow)
		reg(fakeRestore, names.RestoreWorkflow)
		reg(fakeMetadataRestore, names.MetadataRestoreWorkflow)
		reg(fakeLogicalRestore, names.LogicalRestoreWorkflow)
		reg(fakeVerify, names.VerifyWorkflow)
		srv.err = srv.w.Start()
		srv.conn = connOpts{address: srv.ts.GetFrontendHostPort(), namespace: ns, dialTimeout: 30 * time.Second}
	})
	if srv.err != nil {
		t.Fatalf("test server: %v", srv.err)
	}
	return srv.conn
}

// captured is what a command wrote.
type captured struct{ out, err bytes.Buffer }

func (c *captured) streams() streams { return streams{out: &c.out, err: &c.err} }

// progressOf answers the progress query as kbr's workflows do.
func progressOf(ctx workflow.Context, p *workflows.Progress) error {
	return workflow.SetQueryHandler(ctx, names.QueryProgress, func() (workflows.Progress, error) { return *p, nil })
}

// The stand-in backup: cfg.Task says how it ends.
const (
	taskLost = "lost-records" // completes with records lost
	taskFail = "export-fails" // fails at the export step
)

var testLost = backupset.LostSummary{Partitions: 2, Ranges: 7, Offsets: 130,
	Examples: []string{"orders[0] offsets 0..99", "orders[3] offsets 10..19", "audit[1] offsets 5..9", "audit[1] offsets 20..24", "audit[1] offsets 40..44"}}

func fakeBackup(ctx workflow.Context, cfg config.Backup) (*workflows.BackupResult, error) {
	p := workflows.Progress{Kind: names.KindBackup, Cluster: cfg.Cluster.Name, Task: cfg.Task, Status: names.StatusSucceeded,
		Steps: []workflows.Step{{Name: workflows.StepPreflight, Status: "done"}, {Name: workflows.StepExport, Status: "done"}}}
	if err := progressOf(ctx, &p); err != nil {
		return nil, err
	}
	res := &workflows.BackupResult{RecoveryPoint: cfg.Task + "_20261122T100000Z/3.9.1_manifest_20261122T100000Z.json",
		TaskDir: cfg.Task + "_20261122T100000Z", Kind: "full", Totals: backupset.Totals{Files: 4, Bytes: 4096, Records: 1000}}
	switch cfg.Task {
	case taskFail:
		p.Status, p.Steps[1].Status = names.StatusFailed, "failed"
		return nil, temporal.NewNonRetryableApplicationError("export partitions: export orders[3]: broker 127.0.0.1:9 unreachable", "KafkaUnreachable", nil)
	case taskLost:
		lost := testLost
		res.Lost = &lost
		p.Status = names.StatusRecordsLost
	}
	return res, nil
}

// The stand-in data restore fails the first time after fixing a plan (in
// its memo, as RestoreWorkflow does) and succeeds when resumed with it.
func fakeRestore(ctx workflow.Context, cfg config.Restore) (*workflows.RestoreResult, error) {
	p := workflows.Progress{Kind: names.KindRestore, Steps: []workflows.Step{{Name: "restore partitions", Status: "running"}}}
	if err := progressOf(ctx, &p); err != nil {
		return nil, err
	}
	if cfg.Resume == nil {
		plan := config.RestoreResume{FromRunID: workflow.GetInfo(ctx).WorkflowExecution.RunID, Manifest: "prod_20261122T100000Z/3.9.1_manifest_20261122T100000Z.json"}
		if err := workflow.UpsertMemo(ctx, map[string]any{names.MemoRestorePlan: plan}); err != nil {
			return nil, err
		}
		p.Steps[0].Status = "failed"
		return nil, temporal.NewNonRetryableApplicationError("restore partitions: produce orders[1]: NOT_ENOUGH_REPLICAS", "X", nil)
	}
	return &workflows.RestoreResult{Records: 42, RecoveryPoint: cfg.Source.RecoveryPoint + " (plan of " + cfg.Resume.FromRunID + ")"}, nil
}

// The stand-in metadata restore completes "preflight" and then fails, the
// first time; resumed, it says what it was given.
func fakeMetadataRestore(ctx workflow.Context, in workflows.MetadataRestoreInput) (*workflows.MetaRestoreReport, error) {
	p := workflows.Progress{Kind: names.KindMetadataRestore, Steps: []workflows.Step{{Name: "preflight", Status: "done"}, {Name: "stop kafka", Status: "failed"}}}
	if err := progressOf(ctx, &p); err != nil {
		return nil, err
	}
	if in.Resume == nil {
		done := workflows.MetaResume{Done: []string{"preflight"}, State: workflows.MetaRestoreReport{RecoveryPoint: &activities.RecoveryPoint{Manifest: "resolved/manifest.json"}}}
		if err := workflow.UpsertMemo(ctx, map[string]any{names.MemoResume: done}); err != nil {
			return nil, err
		}
		return nil, temporal.NewNonRetryableApplicationError("stop kafka: zk2: agent kbr-agent-zk2 did not answer", "X", nil)
	}
	return &workflows.MetaRestoreReport{RecoveryPoint: &activities.RecoveryPoint{Manifest: in.Source.RecoveryPoint}, ClusterID: "abc",
		Health: &activities.ClusterHealth{}, Notes: []string{fmt.Sprintf("resumed from run %s after %v", in.Resume.FromRunID, in.Resume.Done)}}, nil
}

func fakeLogicalRestore(ctx workflow.Context, cfg config.LogicalRestore) (*workflows.LogicalRestoreResult, error) {
	res := &workflows.LogicalRestoreResult{DryRun: cfg.DryRun, RecoveryPoint: "prod_20261122T100000Z/4.1.1_manifest_20261122T100000Z.json"}
	res.Plan.Notes = []string{"dry run"}
	return res, nil
}

func fakeVerify(ctx workflow.Context, in activities.VerifyInput) (*activities.RecoveryPoint, error) {
	if strings.HasSuffix(in.Source.RecoveryPoint, "T120000Z.json") {
		return nil, temporal.NewNonRetryableApplicationError("verify: "+in.Source.RecoveryPoint+": SHA-256 mismatch", "X", nil)
	}
	return &activities.RecoveryPoint{Manifest: in.Source.RecoveryPoint, Files: 3, Bytes: 300}, nil
}

// exitOf is the exit code and the one line main prints for err.
func exitOf(err error) (int, string) {
	if err == nil {
		return exitOK, ""
	}
	return exitCode(err), "kbr: " + errtext.Line(err)
}

// checkExit fails unless err ends the process with want, in one line.
func checkExit(t *testing.T, what string, err error, want int) string {
	t.Helper()
	code, line := exitOf(err)
	if code != want {
		t.Errorf("%s: exit %d (%s), want %d", what, code, line, want)
	}
	if strings.Contains(line, "\n") {
		t.Errorf("%s: the error is not one line: %q", what, line)
	}
	return line
}

// writeConfig writes a document for -f.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := t.TempDir() + "/config.yaml"
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func backupYAML(t *testing.T, task string) string {
	return writeConfig(t, fmt.Sprintf(`cluster: {name: prod, bootstrap_servers: ["127.0.0.1:9"]}
task: %s
target: {type: LocalDir, path: %s}
`, task, t.TempDir()))
}
