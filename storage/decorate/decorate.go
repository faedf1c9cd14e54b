// Package decorate wraps a storage.Backend with behaviour every backend
// needs and none should copy: retries of transient errors (Retry), a bound
// on concurrent operations (Limit) and logging (Log). Each returns a
// storage.Backend, so they stack:
//
//	b = decorate.Log(decorate.Retry(decorate.Limit(b, 8), decorate.DefaultPolicy), logger)
//
// Put Limit innermost, so a retry waiting out its backoff does not hold a
// slot, and Log outermost, so one logged operation is what the caller did.
package decorate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/kbr-project/kbr/storage"
)

var (
	_ storage.RangeOpener   = (*retrying)(nil)
	_ storage.RangeOpener   = (*limited)(nil)
	_ storage.RangeOpener   = (*logged)(nil)
	_ storage.PartialLister = (*retrying)(nil)
	_ storage.PartialLister = (*limited)(nil)
	_ storage.PartialLister = (*logged)(nil)
)

// Policy says how Retry retries.
type Policy struct {
	// Attempts is the total number of tries of one operation, the first
	// included (at least 1).
	Attempts int
	// Initial is the wait after the first failure; each further wait
	// doubles, up to Max. Waits are jittered by up to ±20 %.
	Initial, Max time.Duration
}

// DefaultPolicy tries five times over about 8 seconds: enough for a server
// restart or a dropped connection, short enough that a Temporal activity's
// own retry (with its longer backoff) takes over from there.
var DefaultPolicy = Policy{Attempts: 5, Initial: 500 * time.Millisecond, Max: 4 * time.Second}

// Retry retries the operations that are safe to repeat (Open, OpenRange,
// Stat, List, ListPartial, Delete, FreeSpace, and the Create call itself) while they fail with an
// error that is not permanent, waiting between tries as policy says and
// never past ctx. A write in progress is not retried: the bytes already
// handed to a Writer cannot be replayed, so an error from Write or Commit
// goes to the caller, who writes the file again from the start (which the
// storage contract makes safe). Likewise an error while reading an opened
// file ends that read.
func Retry(b storage.Backend, policy Policy) storage.Backend {
	if policy.Attempts < 1 {
		policy.Attempts = 1
	}
	if policy.Initial <= 0 {
		policy.Initial = 100 * time.Millisecond
	}
	if policy.Max < policy.Initial {
		policy.Max = policy.Initial
	}
	return &retrying{Backend: b, p: policy, sleep: sleepCtx}
}

type retrying struct {
	storage.Backend
	p     Policy
	sleep func(context.Context, time.Duration) error
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// do runs fn until it succeeds, fails permanently, runs out of attempts, or
// ctx ends. The error returned is fn's last, annotated with the count.
func (r *retrying) do(ctx context.Context, op string, fn func() error) error {
	wait := r.p.Initial
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || storage.IsPermanent(err) || ctx.Err() != nil {
			return err
		}
		if attempt >= r.p.Attempts {
			if attempt == 1 {
				return err
			}
			return fmt.Errorf("%s: gave up after %d attempts: %w", op, attempt, err)
		}
		jittered := time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64()))
		if serr := r.sleep(ctx, jittered); serr != nil {
			return err
		}
		wait = min(2*wait, r.p.Max)
	}
}

func (r *retrying) Create(ctx context.Context, name string) (w storage.Writer, err error) {
	err = r.do(ctx, "create "+name, func() error { w, err = r.Backend.Create(ctx, name); return err })
	return w, err
}

func (r *retrying) Open(ctx context.Context, name string) (rc io.ReadCloser, err error) {
	err = r.do(ctx, "open "+name, func() error { rc, err = r.Backend.Open(ctx, name); return err })
	return rc, err
}

func (r *retrying) OpenRange(ctx context.Context, name string, offset, length int64) (rc io.ReadCloser, err error) {
	err = r.do(ctx, fmt.Sprintf("open %s at %d", name, offset), func() error {
		rc, err = storage.OpenRange(ctx, r.Backend, name, offset, length)
		return err
	})
	return rc, err
}

func (r *retrying) Stat(ctx context.Context, name string) (fi storage.FileInfo, err error) {
	err = r.do(ctx, "stat "+name, func() error { fi, err = r.Backend.Stat(ctx, name); return err })
	return fi, err
}

func (r *retrying) List(ctx context.Context, prefix string) (fs []storage.FileInfo, err error) {
	err = r.do(ctx, fmt.Sprintf("list %q", prefix), func() error { fs, err = r.Backend.List(ctx, prefix); return err })
	return fs, err
}

func (r *retrying) Delete(ctx context.Context, name string) error {
	return r.do(ctx, "delete "+name, func() error { return r.Backend.Delete(ctx, name) })
}

func (r *retrying) ListPartial(ctx context.Context, prefix string) (fs []storage.FileInfo, err error) {
	err = r.do(ctx, fmt.Sprintf("list partial %q", prefix), func() error { fs, err = storage.ListPartial(ctx, r.Backend, prefix); return err })
	return fs, err
}

// RemoveDir is tried once: a directory that is not empty fails it, which
// is an answer and not a fault, and removing empty directories is only
// tidying up (a failure leaves an empty directory, nothing else).
func (r *retrying) RemoveDir(ctx context.Context, name string) error {
	return storage.RemoveDir(ctx, r.Backend, name)
}

func (r *retrying) FreeSpace(ctx context.Context) (n uint64, err error) {
	err = r.do(ctx, "free space", func() error { n, err = r.Backend.FreeSpace(ctx); return err })
	return n, err
}

// Limit lets at most n operations run on b at once; the others wait for a
// slot (or for their ctx to end). A Create holds its slot until the write
// is committed or aborted, an Open until the reader is closed: n bounds the
// connections and streams a target sees. So a caller must end a stream
// before starting more than n: with n = 1, copying from Open into Create on
// the same backend would wait forever.
func Limit(b storage.Backend, n int) storage.Backend {
	if n < 1 {
		n = 1
	}
	return &limited{Backend: b, slots: make(chan struct{}, n)}
}

type limited struct {
	storage.Backend
	slots chan struct{}
}

func (l *limited) acquire(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: waiting for a free connection slot: %w", l.Backend, ctx.Err())
	}
}

func (l *limited) release() { <-l.slots }

func (l *limited) Create(ctx context.Context, name string) (storage.Writer, error) {
	if err := l.acquire(ctx); err != nil {
		return nil, err
	}
	w, err := l.Backend.Create(ctx, name)
	if err != nil {
		l.release()
		return nil, err
	}
	return &limitedWriter{Writer: w, release: sync.OnceFunc(l.release)}, nil
}

type limitedWriter struct {
	storage.Writer
	release func()
}

func (w *limitedWriter) Commit() error { defer w.release(); return w.Writer.Commit() }
func (w *limitedWriter) Abort() error  { defer w.release(); return w.Writer.Abort() }

func (l *limited) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := l.acquire(ctx); err != nil {
		return nil, err
	}
	rc, err := l.Backend.Open(ctx, name)
	if err != nil {
		l.release()
		return nil, err
	}
	return &limitedReader{ReadCloser: rc, release: sync.OnceFunc(l.release)}, nil
}

func (l *limited) OpenRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := l.acquire(ctx); err != nil {
		return nil, err
	}
	rc, err := storage.OpenRange(ctx, l.Backend, name, offset, length)
	if err != nil {
		l.release()
		return nil, err
	}
	return &limitedReader{ReadCloser: rc, release: sync.OnceFunc(l.release)}, nil
}

type limitedReader struct {
	io.ReadCloser
	release func()
}

func (r *limitedReader) Close() error { defer r.release(); return r.ReadCloser.Close() }

// WriteTo keeps the wrapped reader's fast path (io.Copy uses it).
func (r *limitedReader) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := r.ReadCloser.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{r.ReadCloser})
}

func (l *limited) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	if err := l.acquire(ctx); err != nil {
		return storage.FileInfo{}, err
	}
	defer l.release()
	return l.Backend.Stat(ctx, name)
}

func (l *limited) List(ctx context.Context, prefix string) ([]storage.FileInfo, error) {
	if err := l.acquire(ctx); err != nil {
		return nil, err
	}
	defer l.release()
	return l.Backend.List(ctx, prefix)
}

func (l *limited) Delete(ctx context.Context, name string) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	return l.Backend.Delete(ctx, name)
}

func (l *limited) RemoveDir(ctx context.Context, name string) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	return storage.RemoveDir(ctx, l.Backend, name)
}

func (l *limited) ListPartial(ctx context.Context, prefix string) ([]storage.FileInfo, error) {
	if err := l.acquire(ctx); err != nil {
		return nil, err
	}
	defer l.release()
	return storage.ListPartial(ctx, l.Backend, prefix)
}

func (l *limited) FreeSpace(ctx context.Context) (uint64, error) {
	if err := l.acquire(ctx); err != nil {
		return 0, err
	}
	defer l.release()
	return l.Backend.FreeSpace(ctx)
}

// Log logs every operation on b: at Debug when it succeeds, at Warn when it
// fails (with whether the error is permanent). Records carry the target as
// its String() describes it, the file name, the duration and, for writes
// and reads, the byte count; never a credential (String has none).
func Log(b storage.Backend, logger *slog.Logger) storage.Backend {
	if logger == nil {
		logger = slog.Default()
	}
	return &logged{Backend: b, log: logger.With("target", b.String())}
}

type logged struct {
	storage.Backend
	log *slog.Logger
}

func (l *logged) done(ctx context.Context, op, name string, start time.Time, err error, attrs ...any) {
	attrs = append(attrs, "op", op, "duration", time.Since(start).Round(time.Microsecond))
	if name != "" {
		attrs = append(attrs, "name", name)
	}
	if err != nil {
		// A missing file is an answer, not a failure of the target.
		level := slog.LevelWarn
		if errors.Is(err, storage.ErrNotFound) {
			level = slog.LevelDebug
		}
		l.log.Log(ctx, level, "storage "+op+" failed", append(attrs, "err", err, "permanent", storage.IsPermanent(err))...)
		return
	}
	l.log.Log(ctx, slog.LevelDebug, "storage "+op, attrs...)
}

func (l *logged) Create(ctx context.Context, name string) (storage.Writer, error) {
	start := time.Now()
	w, err := l.Backend.Create(ctx, name)
	if err != nil {
		l.done(ctx, "create", name, start, err)
		return nil, err
	}
	return &loggedWriter{Writer: w, l: l, ctx: context.WithoutCancel(ctx), name: name, start: start}, nil
}

type loggedWriter struct {
	storage.Writer
	l     *logged
	ctx   context.Context
	name  string
	start time.Time
	n     int64
}

func (w *loggedWriter) Write(p []byte) (int, error) {
	n, err := w.Writer.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *loggedWriter) Commit() error {
	err := w.Writer.Commit()
	w.l.done(w.ctx, "write", w.name, w.start, err, "bytes", w.n)
	return err
}

func (w *loggedWriter) Abort() error {
	err := w.Writer.Abort()
	w.l.log.Log(w.ctx, slog.LevelInfo, "storage write aborted", "name", w.name, "bytes", w.n, "err", err)
	return err
}

func (l *logged) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	start := time.Now()
	rc, err := l.Backend.Open(ctx, name)
	if err != nil {
		l.done(ctx, "open", name, start, err)
		return nil, err
	}
	return &loggedReader{ReadCloser: rc, l: l, ctx: context.WithoutCancel(ctx), name: name, start: start}, nil
}

func (l *logged) OpenRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	start := time.Now()
	rc, err := storage.OpenRange(ctx, l.Backend, name, offset, length)
	if err != nil {
		l.done(ctx, "open range", name, start, err, "offset", offset, "length", length)
		return nil, err
	}
	return &loggedReader{ReadCloser: rc, l: l, ctx: context.WithoutCancel(ctx), name: name, start: start,
		attrs: []any{"offset", offset, "length", length}}, nil
}

type loggedReader struct {
	io.ReadCloser
	l     *logged
	ctx   context.Context
	name  string
	start time.Time
	n     int64
	err   error
	attrs []any // of a range read: its offset and length
}

func (r *loggedReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.n += int64(n)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// WriteTo keeps the wrapped reader's fast path (io.Copy uses it).
func (r *loggedReader) WriteTo(w io.Writer) (int64, error) {
	var n int64
	var err error
	if wt, ok := r.ReadCloser.(io.WriterTo); ok {
		n, err = wt.WriteTo(w)
	} else {
		n, err = io.Copy(w, struct{ io.Reader }{r.ReadCloser})
	}
	r.n += n
	if err != nil {
		r.err = err
	}
	return n, err
}

func (r *loggedReader) Close() error {
	err := r.ReadCloser.Close()
	r.l.done(r.ctx, "read", r.name, r.start, errors.Join(r.err, err), append([]any{"bytes", r.n}, r.attrs...)...)
	return err
}

func (l *logged) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	start := time.Now()
	fi, err := l.Backend.Stat(ctx, name)
	l.done(ctx, "stat", name, start, err)
	return fi, err
}

func (l *logged) List(ctx context.Context, prefix string) ([]storage.FileInfo, error) {
	start := time.Now()
	fs, err := l.Backend.List(ctx, prefix)
	l.done(ctx, "list", "", start, err, "prefix", prefix, "files", len(fs))
	return fs, err
}

func (l *logged) Delete(ctx context.Context, name string) error {
	start := time.Now()
	err := l.Backend.Delete(ctx, name)
	l.done(ctx, "delete", name, start, err)
	return err
}

func (l *logged) ListPartial(ctx context.Context, prefix string) ([]storage.FileInfo, error) {
	start := time.Now()
	fs, err := storage.ListPartial(ctx, l.Backend, prefix)
	l.done(ctx, "list partial", "", start, err, "prefix", prefix, "files", len(fs))
	return fs, err
}

func (l *logged) RemoveDir(ctx context.Context, name string) error {
	start := time.Now()
	err := storage.RemoveDir(ctx, l.Backend, name)
	if err != nil {
		// Tidying tries directories that may still hold files (a run's data
		// directory after its plan files go) and keeps any it cannot remove:
		// an answer, not a failure of the target worth a warning each run.
		l.log.Log(ctx, slog.LevelDebug, "storage remove directory: kept", "op", "remove directory",
			"duration", time.Since(start).Round(time.Microsecond), "name", name, "err", err)
		return err
	}
	l.done(ctx, "remove directory", name, start, err)
	return err
}

func (l *logged) FreeSpace(ctx context.Context) (uint64, error) {
	start := time.Now()
	n, err := l.Backend.FreeSpace(ctx)
	l.done(ctx, "free space", "", start, err, "bytes", n)
	return n, err
}

func (l *logged) Close() error {
	err := l.Backend.Close()
	if err != nil {
		l.log.Warn("storage close failed", "err", err)
	}
	return err
}
