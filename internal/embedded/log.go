package embedded

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"

	sdklog "go.temporal.io/sdk/log"
	serverlog "go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// The Temporal server is very chatty at Info level. Unless the caller's
// handler is enabled for Debug (an explicit request for verbose output), only
// Warn and above are forwarded.
func serverLogFloor(l *slog.Logger) slog.Level {
	if l.Enabled(context.Background(), slog.LevelDebug) {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// defaultLogger is used when Options.Logger is nil: warnings and errors to
// stderr, nothing on stdout.
func defaultLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// floorHandler drops records below a minimum level before they reach the
// wrapped handler.
type floorHandler struct {
	min  slog.Level
	next slog.Handler
}

func (h floorHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.next.Enabled(ctx, l)
}

func (h floorHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.next.Handle(ctx, r)
}

func (h floorHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return floorHandler{min: h.min, next: h.next.WithAttrs(as)}
}

func (h floorHandler) WithGroup(name string) slog.Handler {
	return floorHandler{min: h.min, next: h.next.WithGroup(name)}
}

func withFloor(l *slog.Logger, min slog.Level) *slog.Logger {
	return slog.New(floorHandler{min: min, next: l.Handler()})
}

// sdkLogger adapts slog for the SDK clients this package creates itself (the
// SDK's default logger writes to stdout).
func sdkLogger(l *slog.Logger) sdklog.Logger {
	return sdklog.NewStructuredLogger(l)
}

// logGate silences a server's logs from the moment it starts shutting down.
// Shutdown makes every in-flight request fail with "context canceled" (logged
// as errors and warnings by the services), and the v1.32 worker service never
// stops some of its internal SDK workers (scanners, parent-close-policy),
// which keep retrying their polls, and warning about it, after Stop.
type logGate struct {
	closed atomic.Bool
}

func newLogGate() *logGate { return &logGate{} }

func (g *logGate) close() { g.closed.Store(true) }

func (g *logGate) allows() bool { return !g.closed.Load() }

// benignWarnings are start-up warnings that describe this package's chosen
// configuration, not a problem; they are logged at Debug.
var benignWarnings = []string{
	// The frontend's HTTP API (and so Nexus over HTTP) is deliberately off.
	"HTTP API port has not been set",
}

// serverLogger implements the Temporal server's log.Logger on top of slog.
type serverLogger struct {
	l    *slog.Logger
	gate *logGate
}

var (
	_ serverlog.Logger     = serverLogger{}
	_ serverlog.WithLogger = serverLogger{}
)

func newServerLogger(l *slog.Logger, gate *logGate) serverLogger {
	return serverLogger{l: l.With("component", "temporal-server"), gate: gate}
}

func tagAttrs(tags []tag.Tag) []any {
	if len(tags) == 0 {
		return nil
	}
	out := make([]any, 0, len(tags))
	for _, t := range tags {
		if t == nil {
			continue
		}
		v := t.Value()
		if err, ok := v.(error); ok {
			v = err.Error()
		}
		out = append(out, slog.Any(t.Key(), v))
	}
	return out
}

func (s serverLogger) log(level slog.Level, msg string, tags []tag.Tag) {
	if level == slog.LevelWarn {
		for _, prefix := range benignWarnings {
			if strings.HasPrefix(msg, prefix) {
				level = slog.LevelDebug
				break
			}
		}
	}
	ctx := context.Background()
	if !s.gate.allows() || !s.l.Enabled(ctx, level) {
		return
	}
	s.l.Log(ctx, level, msg, tagAttrs(tags)...)
}

func (s serverLogger) Debug(msg string, tags ...tag.Tag) { s.log(slog.LevelDebug, msg, tags) }
func (s serverLogger) Info(msg string, tags ...tag.Tag)  { s.log(slog.LevelInfo, msg, tags) }
func (s serverLogger) Warn(msg string, tags ...tag.Tag)  { s.log(slog.LevelWarn, msg, tags) }
func (s serverLogger) Error(msg string, tags ...tag.Tag) { s.log(slog.LevelError, msg, tags) }

// DPanic panics only in development builds of the server; here it is an error.
func (s serverLogger) DPanic(msg string, tags ...tag.Tag) { s.log(slog.LevelError, msg, tags) }

func (s serverLogger) Panic(msg string, tags ...tag.Tag) {
	s.log(slog.LevelError, msg, tags)
	panic(msg)
}

// Fatal keeps the server's contract (the caller does not expect it to return):
// log, then exit the process, as the server's own zap logger does.
func (s serverLogger) Fatal(msg string, tags ...tag.Tag) {
	s.log(slog.LevelError, msg, tags)
	fmt.Fprintf(os.Stderr, "temporal server fatal error: %s\n", msg)
	os.Exit(1)
}

func (s serverLogger) With(tags ...tag.Tag) serverlog.Logger {
	return serverLogger{l: s.l.With(tagAttrs(tags)...), gate: s.gate}
}

// discardLogger returns a logger that drops everything.
func discardLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError + 100}))
}
