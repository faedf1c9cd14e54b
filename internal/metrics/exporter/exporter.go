// Package exporter serves a process' metrics to Prometheus: kbr's (package
// metrics), the Temporal SDK's worker metrics (through the SDK's tally
// handler and tally's Prometheus reporter) and the Go runtime's. It is
// apart from package metrics so that workflow code, which emits through
// package metrics, does not link an HTTP server and a Prometheus client.
package exporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"

	"github.com/kbr-project/kbr/internal/metrics"
)

// ReportInterval is how often values reach the registry: a scrape sees
// what was recorded up to this long before it.
const ReportInterval = time.Second

// Buckets of every duration histogram (seconds): from a fast RPC of the
// SDK's to a day-long backup.
var Buckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400}

// Registry holds one process' metrics: kbr's, the Temporal SDK's and the Go
// runtime's, served by HTTPHandler.
type Registry struct {
	prom      *prometheus.Registry
	scope     tally.Scope
	closer    io.Closer
	regErrors prometheus.Counter
	logger    *slog.Logger
	once      sync.Map // metric names whose register error was logged
}

// New returns a registry; Close stops its reporting.
func New(logger *slog.Logger) *Registry {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Registry{prom: prometheus.NewRegistry(), logger: logger}
	r.regErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: metrics.RegisterErrors,
		Help: "metrics dropped because their label set differs from the first one seen for their name"})
	r.prom.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), r.regErrors)
	rep := tallyprom.NewReporter(tallyprom.Options{
		Registerer:              r.prom,
		DefaultTimerType:        tallyprom.HistogramTimerType,
		DefaultHistogramBuckets: Buckets,
		OnRegisterError:         r.onRegisterError,
	})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:         rep,
		Separator:              tallyprom.DefaultSeparator,
		SanitizeOptions:        &sanitize,
		OmitCardinalityMetrics: true,
	}, ReportInterval)
	r.scope, r.closer = sdktally.NewPrometheusNamingScope(scope), closer
	return r
}

// sanitize keeps names and label keys to Prometheus' characters and label
// values readable: task and cluster names keep their '-' and '.'.
var sanitize = tally.SanitizeOptions{
	NameCharacters:       tally.ValidCharacters{Ranges: tally.AlphanumericRange, Characters: []rune{'_'}},
	KeyCharacters:        tally.ValidCharacters{Ranges: tally.AlphanumericRange, Characters: []rune{'_'}},
	ValueCharacters:      tally.ValidCharacters{Ranges: tally.AlphanumericRange, Characters: []rune{'_', '-', '.', ':', '/', '@', ' ', '(', ')'}},
	ReplacementCharacter: tally.DefaultReplacementCharacter,
}

func (r *Registry) onRegisterError(err error) {
	r.regErrors.Inc()
	if _, seen := r.once.LoadOrStore(err.Error(), true); !seen {
		r.logger.Warn("metrics: a metric was dropped", "err", err)
	}
}

// Handler is the client.MetricsHandler to give the Temporal client
// (client.Options.MetricsHandler): the SDK's metrics pass through as the SDK
// tags them, kbr's (metrics.Specs) keep only their own labels.
func (r *Registry) Handler() client.MetricsHandler {
	return &handler{sdk: sdktally.NewMetricsHandler(r.scope), root: r.scope}
}

// HTTPHandler serves the registry in Prometheus' text format.
func (r *Registry) HTTPHandler() http.Handler {
	return promhttp.HandlerFor(r.prom, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Close reports what is pending and stops reporting.
func (r *Registry) Close() error { return r.closer.Close() }

// handler routes kbr's metrics to the root scope with their own labels only,
// every other name to the SDK's tally handler.
type handler struct {
	sdk  client.MetricsHandler
	root tally.Scope
	tags map[string]string
}

func (h *handler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	return &handler{sdk: h.sdk.WithTags(tags), root: h.root, tags: merged}
}

// own is the scope of one of kbr's metrics: exactly its labels, "" for
// those not given.
func (h *handler) own(name string) (tally.Scope, bool) {
	spec, ok := metrics.Specs[name]
	if !ok {
		return nil, false
	}
	tags := make(map[string]string, len(spec.Labels))
	for _, l := range spec.Labels {
		tags[l] = h.tags[l]
	}
	return h.root.Tagged(tags), true
}

func (h *handler) Counter(name string) client.MetricsCounter {
	if s, ok := h.own(name); ok {
		return s.Counter(name)
	}
	return h.sdk.Counter(name)
}

func (h *handler) Gauge(name string) client.MetricsGauge {
	if s, ok := h.own(name); ok {
		return s.Gauge(name)
	}
	return h.sdk.Gauge(name)
}

func (h *handler) Timer(name string) client.MetricsTimer {
	if s, ok := h.own(name); ok {
		return s.Timer(name)
	}
	return h.sdk.Timer(name)
}

// Server serves a registry over HTTP at /metrics.
type Server struct {
	srv  *http.Server
	addr string
}

// Serve listens on addr (host:port; port 0 picks one) and serves reg at
// /metrics until Close.
func Serve(addr string, reg *Registry) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", reg.HTTPHandler())
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/" {
			http.NotFound(w, req)
			return
		}
		fmt.Fprintln(w, "kbr: metrics at /metrics")
	})
	s := &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, addr: l.Addr().String()}
	go func() {
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			reg.logger.Error("metrics: server stopped", "err", err)
		}
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.addr }

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
