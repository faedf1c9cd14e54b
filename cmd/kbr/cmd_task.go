package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/internal/tasks"
	"github.com/kbr-project/kbr/workflows"
)

// taskFlags are shared by every `kbr task` command.
type taskFlags struct {
	conn
	jsonOut  bool
	maxTasks int
}

func (f *taskFlags) add(cmd *cobra.Command) {
	f.flags(cmd)
	cmd.Flags().BoolVar(&f.jsonOut, "json", false, "machine-readable output on stdout")
}

// manager dials Temporal; the caller closes the client.
func (f *taskFlags) manager(ctx context.Context) (*tasks.Manager, client.Client, error) {
	cl, err := f.dial(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	return &tasks.Manager{Client: cl, TaskQueue: names.TaskQueue, MaxTasks: f.maxTasks}, cl, nil
}

// do dials Temporal, runs fn with a task manager and hangs up.
func (f *taskFlags) do(ctx context.Context, fn func(m *tasks.Manager, cl client.Client) error) error {
	m, cl, err := f.manager(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	return fn(m, cl)
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
		taskSimpleCmd("delete", "Delete a task (its recovery points stay on the target)"),
		taskSimpleCmd("lock", "Lock (pause) a task: it does not run by itself until unlocked"),
		taskSimpleCmd("unlock", "Unlock a locked task"),
		taskRunCmd(), taskHistoryCmd())
	return cmd
}

func taskSaveCmd(verb string) *cobra.Command {
	var (
		f    taskFlags
		file string
	)
	cmd := &cobra.Command{
		Use:   verb + " -f TASK.yaml",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " a task from a YAML file (validated and checked against its cluster before it is stored)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return withCode(exitBadInput, fmt.Errorf("-f TASK.yaml is required"))
			}
			t, err := config.LoadTask(file)
			if err != nil {
				return withCode(exitBadInput, err)
			}
			ctx := context.Background()
			return f.do(ctx, func(m *tasks.Manager, cl client.Client) error {
				var info *tasks.Info
				if verb == "create" {
					info, err = m.Create(ctx, *t)
				} else {
					info, err = m.Update(ctx, *t)
				}
				if err != nil {
					return taskErr(fmt.Errorf("%s: %w", file, err))
				}
				return printJSONOr(f.jsonOut, info, func() { printTask(info) })
			})
		},
	}
	f.add(cmd)
	cmd.Flags().StringVarP(&file, "file", "f", "", "task definition (YAML)")
	if verb == "create" {
		def := config.DefaultMaxTasks
		if v, err := strconv.Atoi(os.Getenv("KBR_MAX_TASKS")); err == nil && v > 0 {
			def = v
		}
		cmd.Flags().IntVar(&f.maxTasks, "max-tasks", def, "refuse to create more tasks than this (env KBR_MAX_TASKS)")
	}
	return cmd
}

func taskShowCmd() *cobra.Command {
	var f taskFlags
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a task: its definition, lock state and next runs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			return f.do(ctx, func(m *tasks.Manager, cl client.Client) error {
				info, err := m.Show(ctx, args[0])
				if err != nil {
					return taskErr(err)
				}
				return printJSONOr(f.jsonOut, info, func() { printTask(info) })
			})
		},
	}
	f.add(cmd)
	return cmd
}

func printTask(t *tasks.Info) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
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
	var f taskFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every task",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			return f.do(ctx, func(m *tasks.Manager, cl client.Client) error {
				all, err := m.List(ctx)
				if err != nil {
					return taskErr(err)
				}
				return printJSONOr(f.jsonOut, all, func() {
					w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
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
		},
	}
	f.add(cmd)
	return cmd
}

func taskSimpleCmd(verb, short string) *cobra.Command {
	var (
		f    taskFlags
		note string
	)
	cmd := &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			return f.do(ctx, func(m *tasks.Manager, cl client.Client) error {
				var err error
				switch verb {
				case "delete":
					err = m.Delete(ctx, args[0])
				case "lock":
					err = m.Lock(ctx, args[0], note)
				case "unlock":
					err = m.Unlock(ctx, args[0])
				}
				if err != nil {
					return taskErr(err)
				}
				past := map[string]string{"delete": "deleted", "lock": "locked", "unlock": "unlocked"}[verb]
				return printJSONOr(f.jsonOut, map[string]string{"task": args[0], "status": past}, func() {
					fmt.Printf("task %s %s\n", args[0], past)
				})
			})
		},
	}
	f.add(cmd)
	if verb == "lock" {
		cmd.Flags().StringVar(&note, "note", "", "why it is locked (shown by kbr task show)")
	}
	return cmd
}

func taskRunCmd() *cobra.Command {
	var (
		f      taskFlags
		detach bool
	)
	cmd := &cobra.Command{
		Use:   "run NAME",
		Short: "Back Up Now: run a task at once (locked or not) and show its progress",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			return f.do(ctx, func(m *tasks.Manager, cl client.Client) error {
				run, err := m.Run(ctx, args[0])
				if err != nil {
					return taskErr(err)
				}
				if !f.jsonOut {
					fmt.Fprintf(os.Stderr, "task %s started: workflow id %s, run id %s\n", args[0], run.GetID(), run.GetRunID())
				}
				if detach {
					return printJSONOr(f.jsonOut, map[string]string{"workflow_id": run.GetID(), "run_id": run.GetRunID()}, func() {
						fmt.Println(run.GetID())
					})
				}
				if p, err := watch(ctx, cl, run, f.jsonOut); err != nil {
					return runFailed(names.BackupWorkflow, run, p, err, f.jsonOut)
				}
				var res workflows.BackupResult
				if err := run.Get(ctx, &res); err != nil {
					return withCode(exitFailed, err)
				}
				return printJSONOr(f.jsonOut, map[string]any{"workflow_id": run.GetID(), "status": names.StatusSucceeded, "result": res}, func() {
					fmt.Printf("%s backup succeeded: %d records, %d files, %d bytes\n", res.Kind, res.Totals.Records, res.Totals.Files, res.Totals.Bytes)
					fmt.Printf("recovery point: %s\n", res.RecoveryPoint)
					if res.Retention != nil {
						fmt.Printf("retention:      kept %d, deleted %d\n", len(res.Retention.Kept), len(res.Retention.DeletedManifests))
					}
				})
			})
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&detach, "detach", false, "print the workflow id and return at once")
	return cmd
}

func taskHistoryCmd() *cobra.Command {
	var (
		f     taskFlags
		limit int
	)
	cmd := &cobra.Command{
		Use:   "history NAME",
		Short: "List a task's executions: start, end, status, full or incremental, size, records, duration, backup path",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			return f.do(ctx, func(m *tasks.Manager, cl client.Client) error {
				hist, err := m.History(ctx, args[0], limit)
				if err != nil {
					return taskErr(err)
				}
				return printJSONOr(f.jsonOut, hist, func() {
					w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
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
		},
	}
	f.add(cmd)
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many executions, newest first")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clusterCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Clusters kbr backs up"}
	var (
		f        taskFlags
		file     string
		localDir string
	)
	reg := &cobra.Command{
		Use:   "register -f CLUSTER.yaml",
		Short: "Register a cluster: the first time, its default task is created (hourly full metadata backup to LocalDir, 168 copies)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return withCode(exitBadInput, fmt.Errorf("-f CLUSTER.yaml is required"))
			}
			c, err := config.LoadCluster(file)
			if err != nil {
				return withCode(exitBadInput, err)
			}
			dir, err := filepath.Abs(localDir)
			if err != nil {
				return withCode(exitBadInput, fmt.Errorf("--local-dir: %w", err))
			}
			ctx := context.Background()
			return f.do(ctx, func(m *tasks.Manager, cl client.Client) error {
				info, err := m.Register(ctx, *c, dir)
				if err != nil {
					return taskErr(fmt.Errorf("%s: %w", file, err))
				}
				if info == nil {
					return printJSONOr(f.jsonOut, map[string]string{"cluster": c.Name, "default_task": ""}, func() {
						fmt.Printf("cluster %s already has tasks: no default task created\n", c.Name)
					})
				}
				return printJSONOr(f.jsonOut, info, func() {
					fmt.Printf("cluster %s registered; default task created:\n", c.Name)
					printTask(info)
				})
			})
		},
	}
	f.add(reg)
	reg.Flags().StringVarP(&file, "file", "f", "", "the cluster (YAML: name, bootstrap_servers, zookeeper, tls, sasl as in a backup config)")
	reg.Flags().StringVar(&localDir, "local-dir", "./kbr-data/LocalBackup", "LocalDir of the default task (<data dir>/LocalBackup)")
	cmd.AddCommand(reg)
	return cmd
}
