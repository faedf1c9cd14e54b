package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/hostops"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/workers"
)

func agentCmd() *cobra.Command {
	var (
		c     conn
		level string
		file  string
		port  int
		cfg   config.Agent
		mo    metricsOpts
	)
	cmd := &cobra.Command{
		Use:   "agent --host NAME",
		Short: "Run the host agent of a broker: stop/start Kafka, fix cluster.id, report disk (a worker on task queue kbr-agent-NAME)",
		Long: `kbr agent runs on each broker's machine and does the host-local steps of a
metadata restore: stop and start the Kafka service with the configured
commands (default: systemctl stop|start kafka), wait until the broker's
process is gone or its port answers, read log.dirs from server.properties,
rewrite cluster.id in every meta.properties, and report free disk.

It is a Temporal worker on its own task queue, kbr-agent-<host>, with the
same connection flags as kbr worker. The host name is the one a metadata
restore lists under brokers[].host. Settings come from flags or from a YAML
file (--config) with the keys host, server_properties, stop_command,
start_command, listener, kafka_libs, kafka_version; flags win.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			eff := config.Agent{}
			if file != "" {
				fc, err := config.LoadAgent(file)
				if err != nil {
					return withCode(exitBadInput, err)
				}
				eff = *fc
			}
			f := cmd.Flags()
			set := func(name string, dst *string, v string) {
				if f.Changed(name) {
					*dst = v
				}
			}
			set("host", &eff.Host, cfg.Host)
			set("server-properties", &eff.ServerProperties, cfg.ServerProperties)
			set("stop-command", &eff.StopCommand, cfg.StopCommand)
			set("start-command", &eff.StartCommand, cfg.StartCommand)
			set("listener", &eff.Listener, cfg.Listener)
			set("kafka-libs", &eff.KafkaLibs, cfg.KafkaLibs)
			set("kafka-version", &eff.KafkaVersion, cfg.KafkaVersion)
			if f.Changed("port") && !f.Changed("listener") {
				eff.Listener = "127.0.0.1:" + strconv.Itoa(port)
			}
			eff.ApplyDefaults()
			if err := eff.Validate(); err != nil {
				where := "flags"
				if file != "" {
					where = file + " and flags"
				}
				return withCode(exitBadInput, fmt.Errorf("agent config (%s): %w", where, err))
			}
			dirs, err := hostops.LogDirs(eff.ServerProperties)
			if err != nil {
				return withCode(exitBadInput, fmt.Errorf("--server-properties: %w", err))
			}
			logger := newLogger(level)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			me, err := mo.start("agent", logger)
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
			w := workers.NewAgent(cl, eff, workers.Options{Logger: logger, Storage: storageRegistry})
			if err := w.Start(); err != nil {
				return withCode(exitFailed, fmt.Errorf("start agent: %w", err))
			}
			fmt.Fprintf(os.Stderr, "kbr agent: host %s polling task queue %s at %s (namespace %s); broker %s, log dirs %v\n",
				eff.Host, names.AgentTaskQueue(eff.Host), c.address, c.namespace, eff.Listener, dirs)
			<-ctx.Done()
			w.Stop()
			return nil
		},
	}
	c.flags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&file, "config", "", "agent config file (YAML)")
	fl.StringVar(&cfg.Host, "host", "", "this broker host's name, as brokers[].host of a metadata restore names it")
	fl.StringVar(&cfg.ServerProperties, "server-properties", "", "the broker's server.properties (log.dirs is read from it)")
	fl.StringVar(&cfg.StopCommand, "stop-command", hostops.DefaultStopCommand, "shell command that stops the broker")
	fl.StringVar(&cfg.StartCommand, "start-command", hostops.DefaultStartCommand, "shell command that starts the broker")
	fl.StringVar(&cfg.Listener, "listener", "127.0.0.1:9092", "the broker's host:port; it answers while the broker runs")
	fl.IntVar(&port, "port", 9092, "shorthand for --listener 127.0.0.1:PORT")
	fl.StringVar(&cfg.KafkaLibs, "kafka-libs", "", "the broker's libs directory (the Kafka version is read from its jars)")
	fl.StringVar(&cfg.KafkaVersion, "kafka-version", "", "the installed Kafka version, where --kafka-libs cannot tell")
	fl.StringVar(&level, "log-level", "info", "debug, info, warn or error")
	mo.AddFlags(cmd, "")
	return cmd
}
