package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/workflows"
)

// metadataRestoreOpts are the options of `kbr restore metadata`.
type metadataRestoreOpts struct {
	conn  connOpts
	file  fileOpts
	start startOpts
}

func newMetadataRestoreOpts() *metadataRestoreOpts {
	return &metadataRestoreOpts{
		file: fileOpts{what: "metadata restore config (YAML)", arg: "CONFIG"},
		start: startOpts{idHelp: "restore id, the workflow id (default metarestore-<cluster>-<time>)",
			detachHelp: "start and print the restore id without waiting"},
	}
}

func (o *metadataRestoreOpts) AddFlags(fs *pflag.FlagSet) {
	o.conn.AddFlags(fs)
	o.file.AddFlags(fs)
	o.start.AddFlags(fs)
}

// metadataRestoreCmd is `kbr restore metadata -f FILE`.
func metadataRestoreCmd() *cobra.Command {
	o := newMetadataRestoreOpts()
	cmd := &cobra.Command{
		Use:   "metadata -f CONFIG",
		Short: "Restore a ZooKeeper-mode cluster's metadata the MRS way (stops and starts every broker through its agent)",
		Long: `Starts a MetadataRestoreWorkflow: preflight (the backup verifies, the cluster's
Kafka version equals the backup's, every broker's agent answers, ZooKeeper is
reachable), a safety backup of the current metadata, stop Kafka on every
broker, restore the znodes, fix cluster.id in every log dir, start Kafka,
wait until every broker is registered and no partition is under-replicated.

The workflow id is the restore id. A restore that succeeded cannot run
again; one that failed is resumed with 'kbr restore retry ID'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := interruptible()
			defer stop()
			return runMetadataRestore(ctx, o, streamsOf(cmd))
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// runMetadataRestore starts a MetadataRestoreWorkflow from the config file
// and follows it.
func runMetadataRestore(ctx context.Context, o *metadataRestoreOpts, s streams) error {
	cfg, err := loadConfig(o.file, config.LoadMetadataRestore)
	if err != nil {
		return err
	}
	cl, err := o.conn.dial(ctx, nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	id := o.start.runID("metarestore", cfg.Cluster.Name)
	return startMetadataRestore(ctx, cl, s, id, workflows.MetadataRestoreInput{MetadataRestore: *cfg}, o.start)
}

// startMetadataRestore starts (or, with the input of a failed run, starts
// again) the metadata restore id and follows it.
func startMetadataRestore(ctx context.Context, cl client.Client, s streams, id string, in workflows.MetadataRestoreInput, o startOpts) error {
	var rep workflows.MetaRestoreReport
	if ok, err := startRestoreOnce(ctx, cl, s, id, in.Cluster.Name, names.KindMetadataRestore, names.MetadataRestoreWorkflow, in, o, &rep); !ok {
		return err
	}
	return o.print(s.out, map[string]any{"workflow_id": id, "status": names.StatusSucceeded, "result": rep}, func() {
		fmt.Fprintf(s.out, "metadata restore %s succeeded: %s\n", id, rep.RecoveryPoint.Manifest)
		fmt.Fprintf(s.out, "  cluster id %s; %d brokers registered, %d partitions, none under-replicated\n", rep.ClusterID, len(rep.Health.Brokers), rep.Health.Partitions)
		for _, f := range rep.ClusterIDs {
			for _, fx := range f.Fixes {
				fmt.Fprintf(s.out, "  %s %s: %s\n", f.Host, fx.Dir, fx.Status)
			}
		}
		for _, n := range rep.Notes {
			fmt.Fprintln(s.out, "  note:", n)
		}
	})
}

// startRestoreOnce starts the restore id (a metadata restore: run once,
// resumed by id) and follows it. It says true when the restore succeeded
// and its report, in rep, is to be printed; otherwise the error to return
// (nil for --detach).
func startRestoreOnce(ctx context.Context, cl client.Client, s streams, id, cluster, kind, workflow string, in any, o startOpts, rep any) (bool, error) {
	opts := client.StartWorkflowOptions{ID: id,
		// A restore that succeeded cannot run again; a failed one can.
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		// Without it the SDK hands back the existing run instead of refusing.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			names.SACluster.ValueSet(cluster), names.SAKind.ValueSet(kind), names.SAStatus.ValueSet(names.StatusRunning))}
	_, err := startAndWatch(ctx, cl, s, opts, workflow, in, o, rep)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return false, withCode(exitBadInput, fmt.Errorf("restore %s already ran and succeeded, or is running: a restore runs once (kbr restore status %s)", id, id))
	}
	if err != nil || o.detach {
		if err != nil && !o.json {
			fmt.Fprintf(s.err, "resume it with: kbr restore retry %s\n", id)
		}
		return false, err
	}
	return true, nil
}
