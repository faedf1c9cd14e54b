package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"syscall"

	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"

	"github.com/kbr-project/kbr/internal/metrics/exporter"
)

// Default metrics addresses: loopback, next to Temporal's 7233 and 8233.
const (
	defaultServerMetrics = "127.0.0.1:9233"
	defaultWorkerMetrics = "127.0.0.1:9234"
)

// metricsOpts is --metrics-addr.
type metricsOpts struct {
	addr string
	def  string // the default ("" = off)
	fs   *pflag.FlagSet
}

// AddFlags adds --metrics-addr with m.def as its default.
func (m *metricsOpts) AddFlags(fs *pflag.FlagSet) {
	m.fs = fs
	help := "serve Prometheus metrics at http://ADDR/metrics (host:port; empty or off: none)"
	fs.StringVar(&m.addr, "metrics-addr", m.def, help)
}

// metricsEndpoint is a started registry and, when it listens, its server.
type metricsEndpoint struct {
	reg *exporter.Registry
	srv *exporter.Server
}

// start makes the registry and serves it. A default address that is taken
// (a second worker on the host) costs only a warning; an address the
// operator chose must work.
func (m *metricsOpts) start(who string, logger *slog.Logger, errOut io.Writer) (*metricsEndpoint, error) {
	if m.addr == "" || m.addr == "off" {
		return &metricsEndpoint{}, nil
	}
	reg := exporter.New(logger)
	srv, err := exporter.Serve(m.addr, reg)
	if err != nil {
		if (m.fs == nil || !m.fs.Changed("metrics-addr")) && errors.Is(err, syscall.EADDRINUSE) {
			fmt.Fprintf(errOut, "kbr %s: no metrics: %s is taken (set --metrics-addr)\n", who, m.addr)
			_ = reg.Close()
			return &metricsEndpoint{}, nil
		}
		_ = reg.Close()
		return nil, withCode(exitBadInput, fmt.Errorf("--metrics-addr: %w", err))
	}
	fmt.Fprintf(errOut, "kbr %s: metrics at http://%s/metrics\n", who, srv.Addr())
	return &metricsEndpoint{reg: reg, srv: srv}, nil
}

// close stops serving after a last report.
func (e *metricsEndpoint) close() {
	if e.srv != nil {
		_ = e.srv.Close()
	}
	if e.reg != nil {
		_ = e.reg.Close()
	}
}

// handler is what the Temporal client reports to (nil: nothing).
func (e *metricsEndpoint) handler() client.MetricsHandler {
	if e.reg == nil {
		return nil
	}
	return e.reg.Handler()
}
