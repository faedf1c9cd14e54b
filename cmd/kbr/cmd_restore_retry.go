package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/workflows"
)

// zombieGrace is how long after a run ended its activities may still run.
const zombieGrace = 30 * time.Second

// retryOpts are the options of `kbr restore retry`.
type retryOpts struct {
	conn  connOpts
	start startOpts // --json and --detach (the id is the argument)
	// grace is how long after the failed data restore ended the next run
	// may start producing (zombieGrace).
	grace time.Duration
}

func newRetryOpts() *retryOpts {
	return &retryOpts{start: startOpts{detachHelp: "start and print the restore id without waiting"}, grace: zombieGrace}
}

func (o *retryOpts) AddFlags(fs *pflag.FlagSet) {
	o.conn.AddFlags(fs)
	o.start.AddFlags(fs)
}

// retryCmd is `kbr restore retry ID`.
func retryCmd() *cobra.Command {
	o := newRetryOpts()
	cmd := &cobra.Command{
		Use:   "retry RESTORE_ID",
		Short: "Resume a failed restore, on the recovery point its failed run started: a metadata restore at the step that failed (completed steps are not repeated), a data restore with the plan its failed run fixed (what landed is not produced again)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := interruptible()
			defer stop()
			return runRetry(ctx, o, args[0], streamsOf(cmd))
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// runRetry starts the next run of the failed restore id: a data restore
// with the plan its run fixed, a metadata restore at the step that failed.
func runRetry(ctx context.Context, o *retryOpts, id string, s streams) error {
	cl, err := o.conn.dial(ctx, nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	if handled, err := retryKRaftRestore(ctx, cl, s, o, id); handled {
		return err
	}
	if d, err := cl.DescribeWorkflowExecution(ctx, id, ""); err == nil &&
		d.GetWorkflowExecutionInfo().GetType().GetName() == names.RestoreWorkflow {
		return retryDataRestore(ctx, cl, s, o, id, d)
	}
	in, err := resumeInput(ctx, cl, id)
	if err != nil {
		return err
	}
	if !o.start.json {
		fmt.Fprintf(s.err, "retrying restore %s; completed by run %s, not repeated: %v\n", id, in.Resume.FromRunID, in.Resume.Done)
	}
	return startMetadataRestore(ctx, cl, s, id, in, o.start)
}

// endedRun checks that the restore id's last run (info) ended without
// success and decodes its input into in.
func endedRun(ctx context.Context, cl client.Client, id string, info *workflowpb.WorkflowExecutionInfo, in any) error {
	switch info.GetStatus() {
	case enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return withCode(exitBadInput, fmt.Errorf("restore %s is still running (kbr restore status %s)", id, id))
	case enums.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return withCode(exitBadInput, fmt.Errorf("restore %s succeeded: a restore runs once", id))
	}
	it := cl.GetWorkflowHistory(ctx, id, info.GetExecution().GetRunId(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
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
	if err := converter.GetDefaultDataConverter().FromPayload(attrs.GetInput().GetPayloads()[0], in); err != nil {
		return withCode(exitFailed, fmt.Errorf("restore %s: decode its input: %w", id, err))
	}
	return nil
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
		return in, withCode(exitBadInput, fmt.Errorf("%s is a %s; retry resumes restores (%s, %s, %s)", id, t, names.RestoreWorkflow, names.MetadataRestoreWorkflow, names.KRaftRestoreWorkflow))
	}
	if err := endedRun(ctx, cl, id, info, &in); err != nil {
		return in, err
	}
	dc := converter.GetDefaultDataConverter()
	resume := &workflows.MetaResume{FromRunID: info.GetExecution().GetRunId()}
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

// retryDataRestore starts the next run of a failed (or terminated, timed
// out, canceled) RestoreWorkflow under the same id, with the plan the failed
// run fixed: the topics it created and each partition's base offset, so
// the records that landed are skipped and none is written twice.
func retryDataRestore(ctx context.Context, cl client.Client, s streams, o *retryOpts, id string, d *workflowservice.DescribeWorkflowExecutionResponse) error {
	info := d.GetWorkflowExecutionInfo()
	var cfg config.Restore
	if err := endedRun(ctx, cl, id, info, &cfg); err != nil {
		return err
	}
	// Without a plan in the memo it failed before fixing one: it keeps the
	// one it was given (a retry's), or, a first run, starts afresh.
	if p, ok := info.GetMemo().GetFields()[names.MemoRestorePlan]; ok {
		var r config.RestoreResume
		if err := converter.GetDefaultDataConverter().FromPayload(p, &r); err != nil {
			return withCode(exitFailed, fmt.Errorf("restore %s: decode its plan: %w", id, err))
		}
		cfg.Resume = &r
		// The recovery point the failed run restored, not what "latest"
		// names now (a backup may have landed since).
		cfg.Source.RecoveryPoint = r.Manifest
	}
	if !o.start.json {
		from := "from the start (the failed run created nothing)"
		if cfg.Resume != nil {
			from = "with the plan of run " + cfg.Resume.FromRunID
		}
		fmt.Fprintf(s.err, "retrying restore %s %s\n", id, from)
	}
	// An activity of the ended run can still be producing until its next
	// heartbeat tells it the run is over (at most the 20 s heartbeat
	// timeout): start producing only after that, or both would write.
	if ct := info.GetCloseTime(); ct != nil {
		if wait := time.Until(ct.AsTime().Add(o.grace)); wait > 0 {
			if !o.start.json {
				fmt.Fprintf(s.err, "waiting %s for the ended run's activities to stop\n", wait.Round(time.Second))
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
	if _, err := startAndWatch(ctx, cl, s, opts, names.RestoreWorkflow, cfg, o.start, &res); err != nil || o.start.detach {
		return err
	}
	return o.start.print(s.out, map[string]any{"workflow_id": id, "status": names.StatusSucceeded, "result": res}, func() {
		fmt.Fprintf(s.out, "restore succeeded: %d records from %s\n", res.Records, res.RecoveryPoint)
	})
}
