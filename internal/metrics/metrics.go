// Package metrics is what kbr's processes tell Prometheus: the names and
// labels of kbr's own metrics, the registry that also carries the Temporal
// SDK's worker metrics, its HTTP handler, and small typed helpers.
//
// Every helper takes a client.MetricsHandler, so the same call works from
// workflow code through workflow.GetMetricsHandler(ctx) (which records
// nothing while a history replays, so a run is counted once however often
// a worker replays it) and from activity code through
// activity.GetMetricsHandler(ctx).
//
// The SDK tags every metric with its namespace, task queue, worker type,
// workflow and activity type. kbr's own metrics keep only the labels listed
// for them in Specs (kind, cluster, task, step, outcome, activity type):
// their label sets stay the same from every call site, the seeds a worker
// writes at start line up with what a run writes later, and no label ever
// carries a run id, so the number of series stays bounded by the clusters,
// tasks and steps an installation has.
package metrics

import (
	"time"

	"go.temporal.io/sdk/client"
)

// Label names of kbr's metrics.
const (
	LabelKind         = "kind"    // names.Kind*: backup, restore, metadata-restore, ...
	LabelCluster      = "cluster" // the cluster's name in its config
	LabelTask         = "task"    // the backup task ("" for runs of none)
	LabelStep         = "step"    // a step's name as the Web UI shows it
	LabelOutcome      = "outcome" // Outcome*: done/failed for steps, names.Status* for runs
	LabelActivityType = "activity_type"
)

// Step outcomes.
const (
	OutcomeDone    = "done"
	OutcomeFailed  = "failed"
	OutcomeSkipped = "skipped"
)

// Names of kbr's metrics, as Prometheus shows them.
const (
	StepsStarted = "kbr_steps_started_total"
	// StepDuration is a histogram of each ended step's time, by outcome.
	StepDuration = "kbr_step_duration_seconds"
	// Runs counts ended runs by outcome (names.Status*).
	Runs        = "kbr_runs_total"
	RunDuration = "kbr_run_duration_seconds"

	// The progress of the run of a kind, cluster and task in progress, or
	// of the last one: a cluster runs one backup or restore at a time.
	BytesDone         = "kbr_run_bytes_done"
	BytesPlanned      = "kbr_run_bytes_planned"
	RecordsDone       = "kbr_run_records_done"
	RecordsPlanned    = "kbr_run_records_planned"
	PartitionsDone    = "kbr_run_partitions_done"
	PartitionsPlanned = "kbr_run_partitions_planned"
	LostPartitions    = "kbr_run_lost_partitions"

	// Totals over every run, for rate().
	Bytes       = "kbr_bytes_total"
	Records     = "kbr_records_total"
	RecordsLost = "kbr_records_lost_total"

	// LastBackupSuccess is the Unix time of the last backup of a task that
	// succeeded: the metric to alert on.
	LastBackupSuccess = "kbr_backup_last_success_timestamp_seconds"

	RetentionDeletedRecoveryPoints = "kbr_retention_deleted_recovery_points_total"
	RetentionDeletedFiles          = "kbr_retention_deleted_files_total"
	RetentionDeletedBytes          = "kbr_retention_deleted_bytes_total"

	// ActivityRetries counts activity attempts after the first.
	ActivityRetries = "kbr_activity_retries_total"

	// RegisterErrors counts metrics the registry could not register (a
	// label set that differs from the first one seen for the name); they
	// are dropped. It should stay 0.
	RegisterErrors = "kbr_metrics_register_errors_total"
)

// Spec is one of kbr's metrics: its type, labels and help text.
type Spec struct {
	Type   string // counter, gauge or histogram
	Labels []string
	Help   string
}

var (
	runLabels  = []string{LabelKind, LabelCluster, LabelTask}
	stepLabels = []string{LabelKind, LabelCluster, LabelTask, LabelStep}
	taskLabels = []string{LabelCluster, LabelTask}
)

// Specs lists every metric kbr emits through a client.MetricsHandler.
var Specs = map[string]Spec{
	StepsStarted:      {"counter", stepLabels, "steps started"},
	StepDuration:      {"histogram", append(stepLabels[:4:4], LabelOutcome), "time of each ended step, by outcome (done, failed, skipped)"},
	Runs:              {"counter", append(runLabels[:3:3], LabelOutcome), "ended runs, by outcome (succeeded, failed, records-lost)"},
	RunDuration:       {"histogram", append(runLabels[:3:3], LabelOutcome), "time of each ended run, by outcome"},
	BytesDone:         {"gauge", runLabels, "bytes moved by the current or last run"},
	BytesPlanned:      {"gauge", runLabels, "bytes the current or last run estimated"},
	RecordsDone:       {"gauge", runLabels, "records moved by the current or last run"},
	RecordsPlanned:    {"gauge", runLabels, "records (offsets) the current or last run planned"},
	PartitionsDone:    {"gauge", runLabels, "partitions the current or last run finished"},
	PartitionsPlanned: {"gauge", runLabels, "partitions the current or last run planned"},
	LostPartitions:    {"gauge", runLabels, "partitions of the current or last run that lost records to retention before the export read them"},
	Bytes:             {"counter", runLabels, "bytes moved"},
	Records:           {"counter", runLabels, "records moved"},
	RecordsLost:       {"counter", runLabels, "records of a cut that retention deleted before the export read them"},
	LastBackupSuccess: {"gauge", taskLabels, "Unix time of the task's last successful backup"},

	RetentionDeletedRecoveryPoints: {"counter", taskLabels, "recovery points deleted by retention"},
	RetentionDeletedFiles:          {"counter", taskLabels, "files deleted by retention"},
	RetentionDeletedBytes:          {"counter", taskLabels, "bytes deleted by retention"},
	ActivityRetries:                {"counter", []string{LabelActivityType}, "activity attempts after the first, by activity type"},
}

// Run names a run in its metrics' labels.
type Run struct {
	Kind, Cluster, Task string
}

func (r Run) tags() map[string]string {
	return map[string]string{LabelKind: r.Kind, LabelCluster: r.Cluster, LabelTask: r.Task}
}

func (r Run) with(k, v string, more ...string) map[string]string {
	t := r.tags()
	t[k] = v
	for i := 0; i+1 < len(more); i += 2 {
		t[more[i]] = more[i+1]
	}
	return t
}

// StepStarted counts a step's start.
func StepStarted(h client.MetricsHandler, r Run, step string) {
	h.WithTags(r.with(LabelStep, step)).Counter(StepsStarted).Inc(1)
}

// StepEnded records how long a step took and how it ended (OutcomeDone or
// OutcomeFailed).
func StepEnded(h client.MetricsHandler, r Run, step, outcome string, took time.Duration) {
	h.WithTags(r.with(LabelStep, step, LabelOutcome, outcome)).Timer(StepDuration).Record(took)
}

// RunEnded counts an ended run and records its time; outcome is its
// status (names.Status*).
func RunEnded(h client.MetricsHandler, r Run, outcome string, took time.Duration) {
	h = h.WithTags(r.with(LabelOutcome, outcome))
	h.Counter(Runs).Inc(1)
	h.Timer(RunDuration).Record(took)
}

// Progress is a run's position, as gauges.
type Progress struct {
	BytesDone, BytesPlanned           int64
	RecordsDone, RecordsPlanned       int64
	PartitionsDone, PartitionsPlanned int
	LostPartitions                    int
}

// SetProgress sets the run's progress gauges.
func SetProgress(h client.MetricsHandler, r Run, p Progress) {
	h = h.WithTags(r.tags())
	h.Gauge(BytesDone).Update(float64(p.BytesDone))
	h.Gauge(BytesPlanned).Update(float64(p.BytesPlanned))
	h.Gauge(RecordsDone).Update(float64(p.RecordsDone))
	h.Gauge(RecordsPlanned).Update(float64(p.RecordsPlanned))
	h.Gauge(PartitionsDone).Update(float64(p.PartitionsDone))
	h.Gauge(PartitionsPlanned).Update(float64(p.PartitionsPlanned))
	h.Gauge(LostPartitions).Update(float64(p.LostPartitions))
}

// Moved adds what a run moved (and lost) since the last call.
func Moved(h client.MetricsHandler, r Run, bytes, records, lost int64) {
	h = h.WithTags(r.tags())
	if bytes > 0 {
		h.Counter(Bytes).Inc(bytes)
	}
	if records > 0 {
		h.Counter(Records).Inc(records)
	}
	if lost > 0 {
		h.Counter(RecordsLost).Inc(lost)
	}
}

// BackupSucceeded sets the time of a task's last successful backup.
func BackupSucceeded(h client.MetricsHandler, cluster, task string, at time.Time) {
	h.WithTags(map[string]string{LabelCluster: cluster, LabelTask: task}).Gauge(LastBackupSuccess).Update(float64(at.Unix()))
}

// RetentionDeleted counts what a task's retention deleted.
func RetentionDeleted(h client.MetricsHandler, cluster, task string, recoveryPoints, files int, bytes int64) {
	h = h.WithTags(map[string]string{LabelCluster: cluster, LabelTask: task})
	h.Counter(RetentionDeletedRecoveryPoints).Inc(int64(recoveryPoints))
	h.Counter(RetentionDeletedFiles).Inc(int64(files))
	h.Counter(RetentionDeletedBytes).Inc(bytes)
}

// ActivityRetried counts a retried attempt. h is the activity's handler,
// which the SDK has tagged with its activity type.
func ActivityRetried(h client.MetricsHandler) {
	h.Counter(ActivityRetries).Inc(1)
}
