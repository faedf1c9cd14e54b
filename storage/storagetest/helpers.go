package storagetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbr-project/kbr/storage"
)

// opTimeout bounds one operation of a check; a backend that needs longer on
// a local server hangs.
const opTimeout = 2 * time.Minute

// newBackend opens a backend on a fresh root and closes it when t ends.
func newBackend(t *testing.T, h Harness) storage.Backend {
	t.Helper()
	b := h.New(t)
	if b == nil {
		t.Fatal("Harness.New returned nil")
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close %s: %v", b, err)
		}
	})
	return b
}

func opCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// Stream returns size bytes of a reproducible pseudo-random stream: the same
// seed gives the same bytes, generated on the fly (never held in memory).
func Stream(seed string, size int64) io.Reader {
	var key [32]byte
	copy(key[:], seed)
	binary.LittleEndian.PutUint64(key[24:], uint64(size))
	return &stream{r: rand.NewChaCha8(key), left: size}
}

type stream struct {
	r    *rand.ChaCha8
	left int64
}

func (s *stream) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, _ := s.r.Read(p)
	s.left -= int64(n)
	return n, nil
}

// content returns a small reproducible file in memory.
func content(seed string, size int) []byte {
	b, _ := io.ReadAll(Stream(seed, int64(size)))
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return fmt.Sprintf("%x", s[:8])
}

func sumOf(h hash.Hash) string { return fmt.Sprintf("%x", h.Sum(nil)[:8]) }

// write stores data under name and fails the test on any error.
func write(t *testing.T, b storage.Backend, name string, data []byte) {
	t.Helper()
	if _, err := storage.WriteFile(opCtx(t), b, name, bytes.NewReader(data)); err != nil {
		t.Fatalf("write %s to %s: %v", name, b, err)
	}
}

// read returns the committed bytes of name and fails the test on any error.
func read(t *testing.T, b storage.Backend, name string) []byte {
	t.Helper()
	got, err := tryRead(opCtx(t), b, name)
	if err != nil {
		t.Fatalf("read %s from %s: %v", name, b, err)
	}
	return got
}

func tryRead(ctx context.Context, b storage.Backend, name string) ([]byte, error) {
	rc, err := b.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	got, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return got, err
}

func names(fs []storage.FileInfo) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name
	}
	return out
}

// mustBeGone checks that name is invisible through Stat, Open and List.
func mustBeGone(t *testing.T, b storage.Backend, name, why string) {
	t.Helper()
	ctx := opCtx(t)
	if fi, err := b.Stat(ctx, name); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("%s: Stat(%s) = %+v, %v; want ErrNotFound", why, name, fi, err)
	}
	if rc, err := b.Open(ctx, name); !errors.Is(err, storage.ErrNotFound) {
		if rc != nil {
			rc.Close()
		}
		t.Errorf("%s: Open(%s) error = %v; want ErrNotFound", why, name, err)
	}
	fs, err := b.List(ctx, "")
	if err != nil {
		t.Fatalf("%s: List: %v", why, err)
	}
	for _, f := range fs {
		if f.Name == name || strings.HasPrefix(f.Name, name+".") { // also "<name>.kbr-partial" and the like
			t.Errorf("%s: List shows %q (%d bytes)", why, f.Name, f.Size)
		}
	}
}

// forEach runs fn(i) for i in [0,n) on at most workers goroutines and returns
// the first error.
func forEach(n, workers int, fn func(i int) error) error {
	var (
		next     atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
		failed   atomic.Bool
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { firstErr = err })
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// rssSampler records the peak resident set size of this process.
type rssSampler struct {
	base int64
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

// startRSS takes a baseline after a full GC and samples VmRSS every 20 ms.
func startRSS(t *testing.T) *rssSampler {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	base, err := vmRSS()
	if err != nil {
		t.Fatalf("read VmRSS: %v", err)
	}
	s := &rssSampler{base: base, stop: make(chan struct{}), done: make(chan struct{})}
	s.peak.Store(base)
	go func() {
		defer close(s.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if v, err := vmRSS(); err == nil && v > s.peak.Load() {
				s.peak.Store(v)
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// added stops sampling and returns the peak RSS above the baseline.
func (s *rssSampler) added() int64 {
	close(s.stop)
	<-s.done
	if v, err := vmRSS(); err == nil && v > s.peak.Load() {
		s.peak.Store(v)
	}
	return s.peak.Load() - s.base
}

// vmRSS reads this process's resident set size from /proc/self/status.
func vmRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmRSS line in /proc/self/status")
}

// rootOf guesses the root path from a backend's String ("TYPE:...:/a/b",
// "TYPE:/a/b"): the text after the last colon.
func rootOf(b storage.Backend) string {
	s := b.String()
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimRight(s, "/")
}

// callWithin runs fn and fails the test when it does not return within d: a
// backend must give up on a dead server by itself, not hang its caller.
func callWithin(t *testing.T, d time.Duration, what string, fn func()) time.Duration {
	t.Helper()
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
		return time.Since(start)
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
		return 0
	}
}

func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }
