package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/kbr-project/kbr/internal/embedded"
	"github.com/kbr-project/kbr/workers"
)

func serverCmd() *cobra.Command {
	var (
		o        embedded.Options
		noWorker bool
		level    string
		maxActs  int
		mo       metricsOpts
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the embedded Temporal server (SQLite), its Web UI and a kbr worker in one process",
		Long: `kbr server is the zero-setup default: an embedded Temporal server persisted in
SQLite under --data-dir, the Temporal Web UI, and a kbr worker. Ctrl-C stops it
cleanly; started again on the same --data-dir it resumes the workflows that were
running.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			logger := newLogger(level)
			o.Logger = logger
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv, err := embedded.Start(ctx, o)
			if err != nil {
				return withCode(exitFailed, err)
			}
			defer srv.Stop()
			fmt.Fprintf(os.Stderr, "kbr server: Temporal frontend %s, namespace %s\n", srv.FrontendAddress(), srv.Namespace())
			if ui := srv.UIAddress(); ui != "" {
				fmt.Fprintf(os.Stderr, "kbr server: Web UI http://%s\n", ui)
			}
			me, err := mo.start("server", logger)
			if err != nil {
				return err
			}
			defer me.close()
			if noWorker {
				<-ctx.Done()
				fmt.Fprintln(os.Stderr, "kbr server: stopping")
				return nil
			}
			c := conn{address: srv.FrontendAddress(), namespace: srv.Namespace(), metrics: me.handler()}
			cl, err := c.dial(ctx, logger)
			if err != nil {
				return err
			}
			defer cl.Close()
			seedMetrics(ctx, cl, c.namespace, me, logger)
			w := workers.New(cl, workers.Options{Logger: logger, MaxConcurrentActivities: maxActs, Storage: storageRegistry})
			if err := w.Start(); err != nil {
				return withCode(exitFailed, fmt.Errorf("start worker: %w", err))
			}
			fmt.Fprintln(os.Stderr, "kbr server: worker polling task queue kbr; Ctrl-C stops")
			<-ctx.Done()
			fmt.Fprintln(os.Stderr, "kbr server: stopping")
			w.Stop()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", "./kbr-data", "where the SQLite database and local state live")
	f.StringVar(&o.IP, "ip", "127.0.0.1", "address the frontend and Web UI listen on")
	f.IntVar(&o.FrontendPort, "port", 7233, "Temporal frontend port")
	f.IntVar(&o.UIPort, "ui-port", 8233, "Web UI port (-1: no UI)")
	f.StringVar(&o.Namespace, "namespace", "default", "namespace to create and serve")
	f.BoolVar(&noWorker, "no-worker", false, "run only the server and UI (workers run elsewhere)")
	f.IntVar(&maxActs, "max-activities", 32, "activities this worker runs at once")
	f.StringVar(&level, "log-level", "warn", "debug, info, warn or error")
	mo.AddFlags(cmd, defaultServerMetrics)
	return cmd
}

func workerCmd() *cobra.Command {
	var (
		c       conn
		level   string
		maxActs int
		mo      metricsOpts
	)
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a kbr worker against an existing Temporal cluster",
		RunE: func(cmd *cobra.Command, args []string) error {
			logger := newLogger(level)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			me, err := mo.start("worker", logger)
			if err != nil {
				return err
			}
			defer me.close()
			c.metrics = me.handler()
			cl, err := c.dial(ctx, logger)
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := embedded.RegisterSearchAttributes(ctx, cl, c.namespace); err != nil {
				logger.Warn("could not register kbr's search attributes; ask the Temporal operator to add them", "err", err)
			}
			seedMetrics(ctx, cl, c.namespace, me, logger)
			w := workers.New(cl, workers.Options{Logger: logger, MaxConcurrentActivities: maxActs, Storage: storageRegistry})
			if err := w.Start(); err != nil {
				return withCode(exitFailed, fmt.Errorf("start worker: %w", err))
			}
			fmt.Fprintf(os.Stderr, "kbr worker: polling task queue kbr at %s (namespace %s)\n", c.address, c.namespace)
			<-ctx.Done()
			w.Stop()
			return nil
		},
	}
	c.flags(cmd)
	cmd.Flags().IntVar(&maxActs, "max-activities", 32, "activities this worker runs at once")
	cmd.Flags().StringVar(&level, "log-level", "info", "debug, info, warn or error")
	mo.AddFlags(cmd, defaultWorkerMetrics)
	return cmd
}

// seedMetrics sets the last-success gauges from Temporal before the worker
// starts; a failure costs only the seed.
func seedMetrics(ctx context.Context, cl client.Client, namespace string, me *metricsEndpoint, logger *slog.Logger) {
	if me.reg == nil {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := workers.SeedLastSuccess(sctx, cl, namespace, me.handler(), logger); err != nil {
		logger.Warn("metrics: could not seed the last successful backups from Temporal", "err", err)
	}
}
