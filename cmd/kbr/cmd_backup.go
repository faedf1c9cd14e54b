package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/workflows"
)

func backupCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "backup", Short: "Run backups"}
	var (
		c       conn
		file    string
		id      string
		jsonOut bool
		detach  bool
	)
	run := &cobra.Command{
		Use:   "run -f CONFIG",
		Short: "Start a BackupWorkflow from a YAML config and show its progress until it ends",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return withCode(exitBadInput, fmt.Errorf("-f CONFIG is required"))
			}
			cfg, err := config.LoadBackup(file)
			if err != nil {
				return withCode(exitBadInput, err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			cl, err := c.dial(ctx, nil)
			if err != nil {
				return err
			}
			defer cl.Close()
			if id == "" {
				id = workflowID("backup", cfg.Task, time.Now())
			}
			opts := client.StartWorkflowOptions{ID: id, TypedSearchAttributes: temporal.NewSearchAttributes(
				names.SACluster.ValueSet(cfg.Cluster.Name), names.SATask.ValueSet(cfg.Task),
				names.SAKind.ValueSet(names.KindBackup), names.SAStatus.ValueSet(names.StatusRunning))}
			var res workflows.BackupResult
			if err := startAndWatch(ctx, cl, opts, names.BackupWorkflow, cfg, jsonOut, detach, &res); err != nil || detach {
				return err
			}
			return printJSONOr(jsonOut, map[string]any{"workflow_id": id, "status": names.StatusSucceeded, "result": res}, func() {
				fmt.Printf("backup succeeded: %d records, %d files, %d bytes\n", res.Totals.Records, res.Totals.Files, res.Totals.Bytes)
				fmt.Printf("recovery point: %s\n", res.RecoveryPoint)
				fmt.Printf("backup path:    %s/%s\n", cfg.Target.Path, res.TaskDir)
			})
		},
	}
	c.flags(run)
	run.Flags().StringVarP(&file, "file", "f", "", "backup config (YAML)")
	run.Flags().StringVar(&id, "id", "", "workflow id (default backup-<task>-<time>)")
	run.Flags().BoolVar(&jsonOut, "json", false, "machine-readable output on stdout")
	run.Flags().BoolVar(&detach, "detach", false, "start and print the workflow id without waiting")
	cmd.AddCommand(run, statusCmd("backup"))
	return cmd
}

// statusCmd follows (or shows) a run by id.
func statusCmd(kind string) *cobra.Command {
	var (
		c       conn
		jsonOut bool
	)
	cmd := &cobra.Command{
		Use:   "status WORKFLOW_ID",
		Short: "Show the steps and progress of a " + kind,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			cl, err := c.dial(ctx, nil)
			if err != nil {
				return err
			}
			defer cl.Close()
			p, ok := query(ctx, cl, args[0])
			if !ok {
				return withCode(exitFailed, fmt.Errorf("no %s with workflow id %s answers the progress query", kind, args[0]))
			}
			live(ctx, cl, args[0], &p)
			return printJSONOr(jsonOut, p, func() {
				last := ""
				fmt.Printf("%s %s: %s\n", p.Kind, args[0], p.Status)
				printSteps(os.Stdout, p, &last, false)
				if p.PartitionsTotal > 0 {
					fmt.Println(progressLine(p, 0))
				}
				if p.RecoveryPoint != "" {
					fmt.Println("recovery point:", p.RecoveryPoint)
				}
				if p.Error != "" {
					fmt.Println("error:", p.Error)
				}
			})
		},
	}
	c.flags(cmd)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "machine-readable output")
	return cmd
}
