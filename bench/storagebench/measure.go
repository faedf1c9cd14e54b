package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stream is a reproducible pseudo-random reader (ChaCha8, fixed seed): the
// bytes of the source file, generated on the fly.
type stream struct {
	r    *mrand.ChaCha8
	left int64
}

func newStream(size int64) *stream {
	var seed [32]byte
	copy(seed[:], "kbr-storagebench")
	binary.LittleEndian.PutUint64(seed[24:], uint64(size))
	return &stream{r: mrand.NewChaCha8(seed), left: size}
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

// onlyReader and onlyWriter hide WriterTo/ReaderFrom, so io.CopyBuffer
// makes Read and Write calls of exactly its buffer's size.
type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }

// ceilings measures, in memory, how fast the generator produces and
// SHA-256 consumes bytes: the kbr side's own work, outside any backend.
func ceilings(n int64) (genMBps, shaMBps float64) {
	buf := make([]byte, 256<<10)
	start := time.Now()
	io.CopyBuffer(onlyWriter{io.Discard}, onlyReader{newStream(n)}, buf)
	genMBps = float64(n) / 1e6 / time.Since(start).Seconds()
	h := sha256.New()
	start = time.Now()
	for left := n; left > 0; left -= int64(len(buf)) {
		h.Write(buf)
	}
	shaMBps = float64(n) / 1e6 / time.Since(start).Seconds()
	return
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// statusKB reads a "Vm...:  N kB" field of /proc/self/status.
func statusKB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			fs := strings.Fields(rest)
			if len(fs) > 0 {
				n, _ := strconv.ParseInt(fs[0], 10, 64)
				return n
			}
		}
	}
	return -1
}

// rssWatch measures the peak RSS a piece of work adds to the process.
type rssWatch struct {
	base    int64 // kB
	hwmOK   bool
	mu      sync.Mutex
	peak    int64
	stop    chan struct{}
	stopped chan struct{}
	cpu0    time.Duration
}

// watchRSS settles the heap, notes the RSS, resets VmHWM and starts sampling.
func watchRSS() *rssWatch {
	runtime.GC()
	debug.FreeOSMemory()
	w := &rssWatch{stop: make(chan struct{}), stopped: make(chan struct{})}
	w.base = statusKB("VmRSS")
	w.peak = w.base
	// Writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err == nil {
		w.hwmOK = true
	}
	w.cpu0 = cpuTime()
	go func() {
		defer close(w.stopped)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				if r := statusKB("VmRSS"); r > 0 {
					w.mu.Lock()
					w.peak = max(w.peak, r)
					w.mu.Unlock()
				}
			}
		}
	}()
	return w
}

// done stops sampling and returns the peak RSS added, in MiB, and the
// process CPU time used meanwhile.
func (w *rssWatch) done() (float64, time.Duration) {
	cpu := cpuTime() - w.cpu0
	close(w.stop)
	<-w.stopped
	peak := w.peak
	if r := statusKB("VmRSS"); r > peak {
		peak = r
	}
	if w.hwmOK {
		if h := statusKB("VmHWM"); h > peak {
			peak = h
		}
	}
	return float64(max(peak-w.base, 0)) / 1024, cpu
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
