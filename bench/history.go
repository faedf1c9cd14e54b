package main

// Where a kbr run's wall time goes, read from its Temporal history: the
// workflow's span, and per activity type the span, run times and how long
// activities waited in the task queue, and how long the workflow took to
// schedule the next partition after one finished (a workflow-task round trip).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
)

// ActivityStats sums one activity type of a run.
type ActivityStats struct {
	Type       string  `json:"type"`
	Count      int     `json:"count"`
	Attempts   int     `json:"attempts"`
	FirstS     float64 `json:"first_scheduled_s"` // since the workflow started
	SpanS      float64 `json:"span_s"`            // first scheduled -> last closed
	RunMinS    float64 `json:"run_min_s"`
	RunMaxS    float64 `json:"run_max_s"`
	RunSumS    float64 `json:"run_sum_s"`
	QueueAvgS  float64 `json:"queue_avg_s"` // scheduled -> started
	QueueMaxS  float64 `json:"queue_max_s"`
	RefillAvgS float64 `json:"refill_avg_s,omitempty"` // one closed -> next of the type scheduled
	RefillMaxS float64 `json:"refill_max_s,omitempty"`
}

// Breakdown is a run's history, summed.
type Breakdown struct {
	WorkflowID string          `json:"workflow_id"`
	WorkflowS  float64         `json:"workflow_s"` // started -> completed
	Activities []ActivityStats `json:"activities"`
	// WorkflowTasks is how many workflow tasks ran and their total time
	// (scheduled -> completed): the workflow's own latency.
	WorkflowTasks  int     `json:"workflow_tasks"`
	WorkflowTaskS  float64 `json:"workflow_task_s"`
	HistoryEvents  int     `json:"history_events"`
	HeartbeatNotes string  `json:"-"`
}

func dialTemporal(ctx context.Context, addr string) (client.Client, error) {
	quiet := sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return client.DialContext(ctx, client.Options{HostPort: addr, Namespace: "default", Logger: quiet})
}

type histAct struct {
	typ                        string
	scheduled, started, closed time.Time
	attempt                    int
}

// historyBreakdown sums the run workflowID and, under the same activity
// types, every child workflow it started and every run any of them
// continued as (a restore's import units run in children). HistoryEvents
// and the workflow tasks are the parent's first run's.
func historyBreakdown(ctx context.Context, c client.Client, workflowID string) (*Breakdown, error) {
	type runRef struct{ id, run string }
	acts := map[string]*histAct{}
	var order []string
	var wfStart, wfEnd time.Time
	bd := &Breakdown{WorkflowID: workflowID}
	queue := []runRef{{id: workflowID}}
	for n := 0; len(queue) > 0 && n < 1000; n++ {
		ref := queue[0]
		queue = queue[1:]
		top := n == 0
		key := func(id int64) string { return fmt.Sprintf("%s/%s/%d", ref.id, ref.run, id) }
		wtSched := map[int64]time.Time{}
		it := c.GetWorkflowHistory(ctx, ref.id, ref.run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				return nil, err
			}
			t := ev.GetEventTime().AsTime()
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
				if top {
					wfStart = t
				}
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
				if top {
					wfEnd = t
				}
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
				queue = append(queue, runRef{id: ref.id, run: ev.GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()})
			case enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
				we := ev.GetChildWorkflowExecutionStartedEventAttributes().GetWorkflowExecution()
				queue = append(queue, runRef{id: we.GetWorkflowId(), run: we.GetRunId()})
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
				wtSched[ev.GetEventId()] = t
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
				a := ev.GetWorkflowTaskCompletedEventAttributes()
				if s, ok := wtSched[a.GetScheduledEventId()]; ok && top {
					bd.WorkflowTasks++
					bd.WorkflowTaskS += t.Sub(s).Seconds()
				}
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
				a := ev.GetActivityTaskScheduledEventAttributes()
				acts[key(ev.GetEventId())] = &histAct{typ: a.GetActivityType().GetName(), scheduled: t}
				order = append(order, key(ev.GetEventId()))
			case enumspb.EVENT_TYPE_MARKER_RECORDED:
				// A local activity: recorded when the workflow task that ran it
				// completed; its own run time is not in the history.
				m := ev.GetMarkerRecordedEventAttributes()
				var data struct{ ActivityType string }
				if p := m.GetDetails()["data"].GetPayloads(); m.GetMarkerName() == "LocalActivity" && len(p) > 0 &&
					json.Unmarshal(p[0].GetData(), &data) == nil && data.ActivityType != "" {
					acts[key(ev.GetEventId())] = &histAct{typ: "local " + data.ActivityType, scheduled: t, closed: t}
					order = append(order, key(ev.GetEventId()))
				}
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
				a := ev.GetActivityTaskStartedEventAttributes()
				if x := acts[key(a.GetScheduledEventId())]; x != nil {
					x.started, x.attempt = t, int(a.GetAttempt())
				}
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
				if x := acts[key(ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId())]; x != nil {
					x.closed = t
				}
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
				if x := acts[key(ev.GetActivityTaskFailedEventAttributes().GetScheduledEventId())]; x != nil {
					x.closed = t
				}
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
				if x := acts[key(ev.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId())]; x != nil {
					x.closed = t
				}
			}
			if top {
				bd.HistoryEvents++
			}
		}
	}
	if !wfStart.IsZero() && !wfEnd.IsZero() {
		bd.WorkflowS = wfEnd.Sub(wfStart).Seconds()
	}
	byType := map[string]*ActivityStats{}
	var types []string
	var closedAt = map[string][]time.Time{}
	var schedAt = map[string][]time.Time{}
	for _, id := range order {
		x := acts[id]
		s := byType[x.typ]
		if s == nil {
			s = &ActivityStats{Type: x.typ, FirstS: x.scheduled.Sub(wfStart).Seconds(), RunMinS: 1e9}
			byType[x.typ] = s
			types = append(types, x.typ)
		}
		s.Count++
		s.Attempts = max(s.Attempts, x.attempt)
		if !x.closed.IsZero() {
			s.SpanS = max(s.SpanS, x.closed.Sub(wfStart).Seconds()-s.FirstS)
			closedAt[x.typ] = append(closedAt[x.typ], x.closed)
		}
		schedAt[x.typ] = append(schedAt[x.typ], x.scheduled)
		if !x.started.IsZero() {
			q := x.started.Sub(x.scheduled).Seconds()
			s.QueueAvgS += q
			s.QueueMaxS = max(s.QueueMaxS, q)
			if !x.closed.IsZero() {
				r := x.closed.Sub(x.started).Seconds()
				s.RunSumS += r
				s.RunMinS = min(s.RunMinS, r)
				s.RunMaxS = max(s.RunMaxS, r)
			}
		}
	}
	for _, typ := range types {
		s := byType[typ]
		s.QueueAvgS /= float64(s.Count)
		if s.RunMinS == 1e9 {
			s.RunMinS = 0
		}
		// Refill: for each close, the first schedule of the same type after it.
		cl, sc := closedAt[typ], schedAt[typ]
		sort.Slice(cl, func(i, j int) bool { return cl[i].Before(cl[j]) })
		sort.Slice(sc, func(i, j int) bool { return sc[i].Before(sc[j]) })
		n, j := 0, 0
		for _, c := range cl {
			for j < len(sc) && !sc[j].After(c) {
				j++
			}
			if j == len(sc) {
				break
			}
			d := sc[j].Sub(c).Seconds()
			s.RefillAvgS += d
			s.RefillMaxS = max(s.RefillMaxS, d)
			n++
			j++
		}
		if n > 0 {
			s.RefillAvgS /= float64(n)
		}
		bd.Activities = append(bd.Activities, *s)
	}
	return bd, nil
}

// String is a few lines for the report.
func (bd *Breakdown) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "workflow %.2fs, %d workflow tasks (%.2fs in all), %d history events", bd.WorkflowS, bd.WorkflowTasks, bd.WorkflowTaskS, bd.HistoryEvents)
	for _, a := range bd.Activities {
		fmt.Fprintf(&b, "\n      %-22s x%-3d at +%.2fs span %.2fs  run %.2f..%.2fs (sum %.2fs)  queue avg %.3fs max %.3fs",
			a.Type, a.Count, a.FirstS, a.SpanS, a.RunMinS, a.RunMaxS, a.RunSumS, a.QueueAvgS, a.QueueMaxS)
		if a.Count > 1 {
			fmt.Fprintf(&b, "  refill avg %.3fs max %.3fs", a.RefillAvgS, a.RefillMaxS)
		}
		if a.Attempts > 1 {
			fmt.Fprintf(&b, "  max attempt %d", a.Attempts)
		}
	}
	return b.String()
}
