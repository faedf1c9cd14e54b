// Package tasks keeps backup tasks as Temporal Schedules: one schedule per
// task, its action a BackupWorkflow whose input is the task's backup. The
// schedule is the durable home of the task (it survives a restart of the
// server and every worker sees it); its spec is the period, its pause is
// the task's lock. Everything here is validated before it is stored.
package tasks

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
)

// ScheduleIDPrefix heads every task's schedule id.
const ScheduleIDPrefix = "kbr-task-"

// CatchupWindow: a periodic run that cannot start within this long of its
// time is skipped to the next period (MRS).
const CatchupWindow = 120 * time.Second

// ScheduleID is a task's schedule id.
func ScheduleID(name string) string { return ScheduleIDPrefix + name }

// Manager stores tasks in a Temporal namespace.
type Manager struct {
	Client    client.Client
	TaskQueue string
	// MaxTasks bounds the number of tasks (default 100).
	MaxTasks int
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// ErrBadInput marks errors in what the operator gave: nothing was stored.
var ErrBadInput = errors.New("bad input")

func bad(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBadInput, fmt.Sprintf(format, a...))
}

// Info is a stored task as `kbr task show|list` print it.
type Info struct {
	config.Task
	Created  time.Time   `json:"created"`
	Locked   bool        `json:"locked"`
	LockNote string      `json:"lock_note,omitempty"`
	Next     []time.Time `json:"next_runs,omitempty"`
	Running  []string    `json:"running,omitempty"` // workflow ids
	// Missed and Skipped count runs skipped by the catch-up window and by overlap.
	Missed  int64 `json:"missed_catchup_window"`
	Skipped int64 `json:"skipped_overlap"`
	Runs    int64 `json:"runs_by_schedule"`
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Manager) maxTasks() int {
	if m.MaxTasks > 0 {
		return m.MaxTasks
	}
	return config.DefaultMaxTasks
}

func (m *Manager) queue() string {
	if m.TaskQueue != "" {
		return m.TaskQueue
	}
	return names.TaskQueue
}

// check validates a task, then has a worker check it against its
// cluster (reachable, every topic pattern matches), before it is stored.
func (m *Manager) check(ctx context.Context, t *config.Task) error {
	t.ApplyDefaults()
	if err := t.Validate(); err != nil {
		return bad("%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	run, err := m.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        fmt.Sprintf("kbr-task-check-%s-%d", t.Name, m.now().UnixNano()),
		TaskQueue: m.queue(), WorkflowExecutionTimeout: 3 * time.Minute,
		TypedSearchAttributes: temporal.NewSearchAttributes(names.SATask.ValueSet(t.Name), names.SAKind.ValueSet("task-check")),
	}, names.CheckTaskWorkflow, t.Backup)
	if err != nil {
		return fmt.Errorf("check task %s: %w", t.Name, err)
	}
	if err := run.Get(ctx, nil); err != nil {
		var app *temporal.ApplicationError
		if errors.As(err, &app) {
			return bad("task %s: %s", t.Name, app.Message())
		}
		return fmt.Errorf("check task %s: %w", t.Name, err)
	}
	return nil
}

// Create validates and stores a new task.
func (m *Manager) Create(ctx context.Context, t config.Task) (*Info, error) {
	ids, err := m.ids(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if t.Name != "" && id == ScheduleID(t.Name) {
			return nil, bad("name: a task named %q exists already (kbr task update changes it)", t.Name)
		}
	}
	if len(ids) >= m.maxTasks() {
		return nil, bad("there are %d tasks, the most allowed (--max-tasks %d): delete one first", len(ids), m.maxTasks())
	}
	if err := m.check(ctx, &t); err != nil {
		return nil, err
	}
	created := m.now().UTC().Truncate(time.Second)
	opts := client.ScheduleOptions{
		ID:            ScheduleID(t.Name),
		Spec:          spec(t),
		Action:        m.action(t, created),
		Overlap:       enums.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: CatchupWindow,
		Memo:          map[string]any{"kbr_task_created": created.Format(time.RFC3339)},
		TypedSearchAttributes: temporal.NewSearchAttributes(
			names.SACluster.ValueSet(t.Cluster.Name), names.SATask.ValueSet(t.Name)),
	}
	if _, err := m.Client.ScheduleClient().Create(ctx, opts); err != nil {
		var exists *serviceerror.AlreadyExists
		if errors.As(err, &exists) || strings.Contains(err.Error(), "already") {
			return nil, bad("name: a task named %q exists already", t.Name)
		}
		return nil, fmt.Errorf("store task %s: %w", t.Name, err)
	}
	return m.Show(ctx, t.Name)
}

// Update replaces a task's definition; its name, creation time and folder stay.
func (m *Manager) Update(ctx context.Context, t config.Task) (*Info, error) {
	if err := m.check(ctx, &t); err != nil {
		return nil, err
	}
	old, err := m.Show(ctx, t.Name)
	if err != nil {
		return nil, err
	}
	h := m.Client.ScheduleClient().GetHandle(ctx, ScheduleID(t.Name))
	sa := temporal.NewSearchAttributes(names.SACluster.ValueSet(t.Cluster.Name), names.SATask.ValueSet(t.Name))
	err = h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := in.Description.Schedule
		sp := spec(t)
		s.Spec = &sp
		s.Action = m.action(t, old.Created)
		if s.Policy == nil {
			s.Policy = &client.SchedulePolicies{}
		}
		s.Policy.Overlap = enums.SCHEDULE_OVERLAP_POLICY_SKIP
		s.Policy.CatchupWindow = CatchupWindow
		return &client.ScheduleUpdate{Schedule: &s, TypedSearchAttributes: &sa}, nil
	}})
	if err != nil {
		return nil, fmt.Errorf("update task %s: %w", t.Name, err)
	}
	return m.Show(ctx, t.Name)
}

func spec(t config.Task) client.ScheduleSpec {
	if t.Mode != config.ModePeriodic {
		return client.ScheduleSpec{}
	}
	every := t.Period.D()
	start := t.StartTime
	var offset time.Duration
	if !start.IsZero() {
		// Intervals count from the Unix epoch; the offset puts one on start.
		offset = time.Duration(start.UTC().UnixNano() % int64(every))
	}
	return client.ScheduleSpec{
		Intervals: []client.ScheduleIntervalSpec{{Every: every, Offset: offset}},
		StartAt:   start,
	}
}

func (m *Manager) action(t config.Task, created time.Time) *client.ScheduleWorkflowAction {
	return &client.ScheduleWorkflowAction{
		// The schedule appends the scheduled time to this id.
		ID:                 ScheduleID(t.Name),
		Workflow:           names.BackupWorkflow,
		Args:               []any{t.Run(created)},
		TaskQueue:          m.queue(),
		WorkflowRunTimeout: 0,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			names.SACluster.ValueSet(t.Cluster.Name), names.SATask.ValueSet(t.Name),
			names.SAKind.ValueSet(names.KindBackup), names.SAStatus.ValueSet(names.StatusRunning)),
	}
}

// Show reads a task back from its schedule.
func (m *Manager) Show(ctx context.Context, name string) (*Info, error) {
	h := m.Client.ScheduleClient().GetHandle(ctx, ScheduleID(name))
	d, err := h.Describe(ctx)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return nil, bad("no task named %q", name)
		}
		return nil, fmt.Errorf("read task %s: %w", name, err)
	}
	act, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok || len(act.Args) != 1 {
		return nil, fmt.Errorf("schedule %s is not a kbr task", ScheduleID(name))
	}
	var b config.Backup
	p, ok := act.Args[0].(*commonpb.Payload)
	if !ok {
		return nil, fmt.Errorf("schedule %s: unexpected action input %T", ScheduleID(name), act.Args[0])
	}
	if err := converter.GetDefaultDataConverter().FromPayload(p, &b); err != nil {
		return nil, fmt.Errorf("schedule %s: action input: %w", ScheduleID(name), err)
	}
	info := &Info{Task: config.Task{Name: name, Mode: config.ModeManual, Backup: b}}
	if b.TaskCreated != nil {
		info.Created = *b.TaskCreated
		info.Task.Backup.TaskCreated = nil
	}
	if s := d.Schedule.Spec; s != nil && len(s.Intervals) > 0 {
		info.Mode = config.ModePeriodic
		info.Period = config.Duration(s.Intervals[0].Every)
		info.StartTime = s.StartAt
	}
	if st := d.Schedule.State; st != nil {
		info.Locked, info.LockNote = st.Paused, st.Note
	}
	info.Next = d.Info.NextActionTimes
	for _, r := range d.Info.RunningWorkflows {
		info.Running = append(info.Running, r.WorkflowID)
	}
	info.Missed = int64(d.Info.NumActionsMissedCatchupWindow)
	info.Skipped = int64(d.Info.NumActionsSkippedOverlap)
	info.Runs = int64(d.Info.NumActions)
	return info, nil
}

// List returns every task, by name.
func (m *Manager) List(ctx context.Context) ([]*Info, error) {
	ids, err := m.ids(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Info
	for _, id := range ids {
		i, err := m.Show(ctx, strings.TrimPrefix(id, ScheduleIDPrefix))
		if errors.Is(err, ErrBadInput) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, nil
}

// ids lists the schedule ids of every task.
func (m *Manager) ids(ctx context.Context) ([]string, error) {
	it, err := m.Client.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 1000})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	var ids []string
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("list tasks: %w", err)
		}
		if strings.HasPrefix(e.ID, ScheduleIDPrefix) {
			ids = append(ids, e.ID)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Delete removes a task. Its recovery points stay on the target.
func (m *Manager) Delete(ctx context.Context, name string) error {
	if _, err := m.Show(ctx, name); err != nil {
		return err
	}
	if err := m.Client.ScheduleClient().GetHandle(ctx, ScheduleID(name)).Delete(ctx); err != nil {
		return fmt.Errorf("delete task %s: %w", name, err)
	}
	return nil
}

// Lock pauses a task: it never runs by itself until unlocked.
func (m *Manager) Lock(ctx context.Context, name, note string) error {
	if _, err := m.Show(ctx, name); err != nil {
		return err
	}
	if note == "" {
		note = "locked with kbr task lock"
	}
	return m.Client.ScheduleClient().GetHandle(ctx, ScheduleID(name)).Pause(ctx, client.SchedulePauseOptions{Note: note})
}

// Unlock resumes a locked task.
func (m *Manager) Unlock(ctx context.Context, name string) error {
	if _, err := m.Show(ctx, name); err != nil {
		return err
	}
	return m.Client.ScheduleClient().GetHandle(ctx, ScheduleID(name)).Unpause(ctx, client.ScheduleUnpauseOptions{Note: "unlocked with kbr task unlock"})
}

// Run is "Back Up Now": it starts a run of the task at once, locked or
// not, and returns its workflow id. The run waits for the cluster lock like
// any other and is refused while the same task runs.
func (m *Manager) Run(ctx context.Context, name string) (client.WorkflowRun, error) {
	info, err := m.Show(ctx, name)
	if err != nil {
		return nil, err
	}
	in := info.Task.Run(info.Created)
	now := m.now().UTC()
	id := fmt.Sprintf("%s%s-now-%s", ScheduleIDPrefix, name, now.Format("20060102T150405.000Z"))
	return m.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: m.queue(),
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			names.SACluster.ValueSet(in.Cluster.Name), names.SATask.ValueSet(name),
			names.SAKind.ValueSet(names.KindBackup), names.SAStatus.ValueSet(names.StatusRunning)),
	}, names.BackupWorkflow, in)
}
