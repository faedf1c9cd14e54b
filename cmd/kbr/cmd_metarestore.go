package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/workflows"
)

// metadataRestoreCmd is `kbr restore metadata -f FILE`.
func metadataRestoreCmd() *cobra.Command {
	var (
		c       conn
		file    string
		id      string
		jsonOut bool
		detach  bool
	)
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
			if file == "" {
				return withCode(exitBadInput, fmt.Errorf("-f CONFIG is required"))
			}
			cfg, err := config.LoadMetadataRestore(file)
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
				id = workflowID("metarestore", cfg.Cluster.Name, time.Now())
			}
			return runMetadataRestore(ctx, cl, id, workflows.MetadataRestoreInput{MetadataRestore: *cfg}, jsonOut, detach)
		},
	}
	c.flags(cmd)
	cmd.Flags().StringVarP(&file, "file", "f", "", "metadata restore config (YAML)")
	cmd.Flags().StringVar(&id, "id", "", "restore id, the workflow id (default metarestore-<cluster>-<time>)")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "machine-readable output on stdout")
	cmd.Flags().BoolVar(&detach, "detach", false, "start and print the restore id without waiting")
	return cmd
}

func runMetadataRestore(ctx context.Context, cl client.Client, id string, in workflows.MetadataRestoreInput, jsonOut, detach bool) error {
	opts := client.StartWorkflowOptions{ID: id,
		// A restore that succeeded cannot run again; a failed one can.
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		// Without it the SDK hands back the existing run instead of refusing.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			names.SACluster.ValueSet(in.Cluster.Name), names.SAKind.ValueSet(names.KindMetadataRestore),
			names.SAStatus.ValueSet(names.StatusRunning))}
	var rep workflows.MetaRestoreReport
	err := startAndWatch(ctx, cl, opts, names.MetadataRestoreWorkflow, in, jsonOut, detach, &rep)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return withCode(exitBadInput, fmt.Errorf("restore %s already ran and succeeded, or is running: a restore runs once (kbr restore status %s)", id, id))
	}
	if err != nil || detach {
		if err != nil && !jsonOut {
			fmt.Fprintf(os.Stderr, "resume it with: kbr restore retry %s\n", id)
		}
		return err
	}
	return printJSONOr(jsonOut, map[string]any{"workflow_id": id, "status": names.StatusSucceeded, "result": rep}, func() {
		fmt.Printf("metadata restore %s succeeded: %s\n", id, rep.RecoveryPoint.Manifest)
		fmt.Printf("  cluster id %s; %d brokers registered, %d partitions, none under-replicated\n", rep.ClusterID, len(rep.Health.Brokers), rep.Health.Partitions)
		for _, f := range rep.ClusterIDs {
			for _, fx := range f.Fixes {
				fmt.Printf("  %s %s: %s\n", f.Host, fx.Dir, fx.Status)
			}
		}
		for _, n := range rep.Notes {
			fmt.Println("  note:", n)
		}
	})
}

// retryCmd is `kbr restore retry ID`.
func retryCmd() *cobra.Command {
	var (
		c       conn
		jsonOut bool
		detach  bool
	)
	cmd := &cobra.Command{
		Use:   "retry RESTORE_ID",
		Short: "Resume a failed restore, on the recovery point its failed run started: a metadata restore at the step that failed (completed steps are not repeated), a data restore with the plan its failed run fixed (what landed is not produced again)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			cl, err := c.dial(ctx, nil)
			if err != nil {
				return err
			}
			defer cl.Close()
			if handled, err := retryKRaftRestore(ctx, cl, id, jsonOut, detach); handled {
				return err
			}
			if d, err := cl.DescribeWorkflowExecution(ctx, id, ""); err == nil &&
				d.GetWorkflowExecutionInfo().GetType().GetName() == names.RestoreWorkflow {
				return retryDataRestore(ctx, cl, id, d, jsonOut, detach)
			}
			in, err := resumeInput(ctx, cl, id)
			if err != nil {
				return err
			}
			if !jsonOut {
				fmt.Fprintf(os.Stderr, "retrying restore %s; completed by run %s, not repeated: %v\n", id, in.Resume.FromRunID, in.Resume.Done)
			}
			return runMetadataRestore(ctx, cl, id, in, jsonOut, detach)
		},
	}
	c.flags(cmd)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "machine-readable output on stdout")
	cmd.Flags().BoolVar(&detach, "detach", false, "start and print the restore id without waiting")
	return cmd
}

// resumeInput builds the next run of a failed restore: the same input as
// its last run, with the steps that run (and the runs before it) completed,
// read from the run's memo.
func resumeInput(ctx context.Context, cl client.Client, id string) (workflows.MetadataRestoreInput, error) {
	var in workflows.MetadataRestoreInput
	d, err := cl.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return in, withCode(exitBadInput, fmt.Errorf("no restore with id %s", id))
		}
		return in, withCode(exitFailed, err)
	}
	info := d.GetWorkflowExecutionInfo()
	if t := info.GetType().GetName(); t != names.MetadataRestoreWorkflow {
		return in, withCode(exitBadInput, fmt.Errorf("%s is a %s; retry resumes metadata restores (%s)", id, t, names.MetadataRestoreWorkflow))
	}
	switch info.GetStatus() {
	case enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return in, withCode(exitBadInput, fmt.Errorf("restore %s is still running (kbr restore status %s)", id, id))
	case enums.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return in, withCode(exitBadInput, fmt.Errorf("restore %s succeeded: a restore runs once", id))
	}
	runID := info.GetExecution().GetRunId()
	it := cl.GetWorkflowHistory(ctx, id, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return in, withCode(exitFailed, fmt.Errorf("restore %s: no history", id))
	}
	ev, err := it.Next()
	if err != nil {
		return in, withCode(exitFailed, fmt.Errorf("restore %s: read history: %w", id, err))
	}
	attrs := ev.GetWorkflowExecutionStartedEventAttributes()
	if attrs == nil || len(attrs.GetInput().GetPayloads()) == 0 {
		return in, withCode(exitFailed, fmt.Errorf("restore %s: the first event holds no input", id))
	}
	dc := converter.GetDefaultDataConverter()
	if err := dc.FromPayload(attrs.GetInput().GetPayloads()[0], &in); err != nil {
		return in, withCode(exitFailed, fmt.Errorf("restore %s: decode its input: %w", id, err))
	}
	resume := &workflows.MetaResume{FromRunID: runID}
	if p, ok := info.GetMemo().GetFields()[names.MemoResume]; ok {
		if err := dc.FromPayload(p, resume); err != nil {
			return in, withCode(exitFailed, fmt.Errorf("restore %s: decode what it completed: %w", id, err))
		}
	} else if in.Resume != nil {
		// The failed run completed nothing new: keep what it was given.
		resume = in.Resume
	}
	in.Resume = resume
	// The recovery point the failed run resolved, not what "latest" names
	// now: steps it completed must not be mixed with another backup's.
	if rp := resume.State.RecoveryPoint; rp != nil {
		in.Source.RecoveryPoint = rp.Manifest
	}
	return in, nil
}

// zombieGrace is how long after a run ended its activities may still run.
const zombieGrace = 30 * time.Second

// retryDataRestore starts the next run of a failed (or terminated, timed
// out, canceled) RestoreWorkflow under the same id, with the plan the failed
// run fixed: the topics it created and each partition's base offset, so
// the records that landed are skipped and none is written twice.
func retryDataRestore(ctx context.Context, cl client.Client, id string, d *workflowservice.DescribeWorkflowExecutionResponse, jsonOut, detach bool) error {
	info := d.GetWorkflowExecutionInfo()
	switch info.GetStatus() {
	case enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return withCode(exitBadInput, fmt.Errorf("restore %s is still running (kbr restore status %s)", id, id))
	case enums.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return withCode(exitBadInput, fmt.Errorf("restore %s succeeded: a restore runs once", id))
	}
	runID := info.GetExecution().GetRunId()
	it := cl.GetWorkflowHistory(ctx, id, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return withCode(exitFailed, fmt.Errorf("restore %s: no history", id))
	}
	ev, err := it.Next()
	if err != nil {
		return withCode(exitFailed, fmt.Errorf("restore %s: read history: %w", id, err))
	}
	attrs := ev.GetWorkflowExecutionStartedEventAttributes()
	if attrs == nil || len(attrs.GetInput().GetPayloads()) == 0 {
		return withCode(exitFailed, fmt.Errorf("restore %s: the first event holds no input", id))
	}
	dc := converter.GetDefaultDataConverter()
	var cfg config.Restore
	if err := dc.FromPayload(attrs.GetInput().GetPayloads()[0], &cfg); err != nil {
		return withCode(exitFailed, fmt.Errorf("restore %s: decode its input: %w", id, err))
	}
	p, ok := info.GetMemo().GetFields()[names.MemoRestorePlan]
	if !ok {
		// It failed before fixing a plan: it keeps the one it was given (a
		// retry's), or, a first run, starts afresh.
	} else {
		var r config.RestoreResume
		if err := dc.FromPayload(p, &r); err != nil {
			return withCode(exitFailed, fmt.Errorf("restore %s: decode its plan: %w", id, err))
		}
		cfg.Resume = &r
		// The recovery point the failed run restored, not what "latest"
		// names now (a backup may have landed since).
		cfg.Source.RecoveryPoint = r.Manifest
	}
	if !jsonOut {
		from := "from the start (the failed run created nothing)"
		if cfg.Resume != nil {
			from = "with the plan of run " + cfg.Resume.FromRunID
		}
		fmt.Fprintf(os.Stderr, "retrying restore %s %s\n", id, from)
	}
	// An activity of the ended run can still be producing until its next
	// heartbeat tells it the run is over (at most the 20 s heartbeat
	// timeout): start producing only after that, or both would write.
	if ct := info.GetCloseTime(); ct != nil {
		if wait := time.Until(ct.AsTime().Add(zombieGrace)); wait > 0 {
			if !jsonOut {
				fmt.Fprintf(os.Stderr, "waiting %s for the ended run's activities to stop\n", wait.Round(time.Second))
			}
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	opts := client.StartWorkflowOptions{ID: id,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			names.SACluster.ValueSet(cfg.Cluster.Name), names.SAKind.ValueSet(names.KindRestore),
			names.SAStatus.ValueSet(names.StatusRunning))}
	var res workflows.RestoreResult
	if err := startAndWatch(ctx, cl, opts, names.RestoreWorkflow, cfg, jsonOut, detach, &res); err != nil || detach {
		return err
	}
	return printJSONOr(jsonOut, map[string]any{"workflow_id": id, "status": names.StatusSucceeded, "result": res}, func() {
		fmt.Printf("restore succeeded: %d records from %s\n", res.Records, res.RecoveryPoint)
	})
}
