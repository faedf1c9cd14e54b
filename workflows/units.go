package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/internal/restoreplan"
)

// A backup or a restore runs its work units in child workflows, each a
// share of the units under a sliding window of activities, so that no
// history grows with the partition count: a child continues as new, with
// its state in its input, when its history grows long, and tells its parent
// after each unit (a signal) so the parent's progress stays live.

// DefaultMaxEvents is the history length past which a child continues as new.
var DefaultMaxEvents = 4000

// UnitsPerChild is how many work units one child is given.
var UnitsPerChild = 100

// UnitDone is what a child signals its parent after a unit.
type UnitDone struct {
	Unit       int   `json:"unit"`
	Partitions int   `json:"partitions"`
	Records    int64 `json:"records"`
	Bytes      int64 `json:"bytes"`
	// LostOffsets and LostPartitions: a backup's records deleted by
	// retention before the unit read them.
	LostOffsets    int64 `json:"lost_offsets,omitempty"`
	LostPartitions int   `json:"lost_partitions,omitempty"`
}

// ExportUnits is an ExportWorkflow's input and, across continue-as-new, its state.
type ExportUnits struct {
	Parent string `json:"parent"`
	// Template is every unit's input but its Unit.
	Template  activities.ExportUnitInput `json:"template"`
	Units     []activities.UnitRef       `json:"units"` // still to run
	Window    int                        `json:"window"`
	MaxEvents int                        `json:"max_events,omitempty"`
	Results   []activities.UnitResult    `json:"results,omitempty"` // done so far
}

// ExportWorkflow exports a share of a backup's work units.
func ExportWorkflow(ctx workflow.Context, in ExportUnits) ([]activities.UnitResult, error) {
	_ = workflow.UpsertTypedSearchAttributes(ctx, names.SACluster.ValueSet(in.Template.Cluster.Name), names.SAKind.ValueSet(names.KindExport))
	next, err := fanOut(ctx, len(in.Units), in.Window, func(i int) workflow.Future {
		u := in.Template
		u.Unit = in.Units[i]
		return workflow.ExecuteActivity(longOpts(ctx), a.ExportUnit, u)
	}, func(i int, f workflow.Future) error {
		var r activities.UnitResult
		if err := f.Get(ctx, &r); err != nil {
			return errf("unit %d: %w", in.Units[i].Unit, err)
		}
		in.Results = append(in.Results, r)
		tell(ctx, in.Parent, UnitDone{Unit: r.Unit, Partitions: r.Part.Partitions, Records: r.Part.Records, Bytes: r.Part.Bytes,
			LostOffsets: r.LostOffsets, LostPartitions: r.LostPartitions})
		return nil
	}, longHistory(ctx, in.MaxEvents), nil)
	if err != nil {
		return nil, err
	}
	if next < len(in.Units) {
		in.Units = in.Units[next:]
		return nil, workflow.NewContinueAsNewError(ctx, names.ExportWorkflow, in)
	}
	return in.Results, nil
}

// ImportUnits is an ImportWorkflow's input and, across continue-as-new, its state.
type ImportUnits struct {
	Parent    string                        `json:"parent"`
	Template  activities.ImportUnitInput    `json:"template"`
	Units     []restoreplan.UnitRef         `json:"units"`
	Window    int                           `json:"window"`
	MaxEvents int                           `json:"max_events,omitempty"`
	Results   []activities.ImportUnitResult `json:"results,omitempty"`
}

// ImportWorkflow restores a share of a restore's work units.
func ImportWorkflow(ctx workflow.Context, in ImportUnits) ([]activities.ImportUnitResult, error) {
	_ = workflow.UpsertTypedSearchAttributes(ctx, names.SACluster.ValueSet(in.Template.Config.Cluster.Name), names.SAKind.ValueSet(names.KindImport))
	next, err := fanOut(ctx, len(in.Units), in.Window, func(i int) workflow.Future {
		u := in.Template
		u.Unit = in.Units[i]
		return workflow.ExecuteActivity(longOpts(ctx), a.ImportUnit, u)
	}, func(i int, f workflow.Future) error {
		var r activities.ImportUnitResult
		if err := f.Get(ctx, &r); err != nil {
			return errf("unit %d: %w", in.Units[i].Index, err)
		}
		in.Results = append(in.Results, r)
		tell(ctx, in.Parent, UnitDone{Unit: r.Index, Partitions: r.Partitions, Records: r.Records})
		return nil
	}, longHistory(ctx, in.MaxEvents), nil)
	if err != nil {
		return nil, err
	}
	if next < len(in.Units) {
		in.Units = in.Units[next:]
		return nil, workflow.NewContinueAsNewError(ctx, names.ImportWorkflow, in)
	}
	return in.Results, nil
}

// tell signals a unit's end to the parent, without waiting.
func tell(ctx workflow.Context, parent string, d UnitDone) {
	if parent != "" {
		workflow.SignalExternalWorkflow(ctx, parent, "", names.SignalUnitDone, d)
	}
}

// longHistory says when a child should stop starting units and continue
// as new.
func longHistory(ctx workflow.Context, maxEvents int) func() bool {
	if maxEvents <= 0 {
		maxEvents = DefaultMaxEvents
	}
	return func() bool { return workflow.GetInfo(ctx).GetCurrentHistoryLength() > maxEvents }
}

// children runs a parent's units in children of UnitsPerChild units, at
// most two at once, parallelism activities in all; onDone takes each unit's
// signal. child starts the k-th child on units [from, to).
func children(ctx workflow.Context, p *Progress, units, parallelism int, child func(ctx workflow.Context, k, from, to, window int) workflow.ChildWorkflowFuture,
	result func(k int, f workflow.Future) error, onDone func(UnitDone)) error {
	n := (units + UnitsPerChild - 1) / UnitsPerChild
	at := min(n, 2)
	window := max(1, (parallelism+at-1)/max(1, at))
	running := map[int]string{}
	seen := map[int]bool{}
	signals := workflow.GetSignalChannel(ctx, names.SignalUnitDone)
	listRunning := func() {
		p.Running = p.Running[:0]
		for k := 0; k < n; k++ {
			if id, ok := running[k]; ok {
				p.Running = append(p.Running, id)
			}
		}
	}
	_, err := fanOut(ctx, n, at, func(k int) workflow.Future {
		from, to := k*UnitsPerChild, min(units, (k+1)*UnitsPerChild)
		running[k] = names.ChildID(workflow.GetInfo(ctx).WorkflowExecution.ID, "units", k)
		listRunning()
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: running[k]})
		return child(cctx, k, from, to, window)
	}, func(k int, f workflow.Future) error {
		delete(running, k)
		listRunning()
		return result(k, f)
	}, nil, func(sel workflow.Selector) {
		sel.AddReceive(signals, func(c workflow.ReceiveChannel, _ bool) {
			var d UnitDone
			c.Receive(ctx, &d)
			if !seen[d.Unit] {
				seen[d.Unit] = true
				onDone(d)
			}
		})
	})
	// Signals that came with the last results.
	for {
		var d UnitDone
		if !signals.ReceiveAsync(&d) {
			break
		}
		if !seen[d.Unit] {
			seen[d.Unit] = true
			onDone(d)
		}
	}
	p.Running = nil
	return err
}
