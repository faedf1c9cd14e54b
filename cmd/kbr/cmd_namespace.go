package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/kbr-project/kbr/internal/embedded"
)

func namespaceCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "namespace", Short: "Prepare a namespace of a Temporal cluster for kbr"}
	var (
		c         conn
		retention time.Duration
	)
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create the namespace (if missing) and add kbr's search attributes to it",
		Long: `kbr server does this for its embedded server by itself. On a Temporal cluster of your
own, run it once per namespace before the first kbr worker starts: it registers the
namespace with --retention (how long Temporal keeps closed runs' histories, which
kbr task history lists) unless it exists, and adds the search attributes KbrCluster,
KbrTask, KbrKind, KbrStatus and KbrRecoveryPoint. Running it again changes nothing.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c.namespace = args[0]
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			created, err := createNamespace(ctx, &c, args[0], retention)
			if err != nil {
				return err
			}
			what := "exists"
			if created {
				what = "created"
			}
			fmt.Fprintf(os.Stdout, "namespace %s %s; kbr's search attributes registered\n", args[0], what)
			return nil
		},
	}
	c.flags(create)
	// --namespace would say the same as NAME.
	_ = create.Flags().MarkHidden("namespace")
	create.Flags().DurationVar(&retention, "retention", 30*24*time.Hour, "how long closed runs' histories are kept (at least 24h)")
	cmd.AddCommand(create)
	return cmd
}

// createNamespace registers name unless it exists, then kbr's search
// attributes; created says whether it registered the namespace.
func createNamespace(ctx context.Context, c *conn, name string, retention time.Duration) (created bool, err error) {
	if retention < 24*time.Hour {
		return false, withCode(exitBadInput, fmt.Errorf("--retention %s: Temporal keeps histories at least 24h", retention))
	}
	nc, err := c.dialNamespaces(ctx)
	if err != nil {
		return false, err
	}
	defer nc.Close()
	err = nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace:                        name,
		Description:                      "kbr: Kafka backup and restore",
		WorkflowExecutionRetentionPeriod: durationpb.New(retention),
	})
	var exists *serviceerror.NamespaceAlreadyExists
	switch {
	case err == nil:
		created = true
	case errors.As(err, &exists):
	default:
		return false, withCode(exitFailed, fmt.Errorf("register namespace %s: %w", name, err))
	}
	// The frontend serves a new namespace once its registry has refreshed.
	cl, err := c.dial(ctx, nil)
	if err != nil {
		return created, err
	}
	defer cl.Close()
	for {
		_, err := cl.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: name})
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return created, withCode(exitFailed, fmt.Errorf("namespace %s not served yet: %w", name, err))
		case <-time.After(500 * time.Millisecond):
		}
	}
	if err := embedded.RegisterSearchAttributes(ctx, cl, name); err != nil {
		return created, withCode(exitFailed, err)
	}
	return created, nil
}
