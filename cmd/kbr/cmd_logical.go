package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/workflows"
)

// logicalRestoreCmd is `kbr restore logical -f FILE [--dry-run]`.
func logicalRestoreCmd() *cobra.Command {
	var (
		c       conn
		file    string
		id      string
		jsonOut bool
		detach  bool
		dryRun  bool
	)
	cmd := &cobra.Command{
		Use:   "logical -f CONFIG",
		Short: "Restore logical metadata (topics, configs, ACLs, quotas; SCRAM users reported) into a cluster, typically a new KRaft one",
		Long: `Starts a LogicalRestoreWorkflow: verify the recovery point, plan (shown before
anything changes), create the topics with their partition counts and configs,
create the ACLs, set the client quotas, and list the SCRAM users whose
passwords must be set again (the Admin API never reveals them). With
--dry-run (or dry_run: true) only the plan is made and printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return withCode(exitBadInput, fmt.Errorf("-f CONFIG is required"))
			}
			cfg, err := config.LoadLogicalRestore(file)
			if err != nil {
				return withCode(exitBadInput, err)
			}
			if dryRun {
				cfg.DryRun = true
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			cl, err := c.dial(ctx, nil)
			if err != nil {
				return err
			}
			defer cl.Close()
			if id == "" {
				kind := "logical"
				if cfg.DryRun {
					kind = "logical-dryrun"
				}
				id = workflowID(kind, cfg.Cluster.Name, time.Now())
			}
			opts := client.StartWorkflowOptions{ID: id, TypedSearchAttributes: temporal.NewSearchAttributes(
				names.SACluster.ValueSet(cfg.Cluster.Name), names.SAKind.ValueSet(names.KindLogicalRestore),
				names.SAStatus.ValueSet(names.StatusRunning))}
			var res workflows.LogicalRestoreResult
			if err := startAndWatch(ctx, cl, opts, names.LogicalRestoreWorkflow, cfg, jsonOut, detach, &res); err != nil || detach {
				return err
			}
			return printJSONOr(jsonOut, map[string]any{"workflow_id": id, "status": names.StatusSucceeded, "result": res}, func() {
				printLogicalPlan(res)
			})
		},
	}
	c.flags(cmd)
	cmd.Flags().StringVarP(&file, "file", "f", "", "logical restore config (YAML)")
	cmd.Flags().StringVar(&id, "id", "", "workflow id (default logical-<cluster>-<time>)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "plan and print, change nothing")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "machine-readable output on stdout")
	cmd.Flags().BoolVar(&detach, "detach", false, "start and print the workflow id without waiting")
	return cmd
}

func printLogicalPlan(res workflows.LogicalRestoreResult) {
	if res.DryRun {
		fmt.Printf("dry run of %s: nothing was changed\n", res.RecoveryPoint)
	} else {
		fmt.Printf("logical restore of %s succeeded\n", res.RecoveryPoint)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tTARGET\tACTION\tPARTITIONS\tRF\tCONFIGS\tNOTE")
	for _, t := range res.Plan.Topics {
		var cfgs []string
		for k, v := range t.Configs {
			cfgs = append(cfgs, k+"="+v)
		}
		sort.Strings(cfgs)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", t.Source, t.Target, t.Action, t.Partitions, t.ReplicationFactor, strings.Join(cfgs, ","), t.Note)
	}
	tw.Flush()
	for _, a := range res.Plan.ACLs {
		fmt.Printf("ACL    %s\n", a)
	}
	for _, q := range res.Plan.Quotas {
		fmt.Printf("quota  %s %v\n", q.EntityString(), q.Values)
	}
	for _, u := range res.Plan.SCRAMUsers {
		var ms []string
		for _, m := range u.Mechanisms {
			ms = append(ms, fmt.Sprintf("%s/%d", m.Mechanism, m.Iterations))
		}
		fmt.Printf("SCRAM  %s %s (password to set again)\n", u.Name, strings.Join(ms, " "))
	}
	for _, n := range res.Plan.Notes {
		fmt.Println("note:", n)
	}
}
