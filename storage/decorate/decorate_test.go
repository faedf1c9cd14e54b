package decorate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbr-project/kbr/storage"
)

// fake is an in-memory backend whose operations can be made to fail and to
// take time, and which counts calls and concurrent operations.
type fake struct {
	mu    sync.Mutex
	files map[string][]byte
	calls map[string]int
	// fail, if set, is asked before each operation; a non-nil error is returned.
	fail func(op string, call int) error
	// hold delays each operation, to observe concurrency.
	hold     time.Duration
	inFlight atomic.Int32
	peak     atomic.Int32
}

func newFake() *fake { return &fake{files: map[string][]byte{}, calls: map[string]int{}} }

func (f *fake) enter(op string) error {
	f.mu.Lock()
	f.calls[op]++
	n := f.calls[op]
	f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(op, n); err != nil {
			return err
		}
	}
	cur := f.inFlight.Add(1)
	for {
		p := f.peak.Load()
		if cur <= p || f.peak.CompareAndSwap(p, cur) {
			break
		}
	}
	time.Sleep(f.hold)
	f.inFlight.Add(-1)
	return nil
}

func (f *fake) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

type fakeWriter struct {
	f    *fake
	name string
	buf  bytes.Buffer
}

func (w *fakeWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }
func (w *fakeWriter) Commit() error {
	if err := w.f.enter("commit"); err != nil {
		return err
	}
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	w.f.files[w.name] = w.buf.Bytes()
	return nil
}
func (w *fakeWriter) Abort() error { return nil }

func (f *fake) Create(ctx context.Context, name string) (storage.Writer, error) {
	if err := f.enter("create"); err != nil {
		return nil, err
	}
	return &fakeWriter{f: f, name: name}, nil
}

func (f *fake) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := f.enter("open"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.files[name]
	if !ok {
		return nil, storage.Permanent(fmt.Errorf("%w: %s", storage.ErrNotFound, name))
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// OpenRange is native (storage.RangeOpener), so tests see whether a
// decorator hands range reads on or turns them into Open.
func (f *fake) OpenRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := f.enter("openrange"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.files[name]
	if !ok {
		return nil, storage.Permanent(fmt.Errorf("%w: %s", storage.ErrNotFound, name))
	}
	end := int64(len(b))
	if length >= 0 {
		end = offset + length
	}
	if offset > int64(len(b)) || end > int64(len(b)) {
		return nil, storage.RangeError(f.String(), name, offset, length, int64(len(b)))
	}
	return io.NopCloser(bytes.NewReader(b[offset:end])), nil
}

func (f *fake) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	if err := f.enter("stat"); err != nil {
		return storage.FileInfo{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.files[name]
	if !ok {
		return storage.FileInfo{}, storage.Permanent(fmt.Errorf("%w: %s", storage.ErrNotFound, name))
	}
	return storage.FileInfo{Name: name, Size: int64(len(b))}, nil
}

func (f *fake) List(ctx context.Context, prefix string) ([]storage.FileInfo, error) {
	if err := f.enter("list"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []storage.FileInfo
	for n, b := range f.files {
		if strings.HasPrefix(n, prefix) {
			out = append(out, storage.FileInfo{Name: n, Size: int64(len(b))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *fake) Delete(ctx context.Context, name string) error {
	if err := f.enter("delete"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.files, name)
	return nil
}

func (f *fake) FreeSpace(ctx context.Context) (uint64, error) {
	if err := f.enter("freespace"); err != nil {
		return 0, err
	}
	return 1 << 30, nil
}

func (f *fake) Close() error   { return nil }
func (f *fake) String() string { return "Fake:user@server:/root" }

var errTransient = errors.New("connection reset by peer")

var fastPolicy = Policy{Attempts: 4, Initial: time.Millisecond, Max: 2 * time.Millisecond}

// TestRetryTransient guards against a retry decorator that gives up on the
// first dropped connection, or that does not retry every idempotent operation.
func TestRetryTransient(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.files["x"] = []byte("data")
	f.fail = func(op string, call int) error {
		if call <= 2 { // the first two calls of every operation fail
			return errTransient
		}
		return nil
	}
	b := Retry(f, fastPolicy)
	ctx := context.Background()
	ops := map[string]func() error{
		"stat":      func() error { _, err := b.Stat(ctx, "x"); return err },
		"list":      func() error { _, err := b.List(ctx, ""); return err },
		"delete":    func() error { return b.Delete(ctx, "nope") },
		"freespace": func() error { _, err := b.FreeSpace(ctx); return err },
		"open": func() error {
			rc, err := b.Open(ctx, "x")
			if err == nil {
				rc.Close()
			}
			return err
		},
		"create": func() error { _, err := b.Create(ctx, "y"); return err },
		"openrange": func() error {
			rc, err := storage.OpenRange(ctx, b, "x", 1, 2)
			if err == nil {
				rc.Close()
			}
			return err
		},
	}
	for op, fn := range ops {
		if err := fn(); err != nil {
			t.Errorf("%s: %v, want success on the third attempt", op, err)
		}
		if got := f.count(op); got != 3 {
			t.Errorf("%s called %d times, want 3", op, got)
		}
	}
}

// TestRetryPermanent guards against retrying what cannot succeed (bad
// credentials retried for minutes; a missing file looked up five times).
func TestRetryPermanent(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.fail = func(op string, call int) error {
		if op == "stat" {
			return storage.Permanent(errors.New("authentication failed"))
		}
		return nil
	}
	b := Retry(f, fastPolicy)
	if _, err := b.Stat(context.Background(), "x"); !storage.IsPermanent(err) {
		t.Errorf("Stat = %v, want the permanent error", err)
	}
	if got := f.count("stat"); got != 1 {
		t.Errorf("stat called %d times, want 1", got)
	}
	if _, err := b.Open(context.Background(), "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Open(missing) = %v, want ErrNotFound", err)
	}
	if got := f.count("open"); got != 1 {
		t.Errorf("open of a missing file called %d times, want 1", got)
	}
}

// TestRetryGivesUp guards against endless retries and against losing the
// cause: after Attempts tries the last error comes back, still retryable.
func TestRetryGivesUp(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.fail = func(string, int) error { return errTransient }
	b := Retry(f, fastPolicy)
	_, err := b.List(context.Background(), "")
	if !errors.Is(err, errTransient) || storage.IsPermanent(err) {
		t.Errorf("List = %v, want the transient error", err)
	}
	if !strings.Contains(err.Error(), "4 attempts") {
		t.Errorf("error %q does not say how often it was tried", err)
	}
	if got := f.count("list"); got != 4 {
		t.Errorf("list called %d times, want 4", got)
	}
}

// TestRetryStopsWithContext guards against a retry loop that outlives its
// caller (a cancelled activity still hammering the target).
func TestRetryStopsWithContext(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.fail = func(string, int) error { return errTransient }
	b := Retry(f, Policy{Attempts: 100, Initial: time.Hour, Max: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := b.Stat(ctx, "x")
	if !errors.Is(err, errTransient) {
		t.Errorf("Stat = %v, want the last transient error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Stat returned after %v, want right after the context ended", d)
	}
	if got := f.count("stat"); got != 1 {
		t.Errorf("stat called %d times, want 1", got)
	}
}

// TestRetryDoesNotReplayWrites guards against retrying a commit, whose
// bytes the decorator no longer has: the error must reach the caller.
func TestRetryDoesNotReplayWrites(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.fail = func(op string, call int) error {
		if op == "commit" {
			return errTransient
		}
		return nil
	}
	b := Retry(f, fastPolicy)
	_, err := storage.WriteFile(context.Background(), b, "x", strings.NewReader("data"))
	if !errors.Is(err, errTransient) {
		t.Errorf("WriteFile = %v, want the commit's error", err)
	}
	if got := f.count("commit"); got != 1 {
		t.Errorf("commit called %d times, want 1", got)
	}
}

// TestLimit guards against a limit that does not hold (a target swamped by
// connections) or that leaks slots (everything blocks after n streams).
func TestLimit(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.hold = 5 * time.Millisecond
	b := Limit(f, 3)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 3 {
			case 0:
				b.Stat(ctx, "x")
			case 1:
				b.List(ctx, "")
			default:
				storage.WriteFile(ctx, b, fmt.Sprint(i), strings.NewReader("x"))
			}
		}()
	}
	wg.Wait()
	if p := f.peak.Load(); p > 3 || p < 2 {
		t.Errorf("peak concurrency %d, want 2..3", p)
	}
	// Open streams hold their slot until Close.
	f.hold = 0
	var open []io.ReadCloser
	for range 3 {
		rc, err := b.Open(ctx, "2")
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, rc)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := b.Stat(short, "2"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stat with 3 open streams and a limit of 3 = %v, want to wait until the deadline", err)
	}
	for _, rc := range open {
		rc.Close()
		rc.Close() // a second Close must not free a second slot
	}
	for range 3 {
		w, err := b.Create(ctx, "z")
		if err != nil {
			t.Fatal(err)
		}
		w.Abort()
		w.Abort()
	}
	if _, err := b.Stat(ctx, "2"); err != nil {
		t.Errorf("Stat after every stream ended: %v", err)
	}
	if n := len(b.(*limited).slots); n != 0 {
		t.Errorf("%d slots still taken after every operation ended", n)
	}
}

// TestLog guards against logs that lose the target or the error, and
// against logging secrets: only String() describes the target.
func TestLog(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFake()
	f.fail = func(op string, call int) error {
		if op == "delete" {
			return storage.Permanent(errors.New("permission denied"))
		}
		return nil
	}
	b := Log(f, logger)
	ctx := context.Background()
	if _, err := storage.WriteFile(ctx, b, "seg/1", strings.NewReader("12345")); err != nil {
		t.Fatal(err)
	}
	rc, err := b.Open(ctx, "seg/1")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, rc)
	rc.Close()
	b.Delete(ctx, "seg/1")
	b.Stat(ctx, "missing")
	out := buf.String()
	for _, want := range []string{
		`msg="storage write" target=Fake:user@server:/root bytes=5`,
		`msg="storage read" target=Fake:user@server:/root bytes=5`,
		`level=WARN msg="storage delete failed" target=Fake:user@server:/root`,
		`err="permission denied" permanent=true`,
		`level=DEBUG msg="storage stat failed"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// TestListPartialPassesThrough guards against decorators hiding a
// backend's leftover partial files from a prune.
func TestListPartialPassesThrough(t *testing.T) {
	inner := &partialLister{}
	b := Log(Limit(Retry(inner, Policy{Attempts: 3}), 2), nil)
	fs, err := storage.ListPartial(t.Context(), b, "x/")
	if err != nil || len(fs) != 1 || fs[0].Name != "x/a.kbr-partial-00" {
		t.Errorf("ListPartial through decorators = %v, %v", fs, err)
	}
	_, err = storage.ListPartial(t.Context(), Retry(noPartials{}, Policy{Attempts: 3}), "")
	if !errors.Is(err, storage.ErrUnsupported) || !storage.IsPermanent(err) {
		t.Errorf("ListPartial of a backend without partial files = %v; want a permanent ErrUnsupported", err)
	}
}

type noPartials struct{ storage.Backend }

func (noPartials) String() string { return "none" }

type partialLister struct{ noPartials }

func (*partialLister) ListPartial(_ context.Context, prefix string) ([]storage.FileInfo, error) {
	return []storage.FileInfo{{Name: prefix + "a.kbr-partial-00"}}, nil
}

// TestRemoveDirPassesThrough: decorators hand RemoveDir to a backend with
// directories (once: a directory that is not empty is an answer, not a
// fault) and say ErrUnsupported for one without.
func TestRemoveDirPassesThrough(t *testing.T) {
	inner := &dirRemover{}
	b := Log(Limit(Retry(inner, Policy{Attempts: 3}), 2), nil)
	if err := storage.RemoveDir(t.Context(), b, "x/full"); err == nil || len(inner.calls) != 1 {
		t.Errorf("RemoveDir of a non-empty directory through decorators = %v after %d calls; want its error after 1", err, len(inner.calls))
	}
	removed, left, err := storage.RemoveEmptyDirs(t.Context(), b, []string{"x/empty/f", "x/full/g"}, "x")
	if err != nil || removed != 1 || left != 1 {
		t.Errorf("RemoveEmptyDirs through decorators = %d, %d, %v; want 1 removed, 1 left", removed, left, err)
	}
	// Tidying keeps a directory that still holds files without a warning.
	var buf bytes.Buffer
	logged := Log(inner, slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	storage.RemoveEmptyDirs(t.Context(), logged, []string{"x/full/g"}, "x")
	if out := buf.String(); strings.Contains(out, "level=WARN") || !strings.Contains(out, `msg="storage remove directory: kept"`) {
		t.Errorf("log of a directory kept by tidying:\n%s\nwant it at DEBUG, no warning", out)
	}
	removed, left, err = storage.RemoveEmptyDirs(t.Context(), Log(Retry(noPartials{}, Policy{Attempts: 3}), nil), []string{"x/empty/f"}, "x")
	if err != nil || removed != 0 || left != 0 {
		t.Errorf("RemoveEmptyDirs on a backend without directories = %d, %d, %v; want 0, 0, nil", removed, left, err)
	}
}

type dirRemover struct {
	noPartials
	calls []string
}

func (d *dirRemover) RemoveDir(_ context.Context, name string) error {
	d.calls = append(d.calls, name)
	if strings.HasSuffix(name, "full") {
		return errors.New("directory not empty")
	}
	return nil
}

// TestOpenRangePassesThrough guards against decorators that turn a range
// read into a read of the whole file from its start (the data path reads
// chunks of pack files by range), that do not hold a Limit slot for as
// long as the range is read, or that lose the fallback for a backend
// without native range reads.
func TestOpenRangePassesThrough(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.files["pack"] = []byte("0123456789")
	b := Log(Limit(Retry(f, fastPolicy), 1), nil)
	ctx := t.Context()
	rc, err := storage.OpenRange(ctx, b, "pack", 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err != nil || string(got) != "3456" {
		t.Errorf("OpenRange(3, 4) through decorators read %q, %v; want 3456", got, err)
	}
	if n, m := f.count("openrange"), f.count("open"); n != 1 || m != 0 {
		t.Errorf("the backend saw %d OpenRange and %d Open calls, want 1 and 0", n, m)
	}
	// The slot is held until Close.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := storage.OpenRange(short, b, "pack", 0, 1); err == nil {
		t.Errorf("a second OpenRange with Limit 1 and the first reader open succeeded")
	}
	rc.Close()
	if _, err := storage.OpenRange(ctx, b, "pack", 20, 1); !errors.Is(err, storage.ErrBadRange) {
		t.Errorf("OpenRange past the end through decorators = %v, want ErrBadRange", err)
	}
	if got := f.count("openrange") - 1; got != 1 {
		t.Errorf("OpenRange past the end was tried %d times, want once (it is permanent)", got)
	}

	// Without native range reads: Open and discard.
	plain := Retry(openOnly{f}, fastPolicy)
	rc, err = storage.OpenRange(ctx, plain, "pack", 7, -1)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(rc); err != nil || string(got) != "789" {
		t.Errorf("OpenRange(7, -1) by Open read %q, %v; want 789", got, err)
	}
	for _, r := range []struct{ off, n int64 }{{11, -1}, {5, 6}} {
		rc, err := storage.OpenRange(ctx, plain, "pack", r.off, r.n)
		if err == nil {
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		if !errors.Is(err, storage.ErrBadRange) {
			t.Errorf("OpenRange(%d, %d) by Open of a 10-byte file = %v, want ErrBadRange", r.off, r.n, err)
		}
	}
}

// openOnly hides the fake's OpenRange.
type openOnly struct{ f *fake }

func (o openOnly) Create(ctx context.Context, name string) (storage.Writer, error) {
	return o.f.Create(ctx, name)
}
func (o openOnly) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	return o.f.Open(ctx, name)
}
func (o openOnly) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	return o.f.Stat(ctx, name)
}
func (o openOnly) List(ctx context.Context, prefix string) ([]storage.FileInfo, error) {
	return o.f.List(ctx, prefix)
}
func (o openOnly) Delete(ctx context.Context, name string) error { return o.f.Delete(ctx, name) }
func (o openOnly) FreeSpace(ctx context.Context) (uint64, error) { return o.f.FreeSpace(ctx) }
func (o openOnly) Close() error                                  { return nil }
func (o openOnly) String() string                                { return o.f.String() }
