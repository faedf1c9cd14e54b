package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"

	"github.com/kbr-project/kbr/internal/embedded"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/workers"
)

// workerOpts are the options of `kbr worker`.
type workerOpts struct {
	conn    connOpts
	proc    processOpts
	metrics metricsOpts
}

func newWorkerOpts() *workerOpts {
	return &workerOpts{proc: processOpts{defLevel: "info"}, metrics: metricsOpts{def: defaultWorkerMetrics}}
}

func (o *workerOpts) AddFlags(fs *pflag.FlagSet) {
	o.conn.AddFlags(fs)
	o.proc.AddFlags(fs)
	o.metrics.AddFlags(fs)
}

func workerCmd() *cobra.Command {
	o := newWorkerOpts()
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a kbr worker against an existing Temporal cluster",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := stoppable()
			defer stop()
			return runWorker(ctx, o, streamsOf(cmd))
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// runWorker polls the kbr task queue until ctx ends.
func runWorker(ctx context.Context, o *workerOpts, s streams) error {
	restBuf, err := o.proc.restoreBuffer()
	if err != nil {
		return err
	}
	logger := newLogger(o.proc.level)
	me, err := o.metrics.start("worker", logger, s.err)
	if err != nil {
		return err
	}
	defer me.close()
	c := o.conn
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
	w := workers.New(cl, workers.Options{Logger: logger, MaxConcurrentActivities: o.proc.maxActs, RestoreBufferBytes: restBuf, Storage: storageRegistry})
	if err := w.Start(); err != nil {
		return withCode(exitFailed, fmt.Errorf("start worker: %w", err))
	}
	fmt.Fprintf(s.err, "kbr worker: polling task queue %s at %s (namespace %s)\n", names.TaskQueue, c.address, c.namespace)
	<-ctx.Done()
	w.Stop()
	return nil
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
