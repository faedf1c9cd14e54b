package e2e

import (
	"context"
	"path/filepath"
	"testing"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	sdkclient "go.temporal.io/sdk/client"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/catalog"
	"github.com/kbr-project/kbr/storage/localdir"
)

// wfRun is one run of a workflow, with its events.
type wfRun struct {
	id, runID string
	events    []*historypb.HistoryEvent
}

// runTree returns every run of a workflow (continued-as-new runs included)
// and, recursively, of its child workflows: a backup's and a restore's
// work units run in children.
func runTree(t *testing.T, c sdkclient.Client, id string) []wfRun {
	t.Helper()
	var out []wfRun
	var visit func(id, runID string)
	visit = func(id, runID string) {
		for {
			r := wfRun{id: id, runID: runID}
			it := c.GetWorkflowHistory(context.Background(), id, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			next := ""
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					t.Fatalf("history of %s: %v", id, err)
				}
				r.events = append(r.events, ev)
				if a := ev.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
					next = a.GetNewExecutionRunId()
				}
			}
			out = append(out, r)
			for _, ev := range r.events {
				if a := ev.GetChildWorkflowExecutionStartedEventAttributes(); a != nil {
					visit(a.GetWorkflowExecution().GetWorkflowId(), a.GetWorkflowExecution().GetRunId())
				}
			}
			if next == "" {
				return
			}
			runID = next
		}
	}
	visit(id, "")
	return out
}

// activityAttempts lists, per activity type, the highest attempt that
// started, over a workflow and its children.
func activityAttempts(t *testing.T, c sdkclient.Client, id string) map[string]int32 {
	t.Helper()
	out := map[string]int32{}
	for _, r := range runTree(t, c, id) {
		scheduled := map[int64]string{}
		for _, ev := range r.events {
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
				scheduled[ev.GetEventId()] = a.GetActivityType().GetName()
			}
			if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
				typ := scheduled[a.GetScheduledEventId()]
				out[typ] = max(out[typ], a.GetAttempt())
			}
		}
	}
	return out
}

// resumedIn reports whether an activity of one of the types ran a second
// attempt in a workflow or its children.
func resumedIn(t *testing.T, c sdkclient.Client, id string, types ...string) bool {
	t.Helper()
	at := activityAttempts(t, c, id)
	for _, typ := range types {
		if at[typ] > 1 {
			return true
		}
	}
	return false
}

// loadView reads a recovery point on a LocalDir target as a restore does.
func loadView(t *testing.T, target, manifest string) (*backupset.View, *localdir.Dir) {
	t.Helper()
	b, err := localdir.New(target)
	if err != nil {
		t.Fatal(err)
	}
	v, err := catalog.View(context.Background(), b, manifest, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v, b
}

// dataFiles lists a recovery point's own data files (packs, or format 1
// segments), paths on the LocalDir target.
func dataFiles(t *testing.T, target, manifest string) []string {
	t.Helper()
	b, err := localdir.New(target)
	if err != nil {
		t.Fatal(err)
	}
	l, err := catalog.RecoveryPoint(context.Background(), b, manifest, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range l.Parts {
		for _, f := range p.Files {
			out = append(out, filepath.Join(target, f.Name))
		}
	}
	for _, p := range l.Manifest.Partitions {
		for _, s := range p.Segments {
			out = append(out, filepath.Join(target, s.Name))
		}
	}
	return out
}
