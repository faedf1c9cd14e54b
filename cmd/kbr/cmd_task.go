package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/internal/tasks"
	"github.com/kbr-project/kbr/workflows"
)

// taskOpts are the options every `kbr task` command (and `kbr cluster
// register`) shares: the connection and --json.
type taskOpts struct {
	conn     connOpts
	out      outputOpts
	maxTasks int // 0: the manager's default
}

func (o *taskOpts) AddFlags(fs *pflag.FlagSet) {
	o.conn.AddFlags(fs)
	o.out.AddFlags(fs)
}

// do dials Temporal, runs fn with a task manager and hangs up.
func (o *taskOpts) do(ctx context.Context, fn func(m *tasks.Manager, cl client.Client) error) error {
	cl, err := o.conn.dial(ctx, nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	return fn(&tasks.Manager{Client: cl, TaskQueue: names.TaskQueue, MaxTasks: o.maxTasks}, cl)
}

// taskErr gives bad input its exit code.
func taskErr(err error) error {
	if errors.Is(err, tasks.ErrBadInput) {
		return withCode(exitBadInput, errors.New(strings.TrimPrefix(err.Error(), tasks.ErrBadInput.Error()+": ")))
	}
	return withCode(exitFailed, err)
}

func taskCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "task", Short: "Backup tasks: periodic or manual, kept as Temporal Schedules"}
	cmd.AddCommand(taskSaveCmd("create"), taskSaveCmd("update"), taskShowCmd(), taskListCmd(),
		taskChangeCmd("delete", "Delete a task (its recovery points stay on the target)"),
		taskChangeCmd("lock", "Lock (pause) a task: it does not run by itself until unlocked"),
		taskChangeCmd("unlock", "Unlock a locked task"),
		taskRunCmd(), taskHistoryCmd())
	return cmd
}

// taskSaveOpts are the options of `kbr task create|update`.
type taskSaveOpts struct {
	taskOpts
	file fileOpts
	verb string // create or update
}

func (o *taskSaveOpts) AddFlags(fs *pflag.FlagSet) {
	o.taskOpts.AddFlags(fs)
	o.file.AddFlags(fs)
	if o.verb == "create" {
		def := config.DefaultMaxTasks
		if v, err := strconv.Atoi(os.Getenv("KBR_MAX_TASKS")); err == nil && v > 0 {
			def = v
		}
		fs.IntVar(&o.maxTasks, "max-tasks", def, "refuse to create more tasks than this (env KBR_MAX_TASKS)")
	}
}

func taskSaveCmd(verb string) *cobra.Command {
	o := &taskSaveOpts{verb: verb, file: fileOpts{what: "task definition (YAML)", arg: "TASK.yaml"}}
	cmd := &cobra.Command{
		Use:   verb + " -f TASK.yaml",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " a task from a YAML file (validated and checked against its cluster before it is stored)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTaskSave(context.Background(), o, streamsOf(cmd))
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// runTaskSave creates or updates the task of the file.
func runTaskSave(ctx context.Context, o *taskSaveOpts, s streams) error {
	if err := o.file.required(); err != nil {
		return err
	}
	t, err := config.LoadTask(o.file.path)
	if err != nil {
		return withCode(exitBadInput, err)
	}
	return o.do(ctx, func(m *tasks.Manager, cl client.Client) error {
		var info *tasks.Info
		if o.verb == "create" {
			info, err = m.Create(ctx, *t)
		} else {
			info, err = m.Update(ctx, *t)
		}
		if err != nil {
			return taskErr(fmt.Errorf("%s: %w", o.file.path, err))
		}
		return o.out.print(s.out, info, func() { printTask(s.out, info) })
	})
}

func taskShowCmd() *cobra.Command {
	o := &taskOpts{}
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a task: its definition, lock state and next runs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTaskShow(context.Background(), o, args[0], streamsOf(cmd))
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runTaskShow(ctx context.Context, o *taskOpts, name string, s streams) error {
	return o.do(ctx, func(m *tasks.Manager, cl client.Client) error {
		info, err := m.Show(ctx, name)
		if err != nil {
			return taskErr(err)
		}
		return o.out.print(s.out, info, func() { printTask(s.out, info) })
	})
}

func printTask(out io.Writer, t *tasks.Info) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "task\t%s\n", t.Name)
	fmt.Fprintf(w, "cluster\t%s\n", t.Cluster.Name)
	fmt.Fprintf(w, "mode\t%s\n", schedText(t))
	fmt.Fprintf(w, "policy\t%s\n", policyText(t.Backup))
	fmt.Fprintf(w, "data sources\t%s\n", strings.Join(t.DataSources, ", "))
	if len(t.Topics.Include)+len(t.Topics.Exclude) > 0 {
		fmt.Fprintf(w, "topics\tinclude %v exclude %v\n", t.Topics.Include, t.Topics.Exclude)
	}
	fmt.Fprintf(w, "path type\t%s\n", t.Target.String())
	fmt.Fprintf(w, "max copies\t%d\n", t.MaxCopies)
	fmt.Fprintf(w, "created\t%s\n", t.Created.Format(time.RFC3339))
	lock := "unlocked"
	if t.Locked {
		lock = "locked (" + t.LockNote + ")"
	}
	fmt.Fprintf(w, "state\t%s\n", lock)
	for i, n := range t.Next {
		if i < 3 {
			fmt.Fprintf(w, "next run\t%s\n", n.UTC().Format(time.RFC3339))
		}
	}
	for _, r := range t.Running {
		fmt.Fprintf(w, "running\t%s\n", r)
	}
	if t.Runs+t.Missed+t.Skipped > 0 {
		fmt.Fprintf(w, "scheduled runs\t%d started, %d skipped (still running), %d missed (not started within 120s)\n", t.Runs, t.Skipped, t.Missed)
	}
	w.Flush()
}

func schedText(t *tasks.Info) string {
	if t.Mode != config.ModePeriodic {
		return "manual"
	}
	s := "periodic, every " + periodText(t.Period.D())
	if !t.StartTime.IsZero() {
		s += " from " + t.StartTime.UTC().Format(time.RFC3339)
	}
	return s
}

func periodText(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func policyText(b config.Backup) string {
	switch b.Policy {
	case config.PolicyIncremental:
		return "full first, then incremental"
	case config.PolicyFullEveryN:
		return fmt.Sprintf("full once every %d runs, incremental between", b.FullEvery)
	}
	return "full every time"
}

func taskListCmd() *cobra.Command {
	o := &taskOpts{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every task",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTaskList(context.Background(), o, streamsOf(cmd))
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runTaskList(ctx context.Context, o *taskOpts, s streams) error {
	return o.do(ctx, func(m *tasks.Manager, cl client.Client) error {
		all, err := m.List(ctx)
		if err != nil {
			return taskErr(err)
		}
		return o.out.print(s.out, all, func() {
			w := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TASK\tCLUSTER\tMODE\tPOLICY\tPATH TYPE\tMAX COPIES\tSTATE\tNEXT RUN")
			for _, t := range all {
				state, next := "unlocked", "-"
				if t.Locked {
					state = "locked"
				} else if len(t.Next) > 0 {
					next = t.Next[0].UTC().Format(time.RFC3339)
				}
				if len(t.Running) > 0 {
					state += ", running"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", t.Name, t.Cluster.Name, schedText(t), t.Policy, t.Target.Type, t.MaxCopies, state, next)
			}
			w.Flush()
		})
	})
}

// taskChangeOpts are the options of `kbr task delete|lock|unlock`.
type taskChangeOpts struct {
	taskOpts
	verb string
	note string // lock's --note
}

func (o *taskChangeOpts) AddFlags(fs *pflag.FlagSet) {
	o.taskOpts.AddFlags(fs)
	if o.verb == "lock" {
		fs.StringVar(&o.note, "note", "", "why it is locked (shown by kbr task show)")
	}
}

func taskChangeCmd(verb, short string) *cobra.Command {
	o := &taskChangeOpts{verb: verb}
	cmd := &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTaskChange(context.Background(), o, args[0], streamsOf(cmd))
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// runTaskChange deletes, locks or unlocks the task name.
func runTaskChange(ctx context.Context, o *taskChangeOpts, name string, s streams) error {
	past, ok := map[string]string{"delete": "deleted", "lock": "locked", "unlock": "unlocked"}[o.verb]
	if !ok {
		return withCode(exitBadInput, fmt.Errorf("kbr task %s: no such change", o.verb))
	}
	return o.do(ctx, func(m *tasks.Manager, cl client.Client) error {
		var err error
		switch o.verb {
		case "delete":
			err = m.Delete(ctx, name)
		case "lock":
			err = m.Lock(ctx, name, o.note)
		case "unlock":
			err = m.Unlock(ctx, name)
		}
		if err != nil {
			return taskErr(err)
		}
		return o.out.print(s.out, map[string]string{"task": name, "status": past}, func() {
			fmt.Fprintf(s.out, "task %s %s\n", name, past)
		})
	})
}

// taskRunOpts are the options of `kbr task run`.
type taskRunOpts struct {
	taskOpts
	detach bool
}

func (o *taskRunOpts) AddFlags(fs *pflag.FlagSet) {
	o.taskOpts.AddFlags(fs)
	fs.BoolVar(&o.detach, "detach", false, "print the workflow id and return at once")
}

func taskRunCmd() *cobra.Command {
	o := &taskRunOpts{}
	cmd := &cobra.Command{
		Use:   "run NAME",
		Short: "Back Up Now: run a task at once (locked or not) and show its progress",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := interruptible()
			defer stop()
			return runTaskRun(ctx, o, args[0], streamsOf(cmd))
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// runTaskRun starts the task's backup now and follows it.
func runTaskRun(ctx context.Context, o *taskRunOpts, name string, s streams) error {
	return o.do(ctx, func(m *tasks.Manager, cl client.Client) error {
		run, err := m.Run(ctx, name)
		if err != nil {
			return taskErr(err)
		}
		if !o.out.json {
			fmt.Fprintf(s.err, "task %s started: workflow id %s, run id %s\n", name, run.GetID(), run.GetRunID())
		}
		var res workflows.BackupResult
		if err := follow(ctx, cl, s, run, names.BackupWorkflow, startOpts{outputOpts: o.out, detach: o.detach}, &res); err != nil || o.detach {
			return err
		}
		return backupDone(s, o.out, run, res.Kind+" backup", res, func() {
			if res.Retention != nil {
				fmt.Fprintf(s.out, "retention:      kept %d, deleted %d\n", len(res.Retention.Kept), len(res.Retention.DeletedManifests))
			}
		})
	})
}

// taskHistoryOpts are the options of `kbr task history`.
type taskHistoryOpts struct {
	taskOpts
	limit int
}

func (o *taskHistoryOpts) AddFlags(fs *pflag.FlagSet) {
	o.taskOpts.AddFlags(fs)
	fs.IntVar(&o.limit, "limit", 100, "at most this many executions, newest first")
}

func taskHistoryCmd() *cobra.Command {
	o := &taskHistoryOpts{}
	cmd := &cobra.Command{
		Use:   "history NAME",
		Short: "List a task's executions: start, end, status, full or incremental, size, records, duration, backup path",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTaskHistory(context.Background(), o, args[0], streamsOf(cmd))
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

func runTaskHistory(ctx context.Context, o *taskHistoryOpts, name string, s streams) error {
	return o.do(ctx, func(m *tasks.Manager, cl client.Client) error {
		hist, err := m.History(ctx, name, o.limit)
		if err != nil {
			return taskErr(err)
		}
		return o.out.print(s.out, hist, func() {
			w := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "START\tEND\tSTATUS\tKIND\tSIZE\tRECORDS\tDURATION\tBACKUP PATH")
			for _, x := range hist {
				end := "-"
				if x.End != nil {
					end = x.End.UTC().Format(time.RFC3339)
				}
				path := x.Path
				if x.Error != "" {
					path = "error: " + firstLine(x.Error)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", x.Start.UTC().Format(time.RFC3339), end, x.Status,
					orDash(x.Kind), config.ByteSize(x.Bytes), x.Records, x.Duration.Round(time.Second), orDash(path))
			}
			w.Flush()
		})
	})
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
