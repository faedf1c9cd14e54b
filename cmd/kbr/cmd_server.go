package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kbr-project/kbr/internal/embedded"
	"github.com/kbr-project/kbr/workers"
)

// serverOpts are the options of `kbr server`.
type serverOpts struct {
	server   embedded.Options
	noWorker bool
	proc     processOpts
	metrics  metricsOpts
}

func newServerOpts() *serverOpts {
	return &serverOpts{proc: processOpts{defLevel: "warn"}, metrics: metricsOpts{def: defaultServerMetrics}}
}

func (o *serverOpts) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.server.DataDir, "data-dir", "./kbr-data", "where the SQLite database and local state live")
	fs.StringVar(&o.server.IP, "ip", "127.0.0.1", "address the frontend and Web UI listen on")
	fs.IntVar(&o.server.FrontendPort, "port", 7233, "Temporal frontend port")
	fs.IntVar(&o.server.UIPort, "ui-port", 8233, "Web UI port (-1: no UI)")
	fs.StringVar(&o.server.Namespace, "namespace", "default", "namespace to create and serve")
	fs.BoolVar(&o.noWorker, "no-worker", false, "run only the server and UI (workers run elsewhere)")
	o.proc.AddFlags(fs)
	o.metrics.AddFlags(fs)
}

func serverCmd() *cobra.Command {
	o := newServerOpts()
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the embedded Temporal server (SQLite), its Web UI and a kbr worker in one process",
		Long: `kbr server is the zero-setup default: an embedded Temporal server persisted in
SQLite under --data-dir, the Temporal Web UI, and a kbr worker. Ctrl-C stops it
cleanly; started again on the same --data-dir it resumes the workflows that were
running.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := stoppable()
			defer stop()
			return runServer(ctx, o, streamsOf(cmd))
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// runServer serves Temporal, the Web UI and (unless --no-worker) a worker
// until ctx ends.
func runServer(ctx context.Context, o *serverOpts, s streams) error {
	restBuf, err := o.proc.restoreBuffer()
	if err != nil {
		return err
	}
	logger := newLogger(o.proc.level)
	so := o.server
	so.Logger = logger
	srv, err := embedded.Start(ctx, so)
	if err != nil {
		return withCode(exitFailed, err)
	}
	defer srv.Stop()
	fmt.Fprintf(s.err, "kbr server: Temporal frontend %s, namespace %s\n", srv.FrontendAddress(), srv.Namespace())
	if ui := srv.UIAddress(); ui != "" {
		fmt.Fprintf(s.err, "kbr server: Web UI http://%s\n", ui)
	}
	me, err := o.metrics.start("server", logger, s.err)
	if err != nil {
		return err
	}
	defer me.close()
	if o.noWorker {
		<-ctx.Done()
		fmt.Fprintln(s.err, "kbr server: stopping")
		return nil
	}
	c := connOpts{address: srv.FrontendAddress(), namespace: srv.Namespace(), metrics: me.handler()}
	cl, err := c.dial(ctx, logger)
	if err != nil {
		return err
	}
	defer cl.Close()
	seedMetrics(ctx, cl, c.namespace, me, logger)
	w := workers.New(cl, workers.Options{Logger: logger, MaxConcurrentActivities: o.proc.maxActs, RestoreBufferBytes: restBuf, Storage: storageRegistry})
	if err := w.Start(); err != nil {
		return withCode(exitFailed, fmt.Errorf("start worker: %w", err))
	}
	fmt.Fprintln(s.err, "kbr server: worker polling task queue kbr; Ctrl-C stops")
	<-ctx.Done()
	fmt.Fprintln(s.err, "kbr server: stopping")
	w.Stop()
	return nil
}
