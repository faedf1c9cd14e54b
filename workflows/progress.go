package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/metrics"
	"github.com/kbr-project/kbr/internal/names"
)

// Step is one named step of the MRS procedure.
type Step struct {
	Name      string    `json:"name"`
	Status    string    `json:"status"` // pending, running, done, failed, skipped
	StartedAt time.Time `json:"started_at,omitzero"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	Detail    string    `json:"detail,omitempty"`
}

// Progress is what the progress query returns and the CLI shows.
type Progress struct {
	Kind    string `json:"kind"`
	Cluster string `json:"cluster"`
	Task    string `json:"task,omitempty"`
	Status  string `json:"status"`
	// Waiting says what the run waits for (the cluster lock), if anything.
	Waiting         string `json:"waiting,omitempty"`
	Steps           []Step `json:"steps"`
	PartitionsTotal int    `json:"partitions_total"`
	PartitionsDone  int    `json:"partitions_done"`
	RecordsDone     int64  `json:"records_done"`
	BytesDone       int64  `json:"bytes_done"`
	RecordsTotal    int64  `json:"records_total,omitempty"`
	EstimatedBytes  int64  `json:"estimated_bytes,omitempty"`
	RecoveryPoint   string `json:"recovery_point,omitempty"`
	// UnitsTotal and UnitsDone count the work units of the data step;
	// Running names the child workflows running units now, whose activities
	// heartbeat the units' live counts.
	UnitsTotal int      `json:"units_total,omitempty"`
	UnitsDone  int      `json:"units_done,omitempty"`
	Running    []string `json:"running,omitempty"`
	// RecordsLost counts the offsets of records retention deleted before
	// the export reached them, in LostPartitions partitions.
	RecordsLost    int64  `json:"records_lost,omitempty"`
	LostPartitions int    `json:"lost_partitions,omitempty"`
	Error          string `json:"error,omitempty"`
	Report         any    `json:"report,omitempty"`
}

// Current is the step running now, or the last one.
func (p *Progress) Current() *Step {
	for i := range p.Steps {
		if p.Steps[i].Status == "running" {
			return &p.Steps[i]
		}
	}
	if len(p.Steps) == 0 {
		return nil
	}
	return &p.Steps[len(p.Steps)-1]
}

// tracker updates Progress and what the Web UI shows as current details,
// and emits the run's metrics through the workflow's metrics handler, which
// records nothing while a history replays: each step and run is counted
// once, by the worker that ran it live.
type tracker struct {
	ctx workflow.Context
	p   *Progress
	// sent is what the byte, record and loss counters have been given, so
	// each details() adds only what moved since. It is rebuilt by replay
	// like the rest of the workflow's state, so a worker that takes a run
	// over does not count it again from zero.
	sent struct{ bytes, records, lost int64 }
}

func newTracker(ctx workflow.Context, p *Progress, steps ...string) *tracker {
	for _, s := range steps {
		p.Steps = append(p.Steps, Step{Name: s, Status: "pending"})
	}
	return &tracker{ctx: ctx, p: p}
}

// metricRun names the run in its metrics: the kind of its workflow type (Progress
// .Kind is for people: "backup (full)"), its cluster and task.
func (t *tracker) metricRun() metrics.Run {
	return metrics.Run{Kind: names.KindOf(workflow.GetInfo(t.ctx).WorkflowType.Name), Cluster: t.p.Cluster, Task: t.p.Task}
}

func (t *tracker) metrics() client.MetricsHandler { return workflow.GetMetricsHandler(t.ctx) }

func (t *tracker) step(name string) *Step {
	for i := range t.p.Steps {
		if t.p.Steps[i].Name == name {
			return &t.p.Steps[i]
		}
	}
	t.p.Steps = append(t.p.Steps, Step{Name: name})
	return &t.p.Steps[len(t.p.Steps)-1]
}

func (t *tracker) start(name string) {
	s := t.step(name)
	s.Status, s.StartedAt = "running", workflow.Now(t.ctx)
	metrics.StepStarted(t.metrics(), t.metricRun(), name)
	t.details()
}

func (t *tracker) done(name, detail string) {
	s := t.step(name)
	s.Status, s.EndedAt, s.Detail = "done", workflow.Now(t.ctx), detail
	t.ended(s, metrics.OutcomeDone)
	t.details()
}

func (t *tracker) skip(name, why string) {
	s := t.step(name)
	s.Status, s.Detail = "skipped", why
	if !s.StartedAt.IsZero() { // started by run(), then found not to apply
		s.EndedAt = workflow.Now(t.ctx)
		t.ended(s, metrics.OutcomeSkipped)
	}
}

func (t *tracker) fail(name string, err error) {
	s := t.step(name)
	s.Status, s.EndedAt, s.Detail = "failed", workflow.Now(t.ctx), err.Error()
	t.p.Error = fmt.Sprintf("%s: %v", name, err)
	t.ended(s, metrics.OutcomeFailed)
	t.details()
}

// ended records a step's time; a step a previous run completed (never
// started in this one) has none.
func (t *tracker) ended(s *Step, outcome string) {
	if s.StartedAt.IsZero() {
		return
	}
	metrics.StepEnded(t.metrics(), t.metricRun(), s.Name, outcome, s.EndedAt.Sub(s.StartedAt))
}

// end is the run's last word, once its Status is final: the Web UI's
// details, the run's outcome and time, and for a backup that succeeded the
// task's last-success time, which operators alert on.
func (t *tracker) end() {
	t.details()
	now := workflow.Now(t.ctx)
	r := t.metricRun()
	metrics.RunEnded(t.metrics(), r, t.p.Status, now.Sub(workflow.GetInfo(t.ctx).WorkflowStartTime))
	if r.Kind == names.KindBackup && t.p.Status == names.StatusSucceeded {
		metrics.BackupSucceeded(t.metrics(), r.Cluster, r.Task, now)
	}
}

// pruned counts what the retention step deleted.
func (t *tracker) pruned(pr activities.PruneResult) {
	metrics.RetentionDeleted(t.metrics(), t.p.Cluster, t.p.Task, len(pr.DeletedManifests), pr.DeletedFiles, pr.DeletedBytes)
}

// settleExport sets a finished export's progress from its units' results,
// which hold every unit: a child's last UnitDone signals can reach the
// parent after the child's result, once nothing reads them, and the run
// would end showing (and reporting to its metrics) less than it moved.
func (t *tracker) settleExport(rs []activities.UnitResult) {
	var parts int
	var records, bytes, lost int64
	lostParts := 0
	for _, r := range rs {
		parts += r.Part.Partitions
		records += r.Part.Records
		bytes += r.Part.Bytes
		lost += r.LostOffsets
		lostParts += r.LostPartitions
	}
	p := t.p
	p.UnitsDone, p.PartitionsDone = max(p.UnitsDone, len(rs)), max(p.PartitionsDone, parts)
	p.RecordsDone, p.BytesDone = max(p.RecordsDone, records), max(p.BytesDone, bytes)
	p.RecordsLost, p.LostPartitions = max(p.RecordsLost, lost), max(p.LostPartitions, lostParts)
	t.details()
}

// settleImport is settleExport for a restore's units.
func (t *tracker) settleImport(rs []activities.ImportUnitResult) {
	var parts int
	var records int64
	for _, r := range rs {
		parts += r.Partitions
		records += r.Records
	}
	p := t.p
	p.UnitsDone, p.PartitionsDone, p.RecordsDone = max(p.UnitsDone, len(rs)), max(p.PartitionsDone, parts), max(p.RecordsDone, records)
	t.details()
}

// emitProgress sets the run's progress gauges and adds what moved since the
// last call to the totals.
func (t *tracker) emitProgress() {
	p := t.p
	if p.PartitionsTotal == 0 && p.RecordsTotal == 0 && p.EstimatedBytes == 0 && p.BytesDone == 0 && p.RecordsDone == 0 {
		return // nothing planned yet: no series for a run that moves nothing
	}
	h, r := t.metrics(), t.metricRun()
	metrics.SetProgress(h, r, metrics.Progress{
		BytesDone: p.BytesDone, BytesPlanned: p.EstimatedBytes,
		RecordsDone: p.RecordsDone, RecordsPlanned: p.RecordsTotal,
		PartitionsDone: p.PartitionsDone, PartitionsPlanned: p.PartitionsTotal,
		LostPartitions: p.LostPartitions,
	})
	metrics.Moved(h, r, p.BytesDone-t.sent.bytes, p.RecordsDone-t.sent.records, p.RecordsLost-t.sent.lost)
	t.sent.bytes, t.sent.records, t.sent.lost = max(t.sent.bytes, p.BytesDone), max(t.sent.records, p.RecordsDone), max(t.sent.lost, p.RecordsLost)
}

// details is the summary the Web UI shows on the run's page.
func (t *tracker) details() {
	p := t.p
	s := fmt.Sprintf("**%s %s** — %s", p.Kind, p.Cluster, p.Status)
	if p.Waiting != "" {
		s += "\n\n" + p.Waiting
	}
	for _, st := range p.Steps {
		s += fmt.Sprintf("\n- %s: %s", st.Name, st.Status)
		if st.Detail != "" {
			s += " (" + st.Detail + ")"
		}
	}
	if p.PartitionsTotal > 0 {
		s += fmt.Sprintf("\n\npartitions %d/%d, records %d, bytes %d", p.PartitionsDone, p.PartitionsTotal, p.RecordsDone, p.BytesDone)
		if p.UnitsTotal > 0 {
			s += fmt.Sprintf(", work units %d/%d", p.UnitsDone, p.UnitsTotal)
		}
	}
	if p.RecordsLost > 0 {
		s += fmt.Sprintf("\n\n**records lost**: %d offsets in %d partitions were deleted by retention before the backup read them", p.RecordsLost, p.LostPartitions)
	}
	if p.RecoveryPoint != "" {
		s += "\n\nrecovery point: " + p.RecoveryPoint
	}
	workflow.SetCurrentDetails(t.ctx, s)
	t.emitProgress()
}
