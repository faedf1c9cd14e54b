package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/workflows"
)

// backupOpts are the options of `kbr backup run`.
type backupOpts struct {
	conn  connOpts
	file  fileOpts
	start startOpts
}

func newBackupOpts() *backupOpts {
	return &backupOpts{
		file:  fileOpts{what: "backup config (YAML)", arg: "CONFIG"},
		start: startOpts{idHelp: "workflow id (default backup-<task>-<time>)"},
	}
}

func (o *backupOpts) AddFlags(fs *pflag.FlagSet) {
	o.conn.AddFlags(fs)
	o.file.AddFlags(fs)
	o.start.AddFlags(fs)
}

func backupCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "backup", Short: "Run backups"}
	o := newBackupOpts()
	run := &cobra.Command{
		Use:   "run -f CONFIG",
		Short: "Start a BackupWorkflow from a YAML config and show its progress until it ends",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := interruptible()
			defer stop()
			return runBackup(ctx, o, streamsOf(cmd))
		},
	}
	o.AddFlags(run.Flags())
	cmd.AddCommand(run, statusCmd("backup"))
	return cmd
}

// runBackup starts a BackupWorkflow from the config file and follows it.
func runBackup(ctx context.Context, o *backupOpts, s streams) error {
	cfg, err := loadConfig(o.file, config.LoadBackup)
	if err != nil {
		return err
	}
	cl, err := o.conn.dial(ctx, nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	id := o.start.runID("backup", cfg.Task)
	opts := client.StartWorkflowOptions{ID: id, TypedSearchAttributes: temporal.NewSearchAttributes(
		names.SACluster.ValueSet(cfg.Cluster.Name), names.SATask.ValueSet(cfg.Task),
		names.SAKind.ValueSet(names.KindBackup), names.SAStatus.ValueSet(names.StatusRunning))}
	var res workflows.BackupResult
	run, err := startAndWatch(ctx, cl, s, opts, names.BackupWorkflow, cfg, o.start, &res)
	if err != nil || o.start.detach {
		return err
	}
	return backupDone(s, o.start.outputOpts, run, "backup", res, func() {
		fmt.Fprintf(s.out, "backup path:    %s/%s\n", cfg.Target.Path, res.TaskDir)
	})
}

// backupDone prints a completed backup's result (`backup run`, `task
// run`): "<what> succeeded", the totals and the recovery point, then more's
// lines. A backup that lost records is an error of its own, exit code 4:
// its recovery point exists but lacks them.
func backupDone(s streams, o outputOpts, run client.WorkflowRun, what string, res workflows.BackupResult, more func()) error {
	status, head := names.StatusSucceeded, what+" succeeded"
	if res.Lost != nil {
		status, head = names.StatusRecordsLost, what+" completed with records lost"
	}
	err := o.print(s.out, map[string]any{"workflow_id": run.GetID(), "status": status, "result": res}, func() {
		fmt.Fprintf(s.out, "%s: %d records, %d files, %d bytes\n", head, res.Totals.Records, res.Totals.Files, res.Totals.Bytes)
		fmt.Fprintf(s.out, "recovery point: %s\n", res.RecoveryPoint)
		if more != nil {
			more()
		}
	})
	if err != nil {
		return err
	}
	if res.Lost != nil {
		return withCode(exitRecordsLost, &recordsLost{lost: *res.Lost, recoveryPoint: res.RecoveryPoint, id: run.GetID(), runID: run.GetRunID()})
	}
	return nil
}

// recordsLost is a backup that completed although retention deleted some
// of the records of its cut before the export read them.
type recordsLost struct {
	lost          backupset.LostSummary
	recoveryPoint string
	id, runID     string
}

// Error is one line: how many offsets in how many partitions, the first
// ranges, the recovery point that lacks them and the run.
func (e *recordsLost) Error() string {
	l := e.lost
	s := fmt.Sprintf("backup lost records: %d offsets in %d partitions were deleted by retention before the backup read them", l.Offsets, l.Partitions)
	if len(l.Examples) > 0 {
		s += ": " + strings.Join(l.Examples, "; ")
		if l.Ranges > len(l.Examples) {
			s += fmt.Sprintf(" (the first %d of %d ranges)", len(l.Examples), l.Ranges)
		}
	}
	return s + fmt.Sprintf("; recovery point %s lacks them (workflow id %s, run id %s)", e.recoveryPoint, e.id, e.runID)
}
