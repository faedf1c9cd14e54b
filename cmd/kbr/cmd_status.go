package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// statusOpts are the options of `kbr backup status` and `kbr restore status`.
type statusOpts struct {
	conn connOpts
	out  outputOpts
	kind string // "backup" or "restore", as errors name the run
}

func (o *statusOpts) AddFlags(fs *pflag.FlagSet) {
	o.conn.AddFlags(fs)
	o.out.AddFlags(fs)
}

// statusCmd shows a run's steps and progress by id.
func statusCmd(kind string) *cobra.Command {
	o := &statusOpts{kind: kind, out: outputOpts{help: "machine-readable output"}}
	cmd := &cobra.Command{
		Use:   "status WORKFLOW_ID",
		Short: "Show the steps and progress of a " + kind,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStatus(context.Background(), o, args[0], streamsOf(cmd))
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// runStatus asks the run id for its progress (and its running units for
// theirs) and prints it.
func runStatus(ctx context.Context, o *statusOpts, id string, s streams) error {
	cl, err := o.conn.dial(ctx, nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	p, ok := query(ctx, cl, id)
	if !ok {
		return withCode(exitFailed, fmt.Errorf("no %s with workflow id %s answers the progress query", o.kind, id))
	}
	live(ctx, cl, id, &p)
	return o.out.print(s.out, p, func() {
		last := ""
		fmt.Fprintf(s.out, "%s %s: %s\n", p.Kind, id, p.Status)
		printSteps(s.out, p, &last, false)
		if p.PartitionsTotal > 0 {
			fmt.Fprintln(s.out, progressLine(p, 0))
		}
		if p.RecoveryPoint != "" {
			fmt.Fprintln(s.out, "recovery point:", p.RecoveryPoint)
		}
		if p.Error != "" {
			fmt.Fprintln(s.out, "error:", p.Error)
		}
	})
}
