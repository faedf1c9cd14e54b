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

// stream is a reproducible pseudo-random reader: the bytes of the source
// file, generated on the fly. ChaCha8 itself costs ~1-3 ns a byte, CPU
// that on this 2-core machine the servers need too, while the native side
// reads a page-cached file; so ChaCha8 makes one 1 MiB block and chunk k
// of the stream is that block XORed with k in every 8-byte word: about a
// memory copy per byte, and no two chunks alike (nothing on the way
// compresses or deduplicates anyway).
type stream struct {
	block []byte // the ChaCha8 block
	cur   []byte // the current chunk
	chunk uint64 // its index
	off   int    // read position in cur
	left  int64
}

const streamChunk = 1 << 20

var (
	streamBlockOnce sync.Once
	streamBlock     []byte
)

func newStream(size int64) *stream {
	streamBlockOnce.Do(func() {
		var seed [32]byte
		copy(seed[:], "kbr-storagebench")
		streamBlock = make([]byte, streamChunk)
		mrand.NewChaCha8(seed).Read(streamBlock)
	})
	s := &stream{block: streamBlock, cur: make([]byte, streamChunk), left: size}
	s.fill()
	return s
}

// fill makes cur chunk s.chunk.
func (s *stream) fill() {
	k := s.chunk
	for i := 0; i < len(s.block); i += 8 {
		binary.LittleEndian.PutUint64(s.cur[i:], binary.LittleEndian.Uint64(s.block[i:])^k)
	}
	s.off = 0
}

func (s *stream) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n := 0
	for n < len(p) {
		if s.off == len(s.cur) {
			s.chunk++
			s.fill()
		}
		m := copy(p[n:], s.cur[s.off:])
		s.off += m
		n += m
	}
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
