package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/storage"
)

func backupsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "backups", Short: "Look at recovery points on a target"}
	var (
		pathType string
		jsonOut  bool
	)
	list := &cobra.Command{
		Use:   "list PATH",
		Short: "List the recovery points under a backup path",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			if st, err := os.Stat(args[0]); pathType == "LocalDir" && (err != nil || !st.IsDir()) {
				return withCode(exitBadInput, fmt.Errorf("%s: not a directory", args[0]))
			}
			b, err := storage.Open(ctx, storage.Target{Type: pathType, Path: args[0]})
			if err != nil {
				return withCode(exitBadInput, err)
			}
			defer b.Close()
			rps, err := activities.ListRecoveryPoints(ctx, b)
			if err != nil {
				return withCode(exitFailed, err)
			}
			a := &activities.Activities{}
			for i := range rps {
				if s, err := a.Summary(ctx, b, rps[i].Manifest); err == nil {
					rps[i] = *s
				}
			}
			return printJSONOr(jsonOut, rps, func() {
				if len(rps) == 0 {
					fmt.Println("no recovery points under", args[0])
					return
				}
				tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "EXECUTED\tTASK\tCLUSTER\tVERSION\tTOPICS\tRECORDS\tBYTES\tRECOVERY POINT")
				for _, r := range rps {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", r.ExecutedAt.Format(time.RFC3339), r.Task, r.Cluster,
						r.KafkaVersion, len(r.Topics), r.Records, r.Bytes, r.Manifest)
				}
				tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&pathType, "type", "LocalDir", "path type of PATH")
	list.Flags().BoolVar(&jsonOut, "json", false, "machine-readable output")
	cmd.AddCommand(list)
	return cmd
}
