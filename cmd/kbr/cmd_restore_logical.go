package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/workflows"
)

// logicalRestoreOpts are the options of `kbr restore logical`.
type logicalRestoreOpts struct {
	conn   connOpts
	file   fileOpts
	start  startOpts
	dryRun bool
}

func newLogicalRestoreOpts() *logicalRestoreOpts {
	return &logicalRestoreOpts{
		file:  fileOpts{what: "logical restore config (YAML)", arg: "CONFIG"},
		start: startOpts{idHelp: "workflow id (default logical-<cluster>-<time>)"},
	}
}

func (o *logicalRestoreOpts) AddFlags(fs *pflag.FlagSet) {
	o.conn.AddFlags(fs)
	o.file.AddFlags(fs)
	o.start.AddFlags(fs)
	fs.BoolVar(&o.dryRun, "dry-run", false, "plan and print, change nothing")
}

// logicalRestoreCmd is `kbr restore logical -f FILE [--dry-run]`.
func logicalRestoreCmd() *cobra.Command {
	o := newLogicalRestoreOpts()
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
			ctx, stop := interruptible()
			defer stop()
			return runLogicalRestore(ctx, o, streamsOf(cmd))
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// runLogicalRestore starts a LogicalRestoreWorkflow from the config file,
// follows it and prints its plan.
func runLogicalRestore(ctx context.Context, o *logicalRestoreOpts, s streams) error {
	cfg, err := loadConfig(o.file, config.LoadLogicalRestore)
	if err != nil {
		return err
	}
	if o.dryRun {
		cfg.DryRun = true
	}
	cl, err := o.conn.dial(ctx, nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	id := o.start.id
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
	if _, err := startAndWatch(ctx, cl, s, opts, names.LogicalRestoreWorkflow, cfg, o.start, &res); err != nil || o.start.detach {
		return err
	}
	return o.start.print(s.out, map[string]any{"workflow_id": id, "status": names.StatusSucceeded, "result": res}, func() {
		printLogicalPlan(s.out, res)
	})
}

func printLogicalPlan(w io.Writer, res workflows.LogicalRestoreResult) {
	if res.DryRun {
		fmt.Fprintf(w, "dry run of %s: nothing was changed\n", res.RecoveryPoint)
	} else {
		fmt.Fprintf(w, "logical restore of %s succeeded\n", res.RecoveryPoint)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
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
		fmt.Fprintf(w, "ACL    %s\n", a)
	}
	for _, q := range res.Plan.Quotas {
		fmt.Fprintf(w, "quota  %s %v\n", q.EntityString(), q.Values)
	}
	for _, u := range res.Plan.SCRAMUsers {
		var ms []string
		for _, m := range u.Mechanisms {
			ms = append(ms, fmt.Sprintf("%s/%d", m.Mechanism, m.Iterations))
		}
		fmt.Fprintf(w, "SCRAM  %s %s (password to set again)\n", u.Name, strings.Join(ms, " "))
	}
	for _, n := range res.Plan.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}
