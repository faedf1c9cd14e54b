package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/workflows"
)

// restoreOpts are the options of `kbr restore run`.
type restoreOpts struct {
	conn   connOpts
	file   fileOpts
	start  startOpts
	toTime string
}

func newRestoreOpts() *restoreOpts {
	return &restoreOpts{
		file:  fileOpts{what: "restore config (YAML)", arg: "CONFIG"},
		start: startOpts{idHelp: "workflow id (default restore-<cluster>-<time>)"},
	}
}

func (o *restoreOpts) AddFlags(fs *pflag.FlagSet) {
	o.conn.AddFlags(fs)
	o.file.AddFlags(fs)
	o.start.AddFlags(fs)
	fs.StringVar(&o.toTime, "to-time", "", "point in time (RFC 3339): each partition as it was then, group offsets as of then where the backup holds them")
}

// restoreCmd is `kbr restore`: run, status, and the restores of their own
// files (metadata, retry, logical).
func restoreCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "restore", Short: "Run restores"}
	o := newRestoreOpts()
	run := &cobra.Command{
		Use:   "run -f CONFIG",
		Short: "Start a RestoreWorkflow from a YAML config and show its progress until it ends",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := interruptible()
			defer stop()
			return runRestore(ctx, o, streamsOf(cmd))
		},
	}
	o.AddFlags(run.Flags())
	cmd.AddCommand(run, statusCmd("restore"), metadataRestoreCmd(), kraftRestoreCmd(), retryCmd(), logicalRestoreCmd(), schemasRestoreCmd())
	return cmd
}

// runRestore starts a RestoreWorkflow from the config file and follows it.
func runRestore(ctx context.Context, o *restoreOpts, s streams) error {
	cfg, err := loadConfig(o.file, config.LoadRestore)
	if err != nil {
		return err
	}
	if o.toTime != "" {
		t, err := time.Parse(time.RFC3339, o.toTime)
		if err != nil {
			return withCode(exitBadInput, fmt.Errorf("--to-time %q: want RFC 3339, e.g. 2026-11-22T10:00:00Z", o.toTime))
		}
		cfg.ToTime = &t
	}
	cl, err := o.conn.dial(ctx, nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	id := o.start.runID("restore", cfg.Cluster.Name)
	// A restore id runs once: a failed one is resumed with `kbr restore retry`.
	opts := client.StartWorkflowOptions{ID: id, WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, TypedSearchAttributes: temporal.NewSearchAttributes(
		names.SACluster.ValueSet(cfg.Cluster.Name), names.SAKind.ValueSet(names.KindRestore),
		names.SAStatus.ValueSet(names.StatusRunning))}
	var res workflows.RestoreResult
	if _, err := startAndWatch(ctx, cl, s, opts, names.RestoreWorkflow, cfg, o.start, &res); err != nil || o.start.detach {
		return err
	}
	return o.start.print(s.out, map[string]any{"workflow_id": id, "status": names.StatusSucceeded, "result": res}, func() {
		fmt.Fprintf(s.out, "restore succeeded: %d records from %s\n", res.Records, res.RecoveryPoint)
		for _, t := range res.Topics {
			fmt.Fprintf(s.out, "  %s -> %s (created %v)\n", t.Source, t.Target, t.Created)
		}
		if len(res.Groups) > 0 {
			fmt.Fprintf(s.out, "  group offsets committed, translated: %v\n", res.Groups)
		}
		for _, w := range res.Warnings {
			fmt.Fprintln(s.out, "  note:", w)
		}
	})
}
