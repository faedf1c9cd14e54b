package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/workflows"
)

func restoreCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "restore", Short: "Run restores"}
	var (
		c       conn
		file    string
		id      string
		jsonOut bool
		detach  bool
		toTime  string
	)
	run := &cobra.Command{
		Use:   "run -f CONFIG",
		Short: "Start a RestoreWorkflow from a YAML config and show its progress until it ends",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return withCode(exitBadInput, fmt.Errorf("-f CONFIG is required"))
			}
			cfg, err := config.LoadRestore(file)
			if err != nil {
				return withCode(exitBadInput, err)
			}
			if toTime != "" {
				t, err := time.Parse(time.RFC3339, toTime)
				if err != nil {
					return withCode(exitBadInput, fmt.Errorf("--to-time %q: want RFC 3339, e.g. 2026-11-22T10:00:00Z", toTime))
				}
				cfg.ToTime = &t
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			cl, err := c.dial(ctx, nil)
			if err != nil {
				return err
			}
			defer cl.Close()
			if id == "" {
				id = workflowID("restore", cfg.Cluster.Name, time.Now())
			}
			// A restore id runs once: a failed one is resumed with `kbr restore retry`.
			opts := client.StartWorkflowOptions{ID: id, WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, TypedSearchAttributes: temporal.NewSearchAttributes(
				names.SACluster.ValueSet(cfg.Cluster.Name), names.SAKind.ValueSet(names.KindRestore),
				names.SAStatus.ValueSet(names.StatusRunning))}
			var res workflows.RestoreResult
			if err := startAndWatch(ctx, cl, opts, names.RestoreWorkflow, cfg, jsonOut, detach, &res); err != nil || detach {
				return err
			}
			return printJSONOr(jsonOut, map[string]any{"workflow_id": id, "status": names.StatusSucceeded, "result": res}, func() {
				fmt.Printf("restore succeeded: %d records from %s\n", res.Records, res.RecoveryPoint)
				for _, t := range res.Topics {
					fmt.Printf("  %s -> %s (created %v)\n", t.Source, t.Target, t.Created)
				}
				if len(res.Groups) > 0 {
					fmt.Printf("  group offsets committed, translated: %v\n", res.Groups)
				}
				for _, w := range res.Warnings {
					fmt.Println("  note:", w)
				}
			})
		},
	}
	c.flags(run)
	run.Flags().StringVarP(&file, "file", "f", "", "restore config (YAML)")
	run.Flags().StringVar(&id, "id", "", "workflow id (default restore-<cluster>-<time>)")
	run.Flags().BoolVar(&jsonOut, "json", false, "machine-readable output on stdout")
	run.Flags().BoolVar(&detach, "detach", false, "start and print the workflow id without waiting")
	run.Flags().StringVar(&toTime, "to-time", "", "point in time (RFC 3339): each partition as it was then, group offsets as of then where the backup holds them")
	cmd.AddCommand(run, statusCmd("restore"), metadataRestoreCmd(), kraftRestoreCmd(), retryCmd(), logicalRestoreCmd())
	return cmd
}
