package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/workflows"
)

// kraftRestoreOpts are the options of `kbr restore kraft`.
type kraftRestoreOpts struct {
	conn  connOpts
	file  fileOpts
	start startOpts
}

func newKRaftRestoreOpts() *kraftRestoreOpts {
	return &kraftRestoreOpts{
		file: fileOpts{what: "KRaft metadata restore config (YAML)", arg: "CONFIG"},
		start: startOpts{idHelp: "restore id, the workflow id (default kraftrestore-<cluster>-<time>)",
			detachHelp: "start and print the restore id without waiting"},
	}
}

func (o *kraftRestoreOpts) AddFlags(fs *pflag.FlagSet) {
	o.conn.AddFlags(fs)
	o.file.AddFlags(fs)
	o.start.AddFlags(fs)
}

// kraftRestoreCmd is `kbr restore kraft -f FILE`.
func kraftRestoreCmd() *cobra.Command {
	o := newKRaftRestoreOpts()
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
			ctx, stop := interruptible()
			defer stop()
			return runKRaftRestore(ctx, o, streamsOf(cmd))
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// runKRaftRestore starts a KRaftMetadataRestoreWorkflow from the config
// file and follows it.
func runKRaftRestore(ctx context.Context, o *kraftRestoreOpts, s streams) error {
	cfg, err := loadConfig(o.file, config.LoadKRaftRestore)
	if err != nil {
		return err
	}
	cl, err := o.conn.dial(ctx, nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	id := o.start.runID("kraftrestore", cfg.Cluster.Name)
	return startKRaftRestore(ctx, cl, s, id, workflows.KRaftRestoreInput{KRaftRestore: *cfg}, o.start)
}

// startKRaftRestore starts (or, with the input of a failed run, starts
// again) the KRaft metadata restore id and follows it.
func startKRaftRestore(ctx context.Context, cl client.Client, s streams, id string, in workflows.KRaftRestoreInput, o startOpts) error {
	var rep workflows.KRaftRestoreReport
	if ok, err := startRestoreOnce(ctx, cl, s, id, in.Cluster.Name, names.KindKRaftRestore, names.KRaftRestoreWorkflow, in, o, &rep); !ok {
		return err
	}
	return o.print(s.out, map[string]any{"workflow_id": id, "status": names.StatusSucceeded, "result": rep}, func() {
		fmt.Fprintf(s.out, "KRaft metadata restore %s succeeded: %s\n", id, rep.RecoveryPoint.Manifest)
		if rep.Health != nil {
			fmt.Fprintf(s.out, "  cluster id %s; %d brokers registered, %d topics, %d partitions, none offline or under-replicated\n",
				rep.ClusterID, len(rep.Health.Brokers), rep.Health.Topics, rep.Health.Partitions)
		}
		for _, r := range rep.Restored {
			if r.Cleared {
				fmt.Fprintf(s.out, "  %s: metadata log cleared (a broker: it fetches the restored one)\n", r.Host)
			} else {
				fmt.Fprintf(s.out, "  %s: %d files (%d bytes) in %s\n", r.Host, r.Files, r.Bytes, r.Dir)
			}
		}
		for _, f := range rep.MetaFixes {
			for _, fx := range f.Fixes {
				fmt.Fprintf(s.out, "  %s %s: %s\n", f.Host, fx.Dir, fx.Status)
			}
		}
		for _, n := range rep.Notes {
			fmt.Fprintln(s.out, "  note:", n)
		}
	})
}

// retryKRaftRestore resumes a failed KRaft metadata restore at the step
// that failed; handled is false when id names another kind of run.
func retryKRaftRestore(ctx context.Context, cl client.Client, s streams, o *retryOpts, id string) (handled bool, err error) {
	d, err := cl.DescribeWorkflowExecution(ctx, id, "")
	if err != nil || d.GetWorkflowExecutionInfo().GetType().GetName() != names.KRaftRestoreWorkflow {
		return false, nil
	}
	info := d.GetWorkflowExecutionInfo()
	var in workflows.KRaftRestoreInput
	if err := endedRun(ctx, cl, id, info, &in); err != nil {
		return true, err
	}
	resume := &workflows.KRaftResume{FromRunID: info.GetExecution().GetRunId()}
	if p, ok := info.GetMemo().GetFields()[names.MemoResume]; ok {
		if err := converter.GetDefaultDataConverter().FromPayload(p, resume); err != nil {
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
	if !o.start.json {
		fmt.Fprintf(s.err, "retrying restore %s; completed by run %s, not repeated: %s\n", id, resume.FromRunID, strings.Join(resume.Done, ", "))
	}
	return true, startKRaftRestore(ctx, cl, s, id, in, o.start)
}
