package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/tasks"
)

// clusterRegisterOpts are the options of `kbr cluster register`.
type clusterRegisterOpts struct {
	taskOpts
	file     fileOpts
	localDir string
}

func (o *clusterRegisterOpts) AddFlags(fs *pflag.FlagSet) {
	o.taskOpts.AddFlags(fs)
	o.file.AddFlags(fs)
	fs.StringVar(&o.localDir, "local-dir", "./kbr-data/LocalBackup", "LocalDir of the default task (<data dir>/LocalBackup)")
}

func clusterCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Clusters kbr backs up"}
	o := &clusterRegisterOpts{file: fileOpts{what: "the cluster (YAML: name, bootstrap_servers, zookeeper, tls, sasl as in a backup config)", arg: "CLUSTER.yaml"}}
	reg := &cobra.Command{
		Use:   "register -f CLUSTER.yaml",
		Short: "Register a cluster: the first time, its default task is created (hourly full metadata backup to LocalDir, 168 copies)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runClusterRegister(context.Background(), o, streamsOf(cmd))
		},
	}
	o.AddFlags(reg.Flags())
	cmd.AddCommand(reg)
	return cmd
}

// runClusterRegister registers the cluster of the file and, the first
// time, creates its default task.
func runClusterRegister(ctx context.Context, o *clusterRegisterOpts, s streams) error {
	if err := o.file.required(); err != nil {
		return err
	}
	c, err := config.LoadCluster(o.file.path)
	if err != nil {
		return withCode(exitBadInput, err)
	}
	dir, err := filepath.Abs(o.localDir)
	if err != nil {
		return withCode(exitBadInput, fmt.Errorf("--local-dir: %w", err))
	}
	return o.do(ctx, func(m *tasks.Manager, cl client.Client) error {
		info, err := m.Register(ctx, *c, dir)
		if err != nil {
			return taskErr(fmt.Errorf("%s: %w", o.file.path, err))
		}
		if info == nil {
			return o.out.print(s.out, map[string]string{"cluster": c.Name, "default_task": ""}, func() {
				fmt.Fprintf(s.out, "cluster %s already has tasks: no default task created\n", c.Name)
			})
		}
		return o.out.print(s.out, info, func() {
			fmt.Fprintf(s.out, "cluster %s registered; default task created:\n", c.Name)
			printTask(s.out, info)
		})
	})
}
