package workflows

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/hostops"
	"github.com/kbr-project/kbr/internal/kmeta"
	"github.com/kbr-project/kbr/internal/lock"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/storage"
)

func metaInput() MetadataRestoreInput {
	return MetadataRestoreInput{MetadataRestore: config.MetadataRestore{
		Cluster: config.Cluster{Name: "c1", BootstrapServers: []string{"127.0.0.1:9092"},
			ZooKeeper: &config.ZooKeeper{Connect: []string{"127.0.0.1:2181"}, Chroot: "/kafka"}},
		Source:  config.Source{Target: storage.Target{Type: "LocalDir", Path: "/backups"}, RecoveryPoint: "latest"},
		Brokers: []config.BrokerHost{{ID: 1, Host: "h1"}, {ID: 2, Host: "h2"}},
	}}
}

// calls records the activities a run executed, in order.
type calls struct {
	mu sync.Mutex
	l  []string
}

func (c *calls) add(s string) { c.mu.Lock(); c.l = append(c.l, s); c.mu.Unlock() }
func (c *calls) has(s string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.l {
		if strings.HasPrefix(x, s) {
			return true
		}
	}
	return false
}

// metaEnv mocks every activity of a metadata restore; pingVersion is what
// the agents report, pingErr (for host h2) makes its agent missing.
func metaEnv(t *testing.T, c *calls, pingVersion string, pingErr error) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(MetadataRestoreWorkflow, workflow.RegisterOptions{Name: names.MetadataRestoreWorkflow})
	env.RegisterActivity(&activities.Activities{})
	env.RegisterActivity(&activities.Agent{})
	env.OnActivity(a.RequestClusterLock, mock.Anything, mock.Anything).Return(nil)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(names.SignalLockReply, lock.Reply{Granted: true}) }, time.Millisecond)
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, mock.Anything, names.SignalLockRelease, mock.Anything).Return(nil)
	env.OnActivity(a.ResolveName, mock.Anything, mock.Anything).Return("t_1/3.9_manifest_1.json", nil)
	env.OnActivity(a.ResolveRecoveryPoint, mock.Anything, mock.Anything).Return(&activities.RecoveryPoint{Manifest: "t_1/3.9_manifest_1.json", KafkaVersion: "3.9"}, nil)
	env.OnActivity(a.MetadataPreflight, mock.Anything, mock.Anything).Return(&activities.MetaPreflight{BackupVersion: "3.9", BackupClusterID: "CID", LiveError: "down"}, nil)
	env.OnActivity(ag.Ping, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AgentRequest) (*activities.AgentPing, error) {
		c.add("ping " + in.Host)
		if in.Host == "h2" && pingErr != nil {
			return nil, pingErr
		}
		return &activities.AgentPing{Host: in.Host, KafkaVersion: pingVersion}, nil
	})
	env.OnActivity(a.SafetyBackup, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.SafetyBackupInput) (*activities.SafetyBackupResult, error) {
		c.add("safety")
		return &activities.SafetyBackupResult{RecoveryPoint: "safe"}, nil
	})
	env.OnActivity(ag.StopKafka, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AgentRequest) (*hostops.StopResult, error) {
		c.add("stop " + in.Host)
		return &hostops.StopResult{}, nil
	})
	env.OnActivity(a.RestoreZnodes, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.RestoreZnodesInput) (*activities.RestoreZnodesResult, error) {
		c.add("znodes")
		return &activities.RestoreZnodesResult{ClusterID: "CID"}, nil
	})
	env.OnActivity(ag.FixClusterID, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.FixClusterIDInput) (*activities.FixClusterIDResult, error) {
		c.add("fix " + in.Host + " " + in.ClusterID)
		return &activities.FixClusterIDResult{Host: in.Host}, nil
	})
	env.OnActivity(ag.StartKafka, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AgentRequest) (*hostops.StartResult, error) {
		c.add("start " + in.Host)
		return &hostops.StartResult{}, nil
	})
	env.OnActivity(a.WaitClusterHealthy, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.WaitHealthyInput) (*activities.ClusterHealth, error) {
		c.add("healthy")
		return &activities.ClusterHealth{Brokers: []int32{1, 2}}, nil
	})
	return env
}

func TestMetadataRestoreSteps(t *testing.T) {
	c := &calls{}
	env := metaEnv(t, c, "3.9.1", nil)
	env.ExecuteWorkflow(names.MetadataRestoreWorkflow, metaInput())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var rep MetaRestoreReport
	if err := env.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"safety", "stop h1", "stop h2", "znodes", "fix h1 CID", "fix h2 CID", "start h1", "start h2", "healthy"} {
		if !c.has(s) {
			t.Errorf("%s did not run (calls %v)", s, c.l)
		}
	}
	if rep.ClusterID != "CID" || rep.SafetyBackup.RecoveryPoint != "safe" || len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], "rolled back") {
		t.Errorf("report = %+v", rep)
	}
}

// TestMetadataRestoreResume guards the retry rule: the steps a failed run
// completed are not repeated, the others run.
func TestMetadataRestoreResume(t *testing.T) {
	c := &calls{}
	env := metaEnv(t, c, "3.9.1", nil)
	in := metaInput()
	in.Resume = &MetaResume{FromRunID: "run-1",
		Done: []string{StepPreflight, StepSafetyBackup, StepStopKafka, StepRestoreZnodes, StepFixClusterID},
		State: MetaRestoreReport{RecoveryPoint: &activities.RecoveryPoint{Manifest: "m"}, ClusterID: "CID",
			SafetyBackup: &activities.SafetyBackupResult{RecoveryPoint: "safe"}}}
	env.ExecuteWorkflow(names.MetadataRestoreWorkflow, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"ping", "safety", "stop", "znodes", "fix"} {
		if c.has(s) {
			t.Errorf("%s ran again in the resumed run (calls %v)", s, c.l)
		}
	}
	if !c.has("start h1") || !c.has("healthy") {
		t.Errorf("the remaining steps did not run: %v", c.l)
	}
	v, err := env.QueryWorkflow(names.QueryProgress)
	if err != nil {
		t.Fatal(err)
	}
	var p Progress
	if err := v.Get(&p); err != nil {
		t.Fatal(err)
	}
	// Every step, in order: a loop over an empty list passed.
	var names []string
	for _, s := range p.Steps {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != strings.Join(MetaRestoreSteps, ",") {
		t.Errorf("steps %v, want %v", names, MetaRestoreSteps)
	}
	for _, s := range p.Steps {
		if s.Status != "done" {
			t.Errorf("step %s: %s", s.Name, s.Status)
		}
	}
}

func TestMetadataRestoreRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, version string
		pingErr       error
		want          string
	}{
		{"missing agent", "3.9.1", temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START, nil), "no agent answered for host h2"},
		{"version mismatch", "3.8.0", nil, "has Kafka 3.8.0 installed, the backup was taken from Kafka 3.9"},
		{"version unknown", "", nil, "cannot tell the cluster's Kafka version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &calls{}
			env := metaEnv(t, c, tc.version, tc.pingErr)
			env.ExecuteWorkflow(names.MetadataRestoreWorkflow, metaInput())
			err := env.GetWorkflowError()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if c.has("safety") || c.has("stop") {
				t.Errorf("something ran after a refused preflight: %v", c.l)
			}
		})
	}
}

// TestReplayMetadataRestoreHistory replays two real runs of one restore
// (the e2e retry test's failed run and its resumed retry, refreshed with
// KBR_UPDATE_HISTORY=1), so a change that
// breaks running restores fails here.
func TestReplayMetadataRestoreHistory(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(MetadataRestoreWorkflow, workflow.RegisterOptions{Name: names.MetadataRestoreWorkflow})
	for _, f := range []string{"testdata/metarestore_failed_history.json", "testdata/metarestore_retry_history.json"} {
		if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
			t.Fatalf("replay %s: %v", f, err)
		}
	}
}

// A dry run plans and stops: nothing is created, no lock is taken.
func TestLogicalRestoreDryRun(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(LogicalRestoreWorkflow, workflow.RegisterOptions{Name: names.LogicalRestoreWorkflow})
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.ResolveName, mock.Anything, mock.Anything).Return("m", nil)
	env.OnActivity(a.ResolveRecoveryPoint, mock.Anything, mock.Anything).Return(&activities.RecoveryPoint{Manifest: "m"}, nil)
	env.OnActivity(a.PlanLogicalRestore, mock.Anything, mock.Anything).Return(&activities.LogicalPlan{
		Topics: []activities.PlannedTopic{{Action: "create"}}}, nil)
	created := false
	env.OnActivity(a.CreatePlannedTopics, mock.Anything, mock.Anything).Return(func(context.Context, activities.LogicalApplyInput) ([]kmeta.TopicResult, error) {
		created = true
		return nil, nil
	})
	cfg := config.LogicalRestore{Cluster: config.Cluster{Name: "k", BootstrapServers: []string{"127.0.0.1:9092"}},
		Source: config.Source{Target: storage.Target{Type: "LocalDir", Path: "/b"}, RecoveryPoint: "latest"}, DryRun: true}
	env.ExecuteWorkflow(names.LogicalRestoreWorkflow, cfg)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res LogicalRestoreResult
	if err := env.GetWorkflowResult(&res); err != nil || !res.DryRun || len(res.Plan.Topics) != 1 {
		t.Errorf("result %+v, %v", res, err)
	}
	if created {
		t.Error("a dry run created topics")
	}
}

// A resume that claims a completed preflight without its results is
// refused rather than run with an empty cluster id.
func TestMetadataRestoreBadResume(t *testing.T) {
	c := &calls{}
	env := metaEnv(t, c, "3.9.1", nil)
	in := metaInput()
	in.Resume = &MetaResume{Done: []string{StepPreflight}}
	env.ExecuteWorkflow(names.MetadataRestoreWorkflow, in)
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "holds no recovery point") {
		t.Fatalf("got %v", err)
	}
	if c.has("safety") || c.has("stop") {
		t.Errorf("ran %v", c.l)
	}
}
