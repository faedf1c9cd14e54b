package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/hostops"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/workers"
)

// agentOpts are the options of `kbr agent`: the connection, and the agent's
// settings from flags over those of --config.
type agentOpts struct {
	conn    connOpts
	proc    processOpts
	metrics metricsOpts
	file    string
	port    int
	flags   config.Agent // the values of the flags
	fs      *pflag.FlagSet
}

func newAgentOpts() *agentOpts {
	return &agentOpts{proc: processOpts{defLevel: "info", noActs: true}}
}

func (o *agentOpts) AddFlags(fs *pflag.FlagSet) {
	o.fs = fs
	o.conn.AddFlags(fs)
	fs.StringVar(&o.file, "config", "", "agent config file (YAML)")
	fs.StringVar(&o.flags.Host, "host", "", "this broker host's name, as brokers[].host of a metadata restore names it")
	fs.StringVar(&o.flags.ServerProperties, "server-properties", "", "the broker's server.properties (log.dirs is read from it)")
	fs.StringVar(&o.flags.StopCommand, "stop-command", hostops.DefaultStopCommand, "shell command that stops the broker")
	fs.StringVar(&o.flags.StartCommand, "start-command", hostops.DefaultStartCommand, "shell command that starts the broker")
	fs.StringVar(&o.flags.Listener, "listener", "127.0.0.1:9092", "the broker's host:port; it answers while the broker runs")
	fs.IntVar(&o.port, "port", 9092, "shorthand for --listener 127.0.0.1:PORT")
	fs.StringVar(&o.flags.KafkaLibs, "kafka-libs", "", "the broker's libs directory (the Kafka version is read from its jars)")
	fs.StringVar(&o.flags.KafkaVersion, "kafka-version", "", "the installed Kafka version, where --kafka-libs cannot tell")
	o.proc.AddFlags(fs)
	o.metrics.AddFlags(fs)
}

func agentCmd() *cobra.Command {
	o := newAgentOpts()
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
			ctx, stop := stoppable()
			defer stop()
			return runAgent(ctx, o, streamsOf(cmd))
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// agentConfig is the agent's settings: --config's, then each flag given
// on the command line, then the defaults; validated.
func agentConfig(o *agentOpts) (config.Agent, error) {
	eff := config.Agent{}
	if o.file != "" {
		fc, err := config.LoadAgent(o.file)
		if err != nil {
			return eff, withCode(exitBadInput, err)
		}
		eff = *fc
	}
	changed := func(name string) bool { return o.fs != nil && o.fs.Changed(name) }
	set := func(name string, dst *string, v string) {
		if changed(name) {
			*dst = v
		}
	}
	set("host", &eff.Host, o.flags.Host)
	set("server-properties", &eff.ServerProperties, o.flags.ServerProperties)
	set("stop-command", &eff.StopCommand, o.flags.StopCommand)
	set("start-command", &eff.StartCommand, o.flags.StartCommand)
	set("listener", &eff.Listener, o.flags.Listener)
	set("kafka-libs", &eff.KafkaLibs, o.flags.KafkaLibs)
	set("kafka-version", &eff.KafkaVersion, o.flags.KafkaVersion)
	if changed("port") && !changed("listener") {
		eff.Listener = "127.0.0.1:" + strconv.Itoa(o.port)
	}
	eff.ApplyDefaults()
	if err := eff.Validate(); err != nil {
		where := "flags"
		if o.file != "" {
			where = o.file + " and flags"
		}
		return eff, withCode(exitBadInput, fmt.Errorf("agent config (%s): %w", where, err))
	}
	return eff, nil
}

// runAgent polls the host's agent task queue until ctx ends.
func runAgent(ctx context.Context, o *agentOpts, s streams) error {
	eff, err := agentConfig(o)
	if err != nil {
		return err
	}
	dirs, err := hostops.LogDirs(eff.ServerProperties)
	if err != nil {
		return withCode(exitBadInput, fmt.Errorf("--server-properties: %w", err))
	}
	logger := newLogger(o.proc.level)
	me, err := o.metrics.start("agent", logger, s.err)
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
	w := workers.NewAgent(cl, eff, workers.Options{Logger: logger, Storage: storageRegistry})
	if err := w.Start(); err != nil {
		return withCode(exitFailed, fmt.Errorf("start agent: %w", err))
	}
	fmt.Fprintf(s.err, "kbr agent: host %s polling task queue %s at %s (namespace %s); broker %s, log dirs %v\n",
		eff.Host, names.AgentTaskQueue(eff.Host), c.address, c.namespace, eff.Listener, dirs)
	<-ctx.Done()
	w.Stop()
	return nil
}
