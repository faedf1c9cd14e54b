package workflows

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/hostops"
	"github.com/kbr-project/kbr/internal/kmeta"
	"github.com/kbr-project/kbr/internal/names"
)

// Metadata restore step names, in the order of the MRS procedure.
const (
	StepSafetyBackup  = "safety backup"
	StepStopKafka     = "stop Kafka"
	StepRestoreZnodes = "restore znodes"
	StepFixClusterID  = "fix cluster.id"
	StepStartKafka    = "start Kafka"
	StepWaitHealthy   = "wait until healthy"
	StepReport        = "report"
)

// MetaRestoreSteps lists the steps of a metadata restore in order.
var MetaRestoreSteps = []string{StepPreflight, StepSafetyBackup, StepStopKafka, StepRestoreZnodes,
	StepFixClusterID, StepStartKafka, StepWaitHealthy, StepReport}

// MetadataRestoreInput is the input of MetadataRestoreWorkflow: the
// document of `kbr restore metadata -f` (its fields at the top level) and,
// for a retry, what the failed run completed.
type MetadataRestoreInput struct {
	config.MetadataRestore
	Resume *MetaResume `json:"resume,omitempty"`
}

// MetaResume is what a failed run completed; a run given it skips those
// steps and reuses their results.
type MetaResume struct {
	// FromRunID is the run that completed the steps.
	FromRunID string            `json:"from_run_id,omitempty"`
	Done      []string          `json:"done"`
	State     MetaRestoreReport `json:"state"`
}

// AgentReport is one broker's agent as the preflight found it.
type AgentReport struct {
	BrokerID int32                 `json:"broker_id"`
	Ping     *activities.AgentPing `json:"ping"`
}

// MetaRestoreReport is the report of a metadata restore, filled step by
// step; it is also the state a retry resumes from.
type MetaRestoreReport struct {
	RecoveryPoint *activities.RecoveryPoint       `json:"recovery_point,omitempty"`
	ExecutedAt    time.Time                       `json:"executed_at"`
	Preflight     *activities.MetaPreflight       `json:"preflight,omitempty"`
	Agents        []AgentReport                   `json:"agents,omitempty"`
	KafkaVersion  string                          `json:"kafka_version,omitempty"`
	SafetyBackup  *activities.SafetyBackupResult  `json:"safety_backup,omitempty"`
	Stopped       map[string]*hostops.StopResult  `json:"stopped,omitempty"`
	Znodes        *activities.RestoreZnodesResult `json:"znodes,omitempty"`
	ClusterID     string                          `json:"cluster_id,omitempty"`
	ClusterIDs    []activities.FixClusterIDResult `json:"cluster_id_fixes,omitempty"`
	Started       map[string]*hostops.StartResult `json:"started,omitempty"`
	Health        *activities.ClusterHealth       `json:"health,omitempty"`
	ResumedFrom   string                          `json:"resumed_from,omitempty"`
	Notes         []string                        `json:"notes,omitempty"`
}

// NoteOffsetsRolledBack is the report's note on consumer offsets (seed 001,
// "Impact on the System").
const NoteOffsetsRolledBack = "consumer offsets stored in ZooKeeper (/consumers, old ZooKeeper-based consumers) were rolled back to the backup: those consumers will consume again what came after it; offsets kept in __consumer_offsets were not changed"

// MetadataRestoreWorkflow restores the metadata of a ZooKeeper-mode
// cluster the MRS way: preflight (backup verifies, same Kafka version,
// every broker's agent answers, ZooKeeper reachable — before anything is
// stopped), a safety backup of the current metadata, stop Kafka on every
// broker, restore the znodes, fix cluster.id in every log dir, start
// Kafka, wait until every broker is registered and no partition is
// under-replicated, report. The workflow id is the restore id: started
// with the reuse policy AllowDuplicateFailedOnly, a restore that succeeded
// cannot run again, and a failed one is retried (kbr restore retry) with
// the steps it completed, which are not repeated.
func MetadataRestoreWorkflow(ctx workflow.Context, in MetadataRestoreInput) (*MetaRestoreReport, error) {
	w := &metaRestore{in: in}
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

type metaRestore struct {
	*resumable
	in  MetadataRestoreInput
	cfg config.MetadataRestore
	p   Progress
	t   *tracker
	rep MetaRestoreReport
}

func (w *metaRestore) setup(ctx workflow.Context) error {
	w.cfg = w.in.MetadataRestore
	w.cfg.ApplyDefaults()
	w.p = Progress{Kind: "metadata restore", Cluster: w.cfg.Cluster.Name, Status: names.StatusRunning}
	w.t = newTracker(ctx, &w.p, MetaRestoreSteps...)
	var fromRun string
	var done []string
	if r := w.in.Resume; r != nil {
		w.rep = r.State
		fromRun, done = r.FromRunID, r.Done
		w.rep.ResumedFrom = r.FromRunID
	}
	w.resumable = newResumable(w.t, MetaRestoreSteps, fromRun, done, func(run string, done []string) any {
		// The memo keeps what later steps need, not the command outputs and
		// agent reports, so it stays small (Temporal warns above 2 KiB).
		st := w.rep
		st.Agents, st.Stopped, st.Started = nil, nil, nil
		if st.Znodes != nil {
			z := *st.Znodes
			z.Skipped = nil
			st.Znodes = &z
		}
		return MetaResume{FromRunID: run, Done: done, State: st}
	})
	if err := workflow.SetQueryHandler(ctx, names.QueryProgress, func() (Progress, error) {
		p := w.p
		p.Report = w.rep
		return p, nil
	}); err != nil {
		return err
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, names.SACluster.ValueSet(w.cfg.Cluster.Name),
		names.SAKind.ValueSet(names.KindMetadataRestore), names.SAStatus.ValueSet(names.StatusRunning)); err != nil {
		return err
	}
	// A retry skips the preflight that announced the recovery point: say
	// it again, so its task's prune keeps it while the retry may read it.
	if rp := w.rep.RecoveryPoint; w.in.Resume != nil && rp != nil &&
		workflow.GetVersion(ctx, "announce-recovery-point-on-retry", workflow.DefaultVersion, 1) == 1 {
		return workflow.UpsertTypedSearchAttributes(ctx, names.SATask.ValueSet(rp.Task), names.SARecoveryPoint.ValueSet(rp.Manifest))
	}
	return nil
}

func (w *metaRestore) run(ctx workflow.Context) (*MetaRestoreReport, error) {
	cfg := w.cfg
	if err := cfg.Validate(); err != nil {
		w.t.start(StepPreflight)
		w.t.fail(StepPreflight, err)
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), names.ErrBadInput, nil)
	}
	if w.rep.ExecutedAt.IsZero() {
		w.rep.ExecutedAt = workflow.Now(ctx).UTC().Truncate(time.Second)
	}
	// The lock is taken by every run, resumed or not: no backup or other
	// restore of this cluster runs while its brokers are down.
	w.t.start(StepPreflight)
	release, err := clusterLock(ctx, cfg.Cluster.Name, "", names.KindMetadataRestore, cfg.Cluster.LockQueue, &w.p, w.t)
	if err != nil {
		w.t.fail(StepPreflight, err)
		return nil, err
	}
	defer release()

	if err := w.step(ctx, StepPreflight, func() (string, error) { return w.preflight(ctx) }); err != nil {
		return nil, err
	}
	if w.rep.RecoveryPoint == nil || w.rep.ClusterID == "" {
		// Only a hand-written resume can get here.
		err := fmt.Errorf("resume: the state says preflight completed but holds no recovery point or cluster id")
		w.t.fail(StepPreflight, err)
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), names.ErrBadInput, nil)
	}
	w.p.RecoveryPoint = w.rep.RecoveryPoint.Manifest
	w.p.Task = w.rep.RecoveryPoint.Task

	if err := w.step(ctx, StepSafetyBackup, func() (string, error) {
		var res activities.SafetyBackupResult
		in := activities.SafetyBackupInput{Config: cfg, KafkaVersion: w.rep.KafkaVersion, ExecutedAt: w.rep.ExecutedAt}
		if err := workflow.ExecuteActivity(shortOpts(ctx, 10*time.Minute, 5), a.SafetyBackup, in).Get(ctx, &res); err != nil {
			return "", err
		}
		w.rep.SafetyBackup = &res
		return fmt.Sprintf("%s (%d znodes)", res.RecoveryPoint, res.Znodes), nil
	}); err != nil {
		return nil, err
	}

	if err := w.step(ctx, StepStopKafka, func() (string, error) {
		w.rep.Stopped = map[string]*hostops.StopResult{}
		err := onEveryHost(ctx, "broker", cfg.Brokers, max(cfg.Options.AgentTimeout.D(), time.Minute), cfg.Options.StopTimeout.D(), func(actx workflow.Context, b config.BrokerHost) workflow.Future {
			return workflow.ExecuteActivity(actx, ag.StopKafka, activities.AgentRequest{Host: b.Host, Timeout: cfg.Options.StopTimeout.D()})
		}, func(b config.BrokerHost, f workflow.Future) error {
			var r hostops.StopResult
			err := f.Get(ctx, &r)
			w.rep.Stopped[b.Host] = &r
			return err
		})
		return fmt.Sprintf("%d brokers stopped", len(cfg.Brokers)), err
	}); err != nil {
		return nil, err
	}

	if err := w.step(ctx, StepRestoreZnodes, func() (string, error) {
		var res activities.RestoreZnodesResult
		opts := workflow.ActivityOptions{StartToCloseTimeout: time.Hour, HeartbeatTimeout: 2 * time.Minute,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 10}}
		in := activities.RestoreZnodesInput{Config: cfg, Manifest: w.rep.RecoveryPoint.Manifest}
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), a.RestoreZnodes, in).Get(ctx, &res); err != nil {
			return "", err
		}
		w.rep.Znodes = &res
		if res.ClusterID != "" {
			w.rep.ClusterID = res.ClusterID
		}
		ap := res.Applied
		return fmt.Sprintf("%s: %d created, %d deleted, %d data and %d ACLs set, %d unchanged, %d ephemeral left to the brokers, %d batches",
			res.Chroot, ap.Created, ap.Deleted, ap.DataSet, ap.ACLSet, res.Unchanged, len(res.Skipped), ap.Batches), nil
	}); err != nil {
		return nil, err
	}

	if err := w.step(ctx, StepFixClusterID, func() (string, error) {
		w.rep.ClusterIDs = make([]activities.FixClusterIDResult, len(cfg.Brokers))
		i := 0
		fixed, correct := 0, 0
		err := onEveryHost(ctx, "broker", cfg.Brokers, max(cfg.Options.AgentTimeout.D(), time.Minute), 2*time.Minute, func(actx workflow.Context, b config.BrokerHost) workflow.Future {
			return workflow.ExecuteActivity(actx, ag.FixClusterID, activities.FixClusterIDInput{Host: b.Host, ClusterID: w.rep.ClusterID})
		}, func(b config.BrokerHost, f workflow.Future) error {
			var r activities.FixClusterIDResult
			err := f.Get(ctx, &r)
			w.rep.ClusterIDs[i] = r
			i++
			for _, fx := range r.Fixes {
				if fx.Status == hostops.FixFixed {
					fixed++
				} else {
					correct++
				}
			}
			return err
		})
		return fmt.Sprintf("cluster.id=%s: %d log dirs fixed, %d already correct or new", w.rep.ClusterID, fixed, correct), err
	}); err != nil {
		return nil, err
	}

	if err := w.step(ctx, StepStartKafka, func() (string, error) {
		w.rep.Started = map[string]*hostops.StartResult{}
		err := onEveryHost(ctx, "broker", cfg.Brokers, max(cfg.Options.AgentTimeout.D(), time.Minute), cfg.Options.StartTimeout.D(), func(actx workflow.Context, b config.BrokerHost) workflow.Future {
			return workflow.ExecuteActivity(actx, ag.StartKafka, activities.AgentRequest{Host: b.Host, Timeout: cfg.Options.StartTimeout.D()})
		}, func(b config.BrokerHost, f workflow.Future) error {
			var r hostops.StartResult
			err := f.Get(ctx, &r)
			w.rep.Started[b.Host] = &r
			return err
		})
		return fmt.Sprintf("%d brokers started", len(cfg.Brokers)), err
	}); err != nil {
		return nil, err
	}

	if err := w.step(ctx, StepWaitHealthy, func() (string, error) {
		var h activities.ClusterHealth
		opts := workflow.ActivityOptions{StartToCloseTimeout: cfg.Options.HealthyTimeout.D() + 2*time.Minute, HeartbeatTimeout: time.Minute,
			RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 3}}
		in := activities.WaitHealthyInput{Config: cfg, ClusterID: w.rep.ClusterID}
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), a.WaitClusterHealthy, in).Get(ctx, &h); err != nil {
			return "", err
		}
		w.rep.Health = &h
		return fmt.Sprintf("%d brokers registered, %d topics, %d partitions, none under-replicated", len(h.Brokers), h.Topics, h.Partitions), nil
	}); err != nil {
		return nil, err
	}

	if err := w.step(ctx, StepReport, func() (string, error) {
		w.rep.Notes = append(w.rep.Notes, NoteOffsetsRolledBack)
		if w.rep.SafetyBackup != nil {
			w.rep.Notes = append(w.rep.Notes, "the metadata before the restore is kept in the recovery point "+w.rep.SafetyBackup.RecoveryPoint)
		}
		return "consumer offsets stored in ZooKeeper rolled back to the backup", nil
	}); err != nil {
		return nil, err
	}
	return &w.rep, nil
}

var ag *activities.Agent

// agentOpts sends activities to a host's agent. ScheduleToStart bounds how
// long a task waits for an agent that does not poll; that timeout is never
// retried, so a missing agent is reported within it.
func agentOpts(ctx workflow.Context, host string, scheduleToStart, run time.Duration, attempts int32) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              names.AgentTaskQueue(host),
		ScheduleToStartTimeout: scheduleToStart,
		StartToCloseTimeout:    run,
		HeartbeatTimeout:       time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			MaximumAttempts: attempts, NonRetryableErrorTypes: []string{names.ErrCommand, names.ErrWrongHost}},
	})
}

// onEveryHost starts one agent activity per node (start), all at once,
// then collects them (get): every failure is reported, each naming its
// node (noun: "broker" or "node") and host, and telling a missing agent
// (no pickup within agentWait) from a failed step.
func onEveryHost(ctx workflow.Context, noun string, nodes []config.BrokerHost, agentWait, run time.Duration,
	start func(workflow.Context, config.BrokerHost) workflow.Future, get func(config.BrokerHost, workflow.Future) error) error {
	futures := make([]workflow.Future, len(nodes))
	for i, n := range nodes {
		futures[i] = start(agentOpts(ctx, n.Host, agentWait, run+30*time.Second, 3), n)
	}
	var errs []string
	for i, n := range nodes {
		if err := get(n, futures[i]); err != nil {
			errs = append(errs, agentError(noun, n, err, agentWait))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

// agentError says which node's host failed, and how.
func agentError(noun string, n config.BrokerHost, err error, sts time.Duration) string {
	var te *temporal.TimeoutError
	if errors.As(err, &te) && te.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START {
		return fmt.Sprintf("%s %d: no agent answered for host %s within %s (task queue %s): run `kbr agent --host %s` on that %s's machine",
			noun, n.ID, n.Host, sts, names.AgentTaskQueue(n.Host), n.Host, noun)
	}
	return fmt.Sprintf("%s %d (host %s): %s", noun, n.ID, n.Host, errText(err))
}

// errText is the message of the first application error in err's chain
// (an activity's own error rather than Temporal's wrapping of it), or
// err's text.
func errText(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	return err.Error()
}

// preflight checks everything before anything is changed and refuses,
// listing every problem, when the restore cannot run.
func (w *metaRestore) preflight(ctx workflow.Context) (string, error) {
	cfg := w.cfg
	if err := announceRecoveryPoint(ctx, &cfg.Source); err != nil {
		return "", err
	}
	var rp activities.RecoveryPoint
	if err := workflow.ExecuteActivity(longOpts(ctx), a.ResolveRecoveryPoint, activities.VerifyInput{Source: cfg.Source}).Get(ctx, &rp); err != nil {
		return "", err
	}
	w.rep.RecoveryPoint = &rp
	_ = workflow.UpsertTypedSearchAttributes(ctx, names.SATask.ValueSet(rp.Task), names.SARecoveryPoint.ValueSet(rp.Manifest))

	var problems []string
	// Pings go out first: they wait for the agents while the main
	// worker's checks run.
	sts := cfg.Options.AgentTimeout.D()
	pings := make([]workflow.Future, len(cfg.Brokers))
	for i, b := range cfg.Brokers {
		pings[i] = workflow.ExecuteActivity(agentOpts(ctx, b.Host, sts, 30*time.Second, 1), ag.Ping, activities.AgentRequest{Host: b.Host})
	}
	var pre activities.MetaPreflight
	if err := workflow.ExecuteActivity(shortOpts(ctx, 5*time.Minute, 3), a.MetadataPreflight,
		activities.MetaPreflightInput{Config: cfg, Manifest: rp.Manifest}).Get(ctx, &pre); err != nil {
		problems = append(problems, strings.TrimPrefix(errText(err), "preflight failed:\n  - "))
	}
	w.rep.Preflight = &pre
	w.rep.ClusterID = pre.BackupClusterID
	w.rep.Agents = nil
	for i, b := range cfg.Brokers {
		var pg activities.AgentPing
		if err := pings[i].Get(ctx, &pg); err != nil {
			problems = append(problems, agentError("broker", b, err, sts))
			continue
		}
		w.rep.Agents = append(w.rep.Agents, AgentReport{BrokerID: b.ID, Ping: &pg})
	}

	// Same Kafka version as the backup, as MRS requires: the running
	// cluster's when it answers, and each broker host's installed one.
	backupV := rp.KafkaVersion
	known := 0
	if pre.LiveVersion != "" {
		known++
		if !kmeta.SameRelease(pre.LiveVersion, backupV) {
			problems = append(problems, fmt.Sprintf("cluster %s runs Kafka %s, the backup was taken from Kafka %s: a metadata restore needs the same version", cfg.Cluster.Name, pre.LiveVersion, backupV))
		}
	}
	version := pre.LiveVersion
	for _, ar := range w.rep.Agents {
		v := ar.Ping.KafkaVersion
		if v == "" {
			continue
		}
		known++
		if version == "" {
			version = v
		}
		if !kmeta.SameRelease(v, backupV) {
			problems = append(problems, fmt.Sprintf("broker %d (host %s) has Kafka %s installed, the backup was taken from Kafka %s: a metadata restore needs the same version", ar.BrokerID, ar.Ping.Host, v, backupV))
		}
	}
	if known == 0 && len(problems) == 0 {
		problems = append(problems, fmt.Sprintf("cannot tell the cluster's Kafka version (brokers down: %s; no agent reports one): give the agents --kafka-libs or --kafka-version", pre.LiveError))
	}
	if version == "" {
		version = backupV
	}
	w.rep.KafkaVersion = version
	if len(problems) > 0 {
		sort.Strings(problems)
		return "", temporal.NewNonRetryableApplicationError("refused before anything was stopped:\n  - "+strings.Join(problems, "\n  - "), names.ErrPreflight, nil)
	}
	return fmt.Sprintf("%s verified (Kafka %s, cluster id %s, %d znodes); %d agents answer; ZooKeeper reachable", rp.Manifest, backupV, pre.BackupClusterID, pre.BackupZnodes, len(w.rep.Agents)), nil
}
