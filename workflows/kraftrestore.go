package workflows

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/hostops"
	"github.com/kbr-project/kbr/internal/kmeta"
	"github.com/kbr-project/kbr/internal/kraftlog"
	"github.com/kbr-project/kbr/internal/names"
)

// KRaft metadata restore steps (those it shares with the ZooKeeper one keep
// their names).
const (
	StepRestoreKRaftLog = "restore metadata log"
	StepFixMeta         = "fix meta.properties"
)

// KRaftRestoreSteps lists the steps of a KRaft metadata restore in order.
var KRaftRestoreSteps = []string{StepPreflight, StepSafetyBackup, StepStopKafka, StepRestoreKRaftLog,
	StepFixMeta, StepStartKafka, StepWaitHealthy, StepReport}

// KRaftRestoreInput is the input of KRaftRestoreWorkflow: the document of
// `kbr restore kraft -f` (its fields at the top level) and, for a retry,
// what the failed run completed.
type KRaftRestoreInput struct {
	config.KRaftRestore
	Resume *KRaftResume `json:"resume,omitempty"`
}

// KRaftResume is what a failed run completed; a run given it skips those
// steps and reuses their results.
type KRaftResume struct {
	FromRunID string             `json:"from_run_id,omitempty"`
	Done      []string           `json:"done"`
	State     KRaftRestoreReport `json:"state"`
}

// KRaftAgentReport is one node's agent as the preflight found it.
type KRaftAgentReport struct {
	NodeID int32                     `json:"node_id"`
	Info   *activities.KRaftNodeInfo `json:"info"`
}

// KRaftSafetyBackup names the safety copy of the metadata logs.
type KRaftSafetyBackup struct {
	RecoveryPoint string `json:"recovery_point"`
	Nodes         int    `json:"nodes"`
	Files         int    `json:"files"`
	Bytes         int64  `json:"bytes"`
}

// KRaftRestoreReport is the report of a KRaft metadata restore, filled step
// by step; it is also the state a retry resumes from.
type KRaftRestoreReport struct {
	RecoveryPoint *activities.RecoveryPoint  `json:"recovery_point,omitempty"`
	ExecutedAt    time.Time                  `json:"executed_at"`
	Preflight     *activities.KRaftPreflight `json:"preflight,omitempty"`
	Agents        []KRaftAgentReport         `json:"agents,omitempty"`
	KafkaVersion  string                     `json:"kafka_version,omitempty"`
	ClusterID     string                     `json:"cluster_id,omitempty"`
	// Controllers and Brokers are the node ids with each role (a combined
	// node is in both), as the agents read process.roles.
	Controllers  []int32                         `json:"controllers,omitempty"`
	Brokers      []int32                         `json:"brokers,omitempty"`
	SafetyBackup *KRaftSafetyBackup              `json:"safety_backup,omitempty"`
	Stopped      map[string]*hostops.StopResult  `json:"stopped,omitempty"`
	Restored     []activities.KRaftPutResult     `json:"restored,omitempty"`
	MetaFixes    []activities.KRaftFixResult     `json:"meta_fixes,omitempty"`
	Started      map[string]*hostops.StartResult `json:"started,omitempty"`
	Health       *activities.ClusterHealth       `json:"health,omitempty"`
	ResumedFrom  string                          `json:"resumed_from,omitempty"`
	Notes        []string                        `json:"notes,omitempty"`
}

// KRaftRestoreWorkflow restores a KRaft cluster's metadata the MRS way,
// from the controllers' metadata logs in a recovery point (the kraft_log
// data source): preflight (the recovery point verifies, every node's agent
// answers, the Kafka versions match, every controller has its log in the
// recovery point — before anything is stopped), a safety copy of the
// current metadata logs, stop every node, put the backed-up snapshot and
// log in place on every controller (and clear the brokers' copies), make
// cluster.id and the directory ids in every meta.properties agree with it,
// start, wait until every broker is registered and no partition is offline
// or under-replicated, report. Topics come back with their topic ids, so
// the data on the brokers' disks is served again; SCRAM credentials, ACLs,
// configs and quotas come back with the metadata. Like the ZooKeeper one,
// its workflow id is the restore id, and a failed run is resumed with `kbr
// restore retry`, the completed steps not repeated.
func KRaftRestoreWorkflow(ctx workflow.Context, in KRaftRestoreInput) (*KRaftRestoreReport, error) {
	w := &kraftRestore{in: in}
	if err := w.setup(ctx); err != nil {
		return nil, err
	}
	rep, err := w.run(ctx)
	w.p.Status = names.StatusSucceeded
	if err != nil {
		w.p.Status = names.StatusFailed
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, names.SAStatus.ValueSet(w.p.Status))
	w.t.end()
	return rep, err
}

type kraftRestore struct {
	*resumable
	in  KRaftRestoreInput
	cfg config.KRaftRestore
	p   Progress
	t   *tracker
	rep KRaftRestoreReport
}

func (w *kraftRestore) setup(ctx workflow.Context) error {
	w.cfg = w.in.KRaftRestore
	w.cfg.ApplyDefaults()
	w.p = Progress{Kind: "KRaft metadata restore", Cluster: w.cfg.Cluster.Name, Status: names.StatusRunning}
	w.t = newTracker(ctx, &w.p, KRaftRestoreSteps...)
	var fromRun string
	var done []string
	if r := w.in.Resume; r != nil {
		w.rep = r.State
		fromRun, done = r.FromRunID, r.Done
		w.rep.ResumedFrom = r.FromRunID
	}
	w.resumable = newResumable(w.t, KRaftRestoreSteps, fromRun, done, func(run string, done []string) any {
		// The memo keeps what later steps need, not the agents' reports and
		// command outputs, so it stays small.
		st := w.rep
		st.Agents, st.Stopped, st.Started, st.Restored, st.MetaFixes = nil, nil, nil, nil, nil
		return KRaftResume{FromRunID: run, Done: done, State: st}
	})
	if err := workflow.SetQueryHandler(ctx, names.QueryProgress, func() (Progress, error) {
		p := w.p
		p.Report = w.rep
		return p, nil
	}); err != nil {
		return err
	}
	sas := []temporal.SearchAttributeUpdate{names.SACluster.ValueSet(w.cfg.Cluster.Name),
		names.SAKind.ValueSet(names.KindKRaftRestore), names.SAStatus.ValueSet(names.StatusRunning)}
	// A retry skips the preflight that announced the recovery point: say
	// it again, so a prune keeps it while the retry reads it.
	if rp := w.rep.RecoveryPoint; w.in.Resume != nil && rp != nil {
		sas = append(sas, names.SATask.ValueSet(rp.Task), names.SARecoveryPoint.ValueSet(rp.Manifest))
	}
	return workflow.UpsertTypedSearchAttributes(ctx, sas...)
}

func (w *kraftRestore) run(ctx workflow.Context) (*KRaftRestoreReport, error) {
	cfg := w.cfg
	if err := cfg.Validate(); err != nil {
		w.t.start(StepPreflight)
		w.t.fail(StepPreflight, err)
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), names.ErrBadInput, nil)
	}
	if w.rep.ExecutedAt.IsZero() {
		w.rep.ExecutedAt = workflow.Now(ctx).UTC().Truncate(time.Second)
	}
	// Every run takes the lock: no backup or restore of this cluster runs
	// while its nodes are down.
	w.t.start(StepPreflight)
	release, err := clusterLock(ctx, cfg.Cluster.Name, "", names.KindKRaftRestore, cfg.Cluster.LockQueue, &w.p, w.t)
	if err != nil {
		w.t.fail(StepPreflight, err)
		return nil, err
	}
	defer release()

	if err := w.step(ctx, StepPreflight, func() (string, error) { return w.preflight(ctx) }); err != nil {
		return nil, err
	}
	if w.rep.RecoveryPoint == nil || w.rep.ClusterID == "" || w.rep.Preflight == nil || len(w.rep.Controllers) == 0 {
		err := fmt.Errorf("resume: the state says preflight completed but holds no recovery point, cluster id or controllers")
		w.t.fail(StepPreflight, err)
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), names.ErrBadInput, nil)
	}
	rp := w.rep.RecoveryPoint.Manifest
	w.p.RecoveryPoint = rp
	w.p.Task = w.rep.RecoveryPoint.Task
	ctrl := map[int32]bool{}
	for _, id := range w.rep.Controllers {
		ctrl[id] = true
	}
	isBroker := map[int32]bool{}
	for _, id := range w.rep.Brokers {
		isBroker[id] = true
	}
	all := cfg.Nodes
	agentWait := max(cfg.Options.AgentTimeout.D(), time.Minute)

	if err := w.step(ctx, StepSafetyBackup, func() (string, error) { return w.safetyBackup(ctx, agentWait) }); err != nil {
		return nil, err
	}

	if err := w.step(ctx, StepStopKafka, func() (string, error) {
		// Brokers first, while the quorum is up for their controlled
		// shutdown; then the controllers and combined nodes.
		var brokersOnly, rest []config.BrokerHost
		for _, n := range all {
			if ctrl[n.ID] {
				rest = append(rest, n)
			} else {
				brokersOnly = append(brokersOnly, n)
			}
		}
		w.rep.Stopped = map[string]*hostops.StopResult{}
		for _, wave := range [][]config.BrokerHost{brokersOnly, rest} {
			err := onEveryHost(ctx, "node", wave, agentWait, cfg.Options.StopTimeout.D(), func(actx workflow.Context, n config.BrokerHost) workflow.Future {
				return workflow.ExecuteActivity(actx, ag.StopKafka, activities.AgentRequest{Host: n.Host, Timeout: cfg.Options.StopTimeout.D()})
			}, func(n config.BrokerHost, f workflow.Future) error {
				var r hostops.StopResult
				err := f.Get(ctx, &r)
				w.rep.Stopped[n.Host] = &r
				return err
			})
			if err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("%d nodes stopped", len(all)), nil
	}); err != nil {
		return nil, err
	}

	if err := w.step(ctx, StepRestoreKRaftLog, func() (string, error) {
		w.rep.Restored = make([]activities.KRaftPutResult, 0, len(all))
		var files int
		var bytes int64
		err := onEveryHost(ctx, "node", all, agentWait, time.Hour, func(actx workflow.Context, n config.BrokerHost) workflow.Future {
			return workflow.ExecuteActivity(actx, ag.PutKRaftLog, activities.KRaftPutInput{Host: n.Host, Target: cfg.Source.Target, Manifest: rp, Node: n.ID, Controller: ctrl[n.ID]})
		}, func(n config.BrokerHost, f workflow.Future) error {
			var r activities.KRaftPutResult
			err := f.Get(ctx, &r)
			if err == nil {
				w.rep.Restored = append(w.rep.Restored, r)
				files += r.Files
				bytes += r.Bytes
			}
			return err
		})
		return fmt.Sprintf("%d files (%d bytes) in place on %d controllers; the metadata log of %d brokers cleared", files, bytes, len(w.rep.Controllers), len(all)-len(w.rep.Controllers)), err
	}); err != nil {
		return nil, err
	}

	if err := w.step(ctx, StepFixMeta, func() (string, error) {
		w.rep.MetaFixes = make([]activities.KRaftFixResult, 0, len(all))
		fixed, correct := 0, 0
		err := onEveryHost(ctx, "node", all, agentWait, 2*time.Minute, func(actx workflow.Context, n config.BrokerHost) workflow.Future {
			return workflow.ExecuteActivity(actx, ag.FixKRaftMeta, activities.KRaftFixInput{Host: n.Host, Target: cfg.Source.Target, Manifest: rp,
				ClusterID: w.rep.ClusterID, Node: n.ID, Controller: ctrl[n.ID]})
		}, func(n config.BrokerHost, f workflow.Future) error {
			var r activities.KRaftFixResult
			err := f.Get(ctx, &r)
			if err == nil {
				w.rep.MetaFixes = append(w.rep.MetaFixes, r)
				for _, fx := range r.Fixes {
					if fx.Status == kraftlog.FixFixed || fx.Status == kraftlog.FixCreated {
						fixed++
					} else {
						correct++
					}
				}
			}
			return err
		})
		return fmt.Sprintf("cluster.id=%s: %d meta.properties fixed or created, %d already correct or absent", w.rep.ClusterID, fixed, correct), err
	}); err != nil {
		return nil, err
	}

	if err := w.step(ctx, StepStartKafka, func() (string, error) {
		// Every node at once: a quorum needs a majority of its voters up.
		w.rep.Started = map[string]*hostops.StartResult{}
		err := onEveryHost(ctx, "node", all, agentWait, cfg.Options.StartTimeout.D(), func(actx workflow.Context, n config.BrokerHost) workflow.Future {
			return workflow.ExecuteActivity(actx, ag.StartKafka, activities.AgentRequest{Host: n.Host, Timeout: cfg.Options.StartTimeout.D()})
		}, func(n config.BrokerHost, f workflow.Future) error {
			var r hostops.StartResult
			err := f.Get(ctx, &r)
			w.rep.Started[n.Host] = &r
			return err
		})
		return fmt.Sprintf("%d nodes started", len(all)), err
	}); err != nil {
		return nil, err
	}

	if err := w.step(ctx, StepWaitHealthy, func() (string, error) {
		var h activities.ClusterHealth
		opts := workflow.ActivityOptions{StartToCloseTimeout: cfg.Options.HealthyTimeout.D() + 2*time.Minute, HeartbeatTimeout: time.Minute,
			RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 3}}
		in := activities.KRaftHealthInput{Cluster: cfg.Cluster, Brokers: w.rep.Brokers, ClusterID: w.rep.ClusterID, Timeout: cfg.Options.HealthyTimeout}
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), a.WaitKRaftHealthy, in).Get(ctx, &h); err != nil {
			return "", err
		}
		w.rep.Health = &h
		return fmt.Sprintf("%d brokers registered, %d topics, %d partitions, none offline or under-replicated", len(h.Brokers), h.Topics, h.Partitions), nil
	}); err != nil {
		return nil, err
	}

	if err := w.step(ctx, StepReport, func() (string, error) {
		w.rep.Notes = kraftRestoreNotes(w.rep)
		return fmt.Sprintf("the metadata as of offset %d of the metadata log is back", w.restoredOffset()), nil
	}); err != nil {
		return nil, err
	}
	return &w.rep, nil
}

// restoredOffset is the end of the most advanced backed-up log: the quorum
// elects a leader with it, and the others follow.
func (w *kraftRestore) restoredOffset() int64 {
	var off int64
	if w.rep.Preflight != nil {
		for _, n := range w.rep.Preflight.Nodes {
			off = max(off, n.EndOffset)
		}
	}
	return off
}

// kraftRestoreNotes says what the restore brought back and what is lost,
// as the ZooKeeper restore says consumer offsets roll back.
func kraftRestoreNotes(rep KRaftRestoreReport) []string {
	var off int64
	var at time.Time
	if rep.Preflight != nil {
		for _, n := range rep.Preflight.Nodes {
			if n.EndOffset >= off {
				off, at = n.EndOffset, n.TakenAt
			}
		}
	}
	notes := []string{
		fmt.Sprintf("the cluster's metadata is as of offset %d of its metadata log (copied at %s): metadata written after it is lost — topics created since are gone (Kafka renames their logs on the brokers as strays: left on disk, no longer served), and topic configs, partitions added, reassignments, ACLs, SCRAM credentials, quotas and features changed since are as they were then", off, at.UTC().Format(time.RFC3339)),
		"topics came back with their original topic ids, so the records still on the brokers' disks are served again; SCRAM credentials and ACLs came back with the metadata",
		"producer id blocks handed out after the backup will be handed out again: restart idempotent and transactional producers; consumer offsets (in __consumer_offsets, on the brokers) were not rolled back",
	}
	if rep.SafetyBackup != nil {
		notes = append(notes, "the metadata logs before the restore are kept in the recovery point "+rep.SafetyBackup.RecoveryPoint)
	}
	return notes
}

// safetyBackup copies every node's metadata log as it is now to the
// source's target, as a recovery point of the task safety_backup.task.
func (w *kraftRestore) safetyBackup(ctx workflow.Context, agentWait time.Duration) (string, error) {
	cfg := w.cfg
	taskDir := w.rep.Preflight.SafetyTaskDir
	version := backupset.SafeVersion(w.rep.KafkaVersion)
	dir := backupset.KRaftLogDir(taskDir, version, w.rep.ExecutedAt)
	nodes := make([]backupset.KRaftNode, 0, len(cfg.Nodes))
	err := onEveryHost(ctx, "node", cfg.Nodes, agentWait, time.Hour, func(actx workflow.Context, n config.BrokerHost) workflow.Future {
		return workflow.ExecuteActivity(actx, ag.CopyKRaftLog, activities.KRaftCopyInput{Host: n.Host, Node: n.ID, Target: cfg.Source.Target,
			Dir: backupset.KRaftNodeDir(dir, n.ID), Whole: true})
	}, func(n config.BrokerHost, f workflow.Future) error {
		var kn backupset.KRaftNode
		err := f.Get(ctx, &kn)
		if err == nil {
			nodes = append(nodes, kn)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Node < nodes[j].Node })
	clusterID := ""
	for _, n := range nodes {
		if n.ClusterID != "" {
			clusterID = n.ClusterID
			break
		}
	}
	info := workflow.GetInfo(ctx)
	m := &backupset.Manifest{Format: backupset.FormatVersion, Task: cfg.SafetyBackup.Task, TaskDir: taskDir, Cluster: cfg.Cluster.Name,
		ClusterID: clusterID, KafkaVersion: version, Mode: "kraft", Kind: backupset.KindFull, ExecutedAt: w.rep.ExecutedAt,
		DataSources: []string{config.SourceKRaftLog}, Compression: backupset.CompressionNone,
		WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID, KRaftLog: nodes}
	var name string
	if err := workflow.ExecuteActivity(longOpts(ctx), a.WriteIndex, activities.IndexInput{Target: cfg.Source.Target, Manifest: m}).Get(ctx, &name); err != nil {
		return "", err
	}
	sb := &KRaftSafetyBackup{RecoveryPoint: name, Nodes: len(nodes)}
	for _, n := range nodes {
		sb.Files += len(n.Files)
		sb.Bytes += n.Bytes()
	}
	w.rep.SafetyBackup = sb
	return fmt.Sprintf("%s (%d nodes, %d files, %d bytes)", name, sb.Nodes, sb.Files, sb.Bytes), nil
}

// preflight checks everything before anything is changed and refuses,
// listing every problem, when the restore cannot run.
func (w *kraftRestore) preflight(ctx workflow.Context) (string, error) {
	cfg := w.cfg
	src := cfg.Source
	if err := workflow.ExecuteLocalActivity(localOpts(ctx, time.Minute, 5), a.ResolveName, activities.VerifyInput{Source: src}).Get(ctx, &src.RecoveryPoint); err != nil {
		return "", err
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, names.SARecoveryPoint.ValueSet(src.RecoveryPoint))
	// The agents are asked first: they answer while the main worker reads
	// and verifies the recovery point.
	sts := cfg.Options.AgentTimeout.D()
	pings := make([]workflow.Future, len(cfg.Nodes))
	for i, n := range cfg.Nodes {
		pings[i] = workflow.ExecuteActivity(agentOpts(ctx, n.Host, sts, 30*time.Second, 1), ag.KRaftInspect, activities.AgentRequest{Host: n.Host})
	}
	verified := workflow.ExecuteActivity(longOpts(ctx), a.ResolveRecoveryPoint, activities.VerifyInput{Source: src})
	checked := workflow.ExecuteActivity(shortOpts(ctx, 5*time.Minute, 3), a.KRaftRestorePreflight,
		activities.KRaftPreflightInput{Config: cfg, Manifest: src.RecoveryPoint, ExecutedAt: w.rep.ExecutedAt})
	var problems []string
	var rp activities.RecoveryPoint
	if err := verified.Get(ctx, &rp); err != nil {
		problems = append(problems, errText(err))
	} else {
		w.rep.RecoveryPoint = &rp
		_ = workflow.UpsertTypedSearchAttributes(ctx, names.SATask.ValueSet(rp.Task))
	}
	var pre activities.KRaftPreflight
	if err := checked.Get(ctx, &pre); err != nil {
		problems = append(problems, strings.TrimPrefix(errText(err), "preflight failed:\n  - "))
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.HasDetails() {
			_ = appErr.Details(&pre)
		}
	}
	w.rep.Preflight = &pre
	w.rep.ClusterID = pre.BackupClusterID
	w.rep.Agents = nil
	for i, n := range cfg.Nodes {
		var info activities.KRaftNodeInfo
		if err := pings[i].Get(ctx, &info); err != nil {
			problems = append(problems, agentError("node", n, err, sts))
			continue
		}
		w.rep.Agents = append(w.rep.Agents, KRaftAgentReport{NodeID: n.ID, Info: &info})
	}
	backupV := pre.BackupVersion
	if backupV == "" {
		backupV = rp.KafkaVersion
	}
	check := kraftChecks(cfg, backupV, pre, len(pre.Nodes) > 0, w.rep.Agents)
	problems = append(problems, check.problems...)
	w.rep.Controllers, w.rep.Brokers, w.rep.KafkaVersion = check.controllers, check.brokers, check.version
	if len(problems) > 0 {
		sort.Strings(problems)
		return "", temporal.NewNonRetryableApplicationError("refused before anything was stopped:\n  - "+strings.Join(problems, "\n  - "), names.ErrPreflight, nil)
	}
	return fmt.Sprintf("%s verified (Kafka %s, cluster id %s, the metadata logs of %d controllers up to offset %d); %d agents answer",
		src.RecoveryPoint, backupV, pre.BackupClusterID, len(pre.Nodes), w.restoredOffset(), len(w.rep.Agents)), nil
}

// kraftCheck is what kraftChecks found.
type kraftCheck struct {
	problems             []string
	controllers, brokers []int32
	version              string
}

// kraftChecks compares the nodes as their agents report them with the
// restore's config and the recovery point: node ids, roles, every
// controller's log backed up, the Kafka versions, free disk.
func kraftChecks(cfg config.KRaftRestore, backupV string, pre activities.KRaftPreflight, haveBackup bool, agents []KRaftAgentReport) kraftCheck {
	var c kraftCheck
	fail := func(format string, args ...any) { c.problems = append(c.problems, fmt.Sprintf(format, args...)) }
	backed := map[int32]activities.KRaftBackedUp{}
	for _, n := range pre.Nodes {
		backed[n.Node] = n
	}
	inConfig := map[int32]bool{}
	for _, n := range cfg.Nodes {
		inConfig[n.ID] = true
	}
	known := 0
	if pre.LiveVersion != "" {
		known++
		c.version = pre.LiveVersion
		if !kmeta.SameRelease(pre.LiveVersion, backupV) {
			fail("cluster %s runs Kafka %s, the backup was taken from Kafka %s: a metadata restore needs the same version", cfg.Cluster.Name, pre.LiveVersion, backupV)
		}
	}
	for _, ar := range agents {
		info := ar.Info
		who := fmt.Sprintf("node %d (host %s)", ar.NodeID, info.Host)
		if info.Node.NodeID != ar.NodeID {
			fail("%s: its server.properties says node.id=%d", who, info.Node.NodeID)
		}
		if v := info.KafkaVersion; v != "" {
			known++
			if c.version == "" {
				c.version = v
			}
			if !kmeta.SameRelease(v, backupV) {
				fail("%s has Kafka %s installed, the backup was taken from Kafka %s: a metadata restore needs the same version", who, v, backupV)
			}
		}
		if info.Node.Broker() {
			c.brokers = append(c.brokers, ar.NodeID)
		}
		if !info.Node.Controller() {
			if _, ok := backed[ar.NodeID]; ok {
				fail("%s is no controller now (process.roles=%s), but the recovery point holds its metadata log as a controller's", who, strings.Join(info.Node.Roles, ","))
			}
			continue
		}
		c.controllers = append(c.controllers, ar.NodeID)
		b, ok := backed[ar.NodeID]
		if !ok && haveBackup {
			fail("%s is a controller, but the recovery point holds no metadata log of node %d (it holds nodes %s)", who, ar.NodeID, nodeList(pre.Nodes))
		}
		if d := info.Disk; ok && d != nil && d.Error == "" && d.Free < uint64(2*b.Bytes) {
			fail("%s: %s has %d bytes free, the metadata log takes %d (twice that is needed while it is swapped)", who, d.Dir, d.Free, b.Bytes)
		}
	}
	for _, b := range pre.Nodes {
		if !inConfig[b.Node] {
			fail("the recovery point holds the metadata log of node %d (host %s), which nodes does not list: list every node of the cluster", b.Node, b.Host)
		}
	}
	if len(agents) == len(cfg.Nodes) && len(c.controllers) == 0 {
		fail("no node is a controller (process.roles): a KRaft cluster needs its controllers")
	}
	if known == 0 && len(c.problems) == 0 {
		fail("cannot tell the cluster's Kafka version (nodes down: %s; no agent reports one): give the agents --kafka-libs or --kafka-version", pre.LiveError)
	}
	if c.version == "" {
		c.version = backupV
	}
	sort.Slice(c.controllers, func(i, j int) bool { return c.controllers[i] < c.controllers[j] })
	sort.Slice(c.brokers, func(i, j int) bool { return c.brokers[i] < c.brokers[j] })
	return c
}

func nodeList(ns []activities.KRaftBackedUp) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n.Node)
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
