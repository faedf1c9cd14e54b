package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/workflows"
)

// schemasRestoreOpts are the options of `kbr restore schemas`.
type schemasRestoreOpts struct {
	conn  connOpts
	file  fileOpts
	start startOpts
}

func newSchemasRestoreOpts() *schemasRestoreOpts {
	return &schemasRestoreOpts{
		file:  fileOpts{what: "schemas restore config (YAML)", arg: "CONFIG"},
		start: startOpts{idHelp: "workflow id (default schemas-registry-<time>)"},
	}
}

func (o *schemasRestoreOpts) AddFlags(fs *pflag.FlagSet) {
	o.conn.AddFlags(fs)
	o.file.AddFlags(fs)
	o.start.AddFlags(fs)
}

// schemasRestoreCmd is `kbr restore schemas -f FILE`.
func schemasRestoreCmd() *cobra.Command {
	o := newSchemasRestoreOpts()
	cmd := &cobra.Command{
		Use:   "schemas -f CONFIG",
		Short: "Restore a recovery point's Schema Registry export into a registry, without a data restore",
		Long: `Starts a SchemasRestoreWorkflow: resolve and pin the recovery point, then the
same "restore schemas" step as a data restore with schema_registry: every subject
and version, with its id where the registry takes IMPORT mode, else registered
again in dependency order (the old-to-new id map is in the result), then the
compatibility levels and modes. The config holds source, schema_registry and,
optionally, rename (the topic renames the <topic>-key and <topic>-value
subjects follow). Retried, it repeats nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := interruptible()
			defer stop()
			return runSchemasRestore(ctx, o, streamsOf(cmd))
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// runSchemasRestore starts a SchemasRestoreWorkflow from the config file
// and follows it.
func runSchemasRestore(ctx context.Context, o *schemasRestoreOpts, s streams) error {
	cfg, err := loadConfig(o.file, config.LoadSchemasRestore)
	if err != nil {
		return err
	}
	cl, err := o.conn.dial(ctx, nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	id := o.start.runID("schemas", "registry")
	opts := client.StartWorkflowOptions{ID: id, TypedSearchAttributes: temporal.NewSearchAttributes(
		names.SAKind.ValueSet(names.KindSchemasRestore), names.SAStatus.ValueSet(names.StatusRunning))}
	var res workflows.SchemasRestoreResult
	if _, err := startAndWatch(ctx, cl, s, opts, names.SchemasRestoreWorkflow, cfg, o.start, &res); err != nil || o.start.detach {
		return err
	}
	return o.start.print(s.out, map[string]any{"workflow_id": id, "status": names.StatusSucceeded, "result": res}, func() {
		sr := res.Schemas
		fmt.Fprintf(s.out, "schemas restore of %s succeeded: %d subjects, %d versions (%d imported, %d registered, %d there already), %d ids changed\n",
			res.RecoveryPoint, sr.Subjects, sr.Versions, sr.Imported, sr.Registered, sr.Existing, sr.Changed)
		for _, w := range sr.Warnings {
			fmt.Fprintln(s.out, "  warning:", w)
		}
	})
}
