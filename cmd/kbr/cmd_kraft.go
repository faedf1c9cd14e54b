package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/workflows"
)

// kraftRestoreCmd is `kbr restore kraft -f FILE`.
func kraftRestoreCmd() *cobra.Command {
	var (
		c       conn
		file    string
		id      string
		jsonOut bool
		detach  bool
	)
	cmd := &cobra.Command{
		Use:   "kraft -f CONFIG",
		Short: "Restore a KRaft cluster's metadata from its controllers' backed-up metadata log (stops and starts every node through its agent)",
		Long: `Starts a KRaftMetadataRestoreWorkflow from a recovery point taken with the
kraft_log data source: preflight (the recovery point verifies, every node's
agent answers, the Kafka versions match, every controller has its metadata log
in the recovery point), a safety copy of the current metadata logs, stop every
node, put the backed-up snapshot and log in place on every controller (and
clear the brokers' copies), make cluster.id and the directory ids in every
meta.properties agree with it, start every node, wait until every broker is
registered and no partition is offline or under-replicated.

Topics come back with their original topic ids, so the records on the brokers'
disks are served again; SCRAM credentials and ACLs come back with the metadata.
Metadata written after the backup is lost.

The workflow id is the restore id. A restore that succeeded cannot run again;
one that failed is resumed with 'kbr restore retry ID'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return withCode(exitBadInput, fmt.Errorf("-f CONFIG is required"))
			}
			cfg, err := config.LoadKRaftRestore(file)
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
				id = workflowID("kraftrestore", cfg.Cluster.Name, time.Now())
			}
			return runKRaftRestore(ctx, cl, id, workflows.KRaftRestoreInput{KRaftRestore: *cfg}, jsonOut, detach)
		},
	}
	c.flags(cmd)
	cmd.Flags().StringVarP(&file, "file", "f", "", "KRaft metadata restore config (YAML)")
	cmd.Flags().StringVar(&id, "id", "", "restore id, the workflow id (default kraftrestore-<cluster>-<time>)")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "machine-readable output on stdout")
	cmd.Flags().BoolVar(&detach, "detach", false, "start and print the restore id without waiting")
	return cmd
}

func runKRaftRestore(ctx context.Context, cl client.Client, id string, in workflows.KRaftRestoreInput, jsonOut, detach bool) error {
	opts := client.StartWorkflowOptions{ID: id,
		WorkflowIDReusePolicy:                    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			names.SACluster.ValueSet(in.Cluster.Name), names.SAKind.ValueSet(names.KindKRaftRestore),
			names.SAStatus.ValueSet(names.StatusRunning))}
	var rep workflows.KRaftRestoreReport
	err := startAndWatch(ctx, cl, opts, names.KRaftRestoreWorkflow, in, jsonOut, detach, &rep)
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
		fmt.Printf("KRaft metadata restore %s succeeded: %s\n", id, rep.RecoveryPoint.Manifest)
		if rep.Health != nil {
			fmt.Printf("  cluster id %s; %d brokers registered, %d topics, %d partitions, none offline or under-replicated\n",
				rep.ClusterID, len(rep.Health.Brokers), rep.Health.Topics, rep.Health.Partitions)
		}
		for _, r := range rep.Restored {
			if r.Cleared {
				fmt.Printf("  %s: metadata log cleared (a broker: it fetches the restored one)\n", r.Host)
			} else {
				fmt.Printf("  %s: %d files (%d bytes) in %s\n", r.Host, r.Files, r.Bytes, r.Dir)
			}
		}
		for _, f := range rep.MetaFixes {
			for _, fx := range f.Fixes {
				fmt.Printf("  %s %s: %s\n", f.Host, fx.Dir, fx.Status)
			}
		}
		for _, n := range rep.Notes {
			fmt.Println("  note:", n)
		}
	})
}

// retryKRaftRestore resumes a failed KRaft metadata restore; handled is
// false when id names another kind of run.
func retryKRaftRestore(ctx context.Context, cl client.Client, id string, jsonOut, detach bool) (handled bool, err error) {
	d, err := cl.DescribeWorkflowExecution(ctx, id, "")
	if err != nil || d.GetWorkflowExecutionInfo().GetType().GetName() != names.KRaftRestoreWorkflow {
		return false, nil
	}
	info := d.GetWorkflowExecutionInfo()
	switch info.GetStatus() {
	case enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return true, withCode(exitBadInput, fmt.Errorf("restore %s is still running (kbr restore status %s)", id, id))
	case enums.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return true, withCode(exitBadInput, fmt.Errorf("restore %s succeeded: a restore runs once", id))
	}
	runID := info.GetExecution().GetRunId()
	it := cl.GetWorkflowHistory(ctx, id, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return true, withCode(exitFailed, fmt.Errorf("restore %s: no history", id))
	}
	ev, err := it.Next()
	if err != nil {
		return true, withCode(exitFailed, fmt.Errorf("restore %s: read history: %w", id, err))
	}
	attrs := ev.GetWorkflowExecutionStartedEventAttributes()
	if attrs == nil || len(attrs.GetInput().GetPayloads()) == 0 {
		return true, withCode(exitFailed, fmt.Errorf("restore %s: the first event holds no input", id))
	}
	dc := converter.GetDefaultDataConverter()
	var in workflows.KRaftRestoreInput
	if err := dc.FromPayload(attrs.GetInput().GetPayloads()[0], &in); err != nil {
		return true, withCode(exitFailed, fmt.Errorf("restore %s: decode its input: %w", id, err))
	}
	resume := &workflows.KRaftResume{FromRunID: runID}
	if p, ok := info.GetMemo().GetFields()[names.MemoResume]; ok {
		if err := dc.FromPayload(p, resume); err != nil {
			return true, withCode(exitFailed, fmt.Errorf("restore %s: decode what it completed: %w", id, err))
		}
	} else if in.Resume != nil {
		resume = in.Resume // the failed run completed nothing new
	}
	in.Resume = resume
	// The recovery point the failed run resolved, not what "latest" names now.
	if rp := resume.State.RecoveryPoint; rp != nil {
		in.Source.RecoveryPoint = rp.Manifest
	}
	if !jsonOut {
		fmt.Fprintf(os.Stderr, "retrying restore %s; completed by run %s, not repeated: %s\n", id, resume.FromRunID, strings.Join(resume.Done, ", "))
	}
	return true, runKRaftRestore(ctx, cl, id, in, jsonOut, detach)
}
