package tasks

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/workflows"
)

// Execution is one run of a task, as `kbr task history` lists it.
type Execution struct {
	WorkflowID string        `json:"workflow_id"`
	RunID      string        `json:"run_id"`
	Status     string        `json:"status"` // running, succeeded, failed, canceled, terminated, timed out
	Start      time.Time     `json:"start"`
	End        *time.Time    `json:"end,omitempty"`
	Duration   time.Duration `json:"duration"`
	workflows.HistoryMemo
}

// History lists a task's runs, newest first, at most limit (0: 100).
func (m *Manager) History(ctx context.Context, name string, limit int) ([]Execution, error) {
	if limit <= 0 {
		limit = 100
	}
	q := fmt.Sprintf("%s = '%s' AND %s = '%s'", names.AttrTask, strings.ReplaceAll(name, "'", ""), names.AttrKind, names.KindBackup)
	var out []Execution
	var token []byte
	for len(out) < limit {
		resp, err := m.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: q, PageSize: int32(min(limit, 1000)), NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("history of task %s: %w", name, err)
		}
		for _, e := range resp.Executions {
			x := Execution{WorkflowID: e.Execution.WorkflowId, RunID: e.Execution.RunId, Status: statusName(e.Status),
				Start: e.StartTime.AsTime()}
			if e.CloseTime != nil && e.Status != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
				end := e.CloseTime.AsTime()
				x.End = &end
				x.Duration = end.Sub(x.Start).Round(time.Millisecond)
			} else {
				x.Duration = time.Since(x.Start).Round(time.Second)
			}
			if p, ok := e.GetMemo().GetFields()[names.MemoHistory]; ok {
				_ = converter.GetDefaultDataConverter().FromPayload(p, &x.HistoryMemo)
			}
			out = append(out, x)
		}
		token = resp.NextPageToken
		if len(token) == 0 {
			break
		}
	}
	// Newest first, whatever order the visibility store returns.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.After(out[j].Start) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func statusName(s enums.WorkflowExecutionStatus) string {
	switch s {
	case enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return "running"
	case enums.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return "succeeded"
	case enums.WORKFLOW_EXECUTION_STATUS_FAILED:
		return "failed"
	case enums.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return "canceled"
	case enums.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return "terminated"
	case enums.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return "timed out"
	case enums.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		return "continued"
	}
	return strings.ToLower(s.String())
}
