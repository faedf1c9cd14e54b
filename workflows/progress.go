package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"
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

// tracker updates Progress and what the Web UI shows as current details.
type tracker struct {
	ctx workflow.Context
	p   *Progress
}

func newTracker(ctx workflow.Context, p *Progress, steps ...string) *tracker {
	for _, s := range steps {
		p.Steps = append(p.Steps, Step{Name: s, Status: "pending"})
	}
	return &tracker{ctx: ctx, p: p}
}

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
	t.details()
}

func (t *tracker) done(name, detail string) {
	s := t.step(name)
	s.Status, s.EndedAt, s.Detail = "done", workflow.Now(t.ctx), detail
	t.details()
}

func (t *tracker) skip(name, why string) {
	s := t.step(name)
	s.Status, s.Detail = "skipped", why
}

func (t *tracker) fail(name string, err error) {
	s := t.step(name)
	s.Status, s.EndedAt, s.Detail = "failed", workflow.Now(t.ctx), err.Error()
	t.p.Error = fmt.Sprintf("%s: %v", name, err)
	t.details()
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
}
