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
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/hostops"
	"github.com/kbr-project/kbr/internal/kraftlog"
	"github.com/kbr-project/kbr/internal/lock"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/storage"
)

const kraftRP = "kq_20261203T090000Z/4.1_manifest_20261203T100000Z.json"

// Nodes 1 and 2 are combined, 3 a broker.
func kraftInput() KRaftRestoreInput {
	return KRaftRestoreInput{KRaftRestore: config.KRaftRestore{
		Cluster: config.Cluster{Name: "kq", BootstrapServers: []string{"127.0.0.1:14101"}},
		Source:  config.Source{Target: storage.Target{Type: "LocalDir", Path: "/backups"}, RecoveryPoint: "latest"},
		Nodes:   []config.BrokerHost{{ID: 1, Host: "h1"}, {ID: 2, Host: "h2"}, {ID: 3, Host: "h3"}},
	}}
}

type kraftMocks struct {
	c          *calls
	version    string // the agents' Kafka version
	missing    string // a host whose agent does not answer
	damaged    bool   // the recovery point does not verify
	backedUp   []int32
	nodeID     map[string]int32 // overrides of a host's node.id
	startFails int              // start of h2 fails this many times
}

func kraftEnv(t *testing.T, m *kraftMocks) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(KRaftRestoreWorkflow, workflow.RegisterOptions{Name: names.KRaftRestoreWorkflow})
	env.RegisterActivity(&activities.Activities{})
	env.RegisterActivity(&activities.Agent{})
	env.OnActivity(a.RequestClusterLock, mock.Anything, mock.Anything).Return(nil)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(names.SignalLockReply, lock.Reply{Granted: true}) }, time.Millisecond)
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, mock.Anything, names.SignalLockRelease, mock.Anything).Return(nil)
	c := m.c
	env.OnActivity(a.ResolveName, mock.Anything, mock.Anything).Return(kraftRP, nil)
	env.OnActivity(a.ResolveRecoveryPoint, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.VerifyInput) (*activities.RecoveryPoint, error) {
		c.add("verify")
		if m.damaged {
			return nil, temporal.NewNonRetryableApplicationError("recovery point "+kraftRP+": 1 of 9 files damaged or missing:\n  - node-2/x.log: damaged", names.ErrChecksum, nil)
		}
		return &activities.RecoveryPoint{Manifest: kraftRP, Task: "kq", KafkaVersion: "4.1"}, nil
	})
	env.OnActivity(a.KRaftRestorePreflight, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.KRaftPreflightInput) (*activities.KRaftPreflight, error) {
		c.add("kraft preflight " + in.Manifest)
		p := &activities.KRaftPreflight{BackupVersion: "4.1", BackupClusterID: "ORIG", LiveError: "down", SafetyTaskDir: "kq-before-restore_20261203T110000Z"}
		for _, n := range m.backedUp {
			p.Nodes = append(p.Nodes, activities.KRaftBackedUp{Node: n, Host: "h", EndOffset: 100 + int64(n), Files: 2, Bytes: 1000})
		}
		return p, nil
	})
	env.OnActivity(ag.KRaftInspect, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AgentRequest) (*activities.KRaftNodeInfo, error) {
		c.add("inspect " + in.Host)
		if in.Host == m.missing {
			return nil, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START, nil)
		}
		id := map[string]int32{"h1": 1, "h2": 2, "h3": 3}[in.Host]
		if v, ok := m.nodeID[in.Host]; ok {
			id = v
		}
		roles := []string{"broker", "controller"}
		if in.Host == "h3" {
			roles = []string{"broker"}
		}
		return &activities.KRaftNodeInfo{Host: in.Host, KafkaVersion: m.version, Node: kraftlog.Node{NodeID: id, Roles: roles}, Disk: &hostops.DiskFree{Dir: "/m", Free: 1 << 30}}, nil
	})
	env.OnActivity(ag.CopyKRaftLog, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.KRaftCopyInput) (*backupset.KRaftNode, error) {
		c.add("safety " + in.Host)
		if !in.Whole || !strings.HasPrefix(in.Dir, "kq-before-restore_20261203T110000Z/4.1.1_kraftlog_") {
			t.Errorf("safety copy input %+v", in)
		}
		return &backupset.KRaftNode{Node: in.Node, Host: in.Host, ClusterID: "NEW", Whole: true}, nil
	})
	env.OnActivity(a.WriteIndex, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.IndexInput) (string, error) {
		c.add("safety manifest")
		if len(in.Manifest.KRaftLog) != 3 || in.Manifest.Task != "kq-before-restore" || in.Manifest.DataSources[0] != config.SourceKRaftLog {
			t.Errorf("safety manifest %+v", in.Manifest)
		}
		return backupset.ManifestName(in.Manifest.TaskDir, in.Manifest.KafkaVersion, in.Manifest.ExecutedAt), nil
	})
	env.OnActivity(ag.StopKafka, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AgentRequest) (*hostops.StopResult, error) {
		c.add("stop " + in.Host)
		return &hostops.StopResult{}, nil
	})
	env.OnActivity(ag.PutKRaftLog, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.KRaftPutInput) (*activities.KRaftPutResult, error) {
		c.add("put " + in.Host + " " + map[bool]string{true: "log", false: "clear"}[in.Controller])
		return &activities.KRaftPutResult{Host: in.Host, Files: 2, Bytes: 1000, Cleared: !in.Controller}, nil
	})
	env.OnActivity(ag.FixKRaftMeta, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.KRaftFixInput) (*activities.KRaftFixResult, error) {
		c.add("fix " + in.Host + " " + in.ClusterID)
		return &activities.KRaftFixResult{Host: in.Host, Fixes: []kraftlog.MetaFix{{Dir: "/m", Status: kraftlog.FixFixed}}}, nil
	})
	env.OnActivity(ag.StartKafka, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AgentRequest) (*hostops.StartResult, error) {
		c.add("start " + in.Host)
		if in.Host == "h2" && m.startFails > 0 {
			m.startFails--
			return nil, temporal.NewNonRetryableApplicationError("host h2: command failed: start fails once, on purpose", names.ErrCommand, nil)
		}
		return &hostops.StartResult{}, nil
	})
	env.OnActivity(a.WaitKRaftHealthy, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.KRaftHealthInput) (*activities.ClusterHealth, error) {
		c.add("healthy " + in.ClusterID)
		if len(in.Brokers) != 3 {
			t.Errorf("waits for brokers %v, want all three", in.Brokers)
		}
		return &activities.ClusterHealth{ClusterID: in.ClusterID, Brokers: in.Brokers}, nil
	})
	return env
}

func index(c *calls, s string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.l {
		if x == s {
			return i
		}
	}
	return -1
}

func TestKRaftRestoreSteps(t *testing.T) {
	m := &kraftMocks{c: &calls{}, version: "4.1.1", backedUp: []int32{1, 2}}
	env := kraftEnv(t, m)
	env.ExecuteWorkflow(names.KRaftRestoreWorkflow, kraftInput())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var rep KRaftRestoreReport
	if err := env.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	c := m.c
	for _, s := range []string{"kraft preflight " + kraftRP, "safety h1", "safety h2", "safety h3", "safety manifest", "stop h1", "stop h2", "stop h3",
		"put h1 log", "put h2 log", "put h3 clear", "fix h1 ORIG", "fix h3 ORIG", "start h1", "start h3", "healthy ORIG"} {
		if !c.has(s) {
			t.Errorf("%s did not run (calls %v)", s, c.l)
		}
	}
	// The broker stops before the controllers; the safety copy is written
	// before anything stops; nothing is put in place before every stop.
	if index(c, "stop h3") > index(c, "stop h1") || index(c, "safety manifest") > index(c, "stop h3") || index(c, "put h1 log") < index(c, "stop h1") {
		t.Errorf("order: %v", c.l)
	}
	if rep.ClusterID != "ORIG" || rep.SafetyBackup == nil || rep.SafetyBackup.Nodes != 3 || len(rep.Controllers) != 2 || len(rep.Brokers) != 3 {
		t.Errorf("report %+v", rep)
	}
	notes := strings.Join(rep.Notes, " ")
	for _, want := range []string{"offset 102", "metadata written after it is lost", "original topic ids", "SCRAM", rep.SafetyBackup.RecoveryPoint} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes %q lack %q", notes, want)
		}
	}
}

func TestKRaftRestoreRefusals(t *testing.T) {
	for _, c := range []struct {
		name string
		m    *kraftMocks
		want []string
	}{
		{"version mismatch", &kraftMocks{version: "3.9.1", backedUp: []int32{1, 2}}, []string{"node 1 (host h1) has Kafka 3.9.1 installed, the backup was taken from Kafka 4.1"}},
		{"missing agent", &kraftMocks{version: "4.1.1", backedUp: []int32{1, 2}, missing: "h2"}, []string{"node 2: no agent answered for host h2 within 15s"}},
		{"damaged recovery point", &kraftMocks{version: "4.1.1", backedUp: []int32{1, 2}, damaged: true}, []string{"damaged or missing", "node-2/x.log"}},
		{"controller not backed up", &kraftMocks{version: "4.1.1", backedUp: []int32{1}}, []string{"node 2 (host h2) is a controller, but the recovery point holds no metadata log of node 2"}},
		{"backed-up node not listed", &kraftMocks{version: "4.1.1", backedUp: []int32{1, 2, 7}}, []string{"node 7"}},
		{"wrong node id", &kraftMocks{version: "4.1.1", backedUp: []int32{1, 2}, nodeID: map[string]int32{"h1": 5}}, []string{"node 1 (host h1): its server.properties says node.id=5"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.m.c = &calls{}
			env := kraftEnv(t, c.m)
			env.ExecuteWorkflow(names.KRaftRestoreWorkflow, kraftInput())
			err := env.GetWorkflowError()
			if err == nil || !strings.Contains(err.Error(), "refused before anything was stopped") {
				t.Fatalf("got %v, want a refusal", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal %q lacks %q", err, w)
				}
			}
			for _, s := range []string{"safety", "stop", "put", "fix", "start"} {
				if c.m.c.has(s) {
					t.Errorf("%s ran after a refusal (calls %v)", s, c.m.c.l)
				}
			}
		})
	}
}

// A failed start, resumed: the steps the first run completed are not run
// again, and their results carry over.
func TestKRaftRestoreResume(t *testing.T) {
	m := &kraftMocks{c: &calls{}, version: "4.1.1", backedUp: []int32{1, 2}, startFails: 1}
	env := kraftEnv(t, m)
	env.ExecuteWorkflow(names.KRaftRestoreWorkflow, kraftInput())
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), StepStartKafka) || !strings.Contains(err.Error(), "on purpose") {
		t.Fatalf("first run: %v", err)
	}
	// What the memo would hold: the steps before the start.
	in := kraftInput()
	in.Source.RecoveryPoint = kraftRP
	in.Resume = &KRaftResume{FromRunID: "run-1", Done: KRaftRestoreSteps[:5], State: KRaftRestoreReport{
		RecoveryPoint: &activities.RecoveryPoint{Manifest: kraftRP, Task: "kq"}, ClusterID: "ORIG", KafkaVersion: "4.1.1",
		Preflight:   &activities.KRaftPreflight{BackupClusterID: "ORIG", Nodes: []activities.KRaftBackedUp{{Node: 1, EndOffset: 101}, {Node: 2, EndOffset: 102}}},
		Controllers: []int32{1, 2}, Brokers: []int32{1, 2, 3}, SafetyBackup: &KRaftSafetyBackup{RecoveryPoint: "safe"}}}
	m2 := &kraftMocks{c: &calls{}, version: "4.1.1", backedUp: []int32{1, 2}}
	env = kraftEnv(t, m2)
	env.ExecuteWorkflow(names.KRaftRestoreWorkflow, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var rep KRaftRestoreReport
	_ = env.GetWorkflowResult(&rep)
	for _, s := range []string{"verify", "kraft preflight", "inspect", "safety", "stop", "put", "fix"} {
		if m2.c.has(s) {
			t.Errorf("the retry ran %s again (calls %v)", s, m2.c.l)
		}
	}
	if !m2.c.has("start h2") || !m2.c.has("healthy ORIG") || rep.ResumedFrom != "run-1" || rep.SafetyBackup.RecoveryPoint != "safe" {
		t.Errorf("calls %v, report %+v", m2.c.l, rep)
	}
}

func kraftBackupConfig() config.Backup {
	c := testConfig()
	c.DataSources = []string{config.SourceMetadata, config.SourceKRaftLog}
	c.Cluster.Controllers = []config.BrokerHost{{ID: 2, Host: "c2"}, {ID: 1, Host: "c1"}}
	return c
}

// The kraft_log data source: every controller's agent copies its log into
// the recovery point's kraftlog folder, and the manifest lists them by node.
func TestBackupKRaftLog(t *testing.T) {
	env := newEnv(t)
	env.RegisterActivity(&activities.Agent{})
	m := mockBackup(env, 0)
	var (
		mu   sync.Mutex // the controllers' copies run at once
		dirs []string
	)
	env.OnActivity(ag.CopyKRaftLog, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.KRaftCopyInput) (*backupset.KRaftNode, error) {
		m.step("kraft " + in.Host)
		mu.Lock()
		dirs = append(dirs, in.Dir)
		mu.Unlock()
		return &backupset.KRaftNode{Node: in.Node, Host: in.Host, ClusterID: "cid", EndOffset: 50, Files: []backupset.KRaftFile{{FileEntry: backupset.FileEntry{Name: in.Dir + "/00000000000000000000.log", Size: 9}, Kind: "segment"}}}, nil
	})
	env.ExecuteWorkflow(names.BackupWorkflow, kraftBackupConfig())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m.order, ","); got != "preflight,metadata,kraft c2,kraft c1,manifest" && got != "preflight,metadata,kraft c1,kraft c2,manifest" {
		t.Errorf("steps ran %s", got)
	}
	if len(m.manifest.KRaftLog) != 2 || m.manifest.KRaftLog[0].Node != 1 || m.manifest.KRaftLog[1].Node != 2 {
		t.Fatalf("manifest kraft_log %+v", m.manifest.KRaftLog)
	}
	for _, d := range dirs {
		if !strings.HasPrefix(d, "c1_20260101T000000Z/3.9_kraftlog_") || !(strings.HasSuffix(d, "/node-1") || strings.HasSuffix(d, "/node-2")) {
			t.Errorf("copied into %s", d)
		}
	}
	// A controller of another cluster, or one whose agent is missing,
	// fails the step and no manifest is written.
	env = newEnv(t)
	env.RegisterActivity(&activities.Agent{})
	m = mockBackup(env, 0)
	env.OnActivity(ag.CopyKRaftLog, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.KRaftCopyInput) (*backupset.KRaftNode, error) {
		return &backupset.KRaftNode{Node: in.Node, ClusterID: "other"}, nil
	})
	env.ExecuteWorkflow(names.BackupWorkflow, kraftBackupConfig())
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), StepKRaftLog) || !strings.Contains(err.Error(), "cluster.id=other") {
		t.Errorf("another cluster's controller: %v", err)
	}
	if m.manifest != nil {
		t.Error("manifest written after a failed copy")
	}
}
