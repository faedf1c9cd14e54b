package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/kbr-project/kbr/internal/embedded"
)

// namespaceCreateOpts are the options of `kbr namespace create`.
type namespaceCreateOpts struct {
	conn      connOpts
	retention time.Duration
}

func (o *namespaceCreateOpts) AddFlags(fs *pflag.FlagSet) {
	o.conn.AddFlags(fs)
	// --namespace would say the same as NAME.
	_ = fs.MarkHidden("namespace")
	fs.DurationVar(&o.retention, "retention", 30*24*time.Hour, "how long closed runs' histories are kept (at least 24h)")
}

func namespaceCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "namespace", Short: "Prepare a namespace of a Temporal cluster for kbr"}
	o := &namespaceCreateOpts{}
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
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			return runNamespaceCreate(ctx, o, args[0], streamsOf(cmd))
		},
	}
	o.AddFlags(create.Flags())
	cmd.AddCommand(create)
	return cmd
}

// runNamespaceCreate registers the namespace name unless it exists and
// adds kbr's search attributes to it.
func runNamespaceCreate(ctx context.Context, o *namespaceCreateOpts, name string, s streams) error {
	c := o.conn
	c.namespace = name
	created, err := createNamespace(ctx, &c, name, o.retention)
	if err != nil {
		return err
	}
	what := "exists"
	if created {
		what = "created"
	}
	fmt.Fprintf(s.out, "namespace %s %s; kbr's search attributes registered\n", name, what)
	return nil
}

// createNamespace registers name unless it exists, then kbr's search
// attributes; created says whether it registered the namespace.
func createNamespace(ctx context.Context, c *connOpts, name string, retention time.Duration) (created bool, err error) {
	if retention < 24*time.Hour {
		return false, withCode(exitBadInput, fmt.Errorf("--retention %s: Temporal keeps histories at least 24h", retention))
	}
	nc, err := c.dialNamespaces()
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
