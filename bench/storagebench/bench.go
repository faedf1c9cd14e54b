package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"time"

	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/storage"
)

type bench struct {
	o       options
	env     testenv.Env
	envPath string
	id      string
	work    string
	src     string
	want    string // SHA-256 of the source, hex
}

// cleanupTimeout bounds the removal of what a path type wrote, which runs
// even after an interrupt.
const cleanupTimeout = 2 * time.Minute

func (b *bench) runType(ctx context.Context, typ string) (r result) {
	r.Type = typ
	s, err := b.setup(typ)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Target = s.target.String()
	r.Note = s.note
	r.Source = "gen"
	if b.o.source == "file" || (b.o.source == "auto" && s.fromFile) {
		r.Source = "file"
	}

	t0 := time.Now()
	be, err := registry.Open(ctx, s.target)
	if err != nil && ctx.Err() == nil {
		logf("%s: open failed (%v); waiting for the server, then retrying", typ, err)
		if waitServers(ctx, s.addrs, 3*time.Minute) == nil {
			t0 = time.Now()
			be, err = registry.Open(ctx, s.target)
		}
	}
	if err != nil {
		r.Error = fmt.Sprintf("open %s: %v", s.target, err)
		return r
	}
	r.KbrOpenSeconds = time.Since(t0).Seconds()
	logf("%s: opened %s in %.2fs", typ, be, r.KbrOpenSeconds)
	written := map[string]bool{}
	defer func() {
		// Whatever happened, remove every file this path type wrote, then
		// its root directory.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		var err error
		for try := 0; try < 2; try++ {
			if try > 0 {
				logf("%s: cleanup failed (%v); waiting for the server to try again", typ, err)
				if waitServers(cctx, s.addrs, time.Minute) != nil {
					break
				}
				if env, lerr := testenv.LoadFile(b.envPath); lerr == nil {
					b.env = env
				}
				if ns, serr := b.setup(typ); serr == nil {
					if nbe, oerr := registry.Open(cctx, ns.target); oerr == nil {
						be.Close()
						s, be = ns, nbe
					}
				}
			}
			for name := range written {
				if be.Delete(cctx, name) == nil {
					delete(written, name)
				}
			}
			// Then the root with whatever is left in it (partial files
			// of a failed write, incomplete uploads).
			if err = s.native.removeRoot(cctx); err == nil {
				break
			}
		}
		if err != nil {
			logf("%s: cleanup: LEFT BEHIND on %s: %v (%v)", typ, s.target, keys(written), err)
		}
		be.Close()
	}()

	var startups []float64
	for i := 1; i <= b.o.runs && ctx.Err() == nil; i++ {
		rr, err := b.oneRun(ctx, typ, s, be, i, written)
		for try := 1; err != nil && ctx.Err() == nil && try <= 2; try++ {
			// The servers are shared: another user of the machine may
			// restart one under us. Wait until it answers again, then run
			// again.
			logf("%s run %d failed (%v); waiting for the server, then retrying (%d/2)", typ, i, err, try)
			r.Retries++
			if werr := waitServers(ctx, s.addrs, 3*time.Minute); werr != nil {
				err = fmt.Errorf("%w; then %v", err, werr)
				break
			}
			// The server may have been set up anew (new host key, password):
			// read stack.env again and reconnect.
			if env, lerr := testenv.LoadFile(b.envPath); lerr == nil {
				b.env = env
			}
			if ns, serr := b.setup(typ); serr == nil {
				if nbe, oerr := registry.Open(ctx, ns.target); oerr == nil {
					be.Close()
					s, be = ns, nbe
				}
			}
			rr, err = b.oneRun(ctx, typ, s, be, i, written)
		}
		if err != nil {
			r.Error = fmt.Sprintf("run %d: %v", i, err)
			break
		}
		r.Runs = append(r.Runs, rr)
		if rr.NativeStartup > 0 {
			startups = append(startups, rr.NativeStartup)
		}
		logf("%s run %d (%s first): write kbr %.0f / native %.0f MB/s (%.2f), read kbr %.0f / native %.0f MB/s (%.2f), kbr RSS +%.1f/+%.1f MiB, native start-up %.2fs",
			typ, i, rr.First, b.mbps(rr.KbrWriteSeconds), b.mbps(rr.NativeWriteSeconds), rr.WriteRatio,
			b.mbps(rr.KbrReadSeconds), b.mbps(rr.NativeReadSeconds), rr.ReadRatio,
			rr.KbrWriteRSSAddedMiB, rr.KbrReadRSSAddedMiB, rr.NativeStartup)
	}
	if ctx.Err() != nil && r.Error == "" {
		r.Error = ctx.Err().Error()
	}
	r.Native = s.native.describe()
	r.NativeStartupSecond = median(startups)
	var kw, nw, kr, nr, wr, rd, wr0, rd0, rdh, rdb, wrh, wrb, hashMBps []float64
	for _, rr := range r.Runs {
		kw = append(kw, b.mbps(rr.KbrWriteSeconds))
		nw = append(nw, b.mbps(rr.NativeWriteSeconds))
		kr = append(kr, b.mbps(rr.KbrReadSeconds))
		nr = append(nr, b.mbps(rr.NativeReadSeconds))
		wr = append(wr, rr.WriteRatio)
		rd = append(rd, rr.ReadRatio)
		rdh = append(rdh, rr.ReadRatioNoHash)
		wrh = append(wrh, rr.WriteRatioNoHash)
		wrb = append(wrb, max(rr.NativeWriteSeconds-rr.NativeStartup, 1e-3)/max(rr.KbrWriteSeconds-rr.KbrWriteHashSeconds, 1e-3))
		rdb = append(rdb, max(rr.NativeReadSeconds-rr.NativeStartup, 1e-3)/max(rr.KbrReadSeconds-rr.KbrReadHashSeconds, 1e-3))
		if rr.KbrReadHashSeconds > 0 {
			hashMBps = append(hashMBps, b.mbps(rr.KbrReadHashSeconds))
		}
		if rr.NativeStartup > 0 {
			wr0 = append(wr0, max(rr.NativeWriteSeconds-rr.NativeStartup, 1e-3)/rr.KbrWriteSeconds)
			rd0 = append(rd0, max(rr.NativeReadSeconds-rr.NativeStartup, 1e-3)/rr.KbrReadSeconds)
		}
		r.KbrPeakRSSAddedMiB = max(r.KbrPeakRSSAddedMiB, rr.KbrWriteRSSAddedMiB, rr.KbrReadRSSAddedMiB)
	}
	r.KbrWriteMBps, r.NativeWriteMBps, r.WriteRatio = median(kw), median(nw), median(wr)
	r.KbrReadMBps, r.NativeReadMBps, r.ReadRatio = median(kr), median(nr), median(rd)
	r.WriteRatioNoStartup, r.ReadRatioNoStartup = median(wr0), median(rd0)
	r.ReadRatioNoHash, r.KbrReadHashMBps = median(rdh), median(hashMBps)
	r.ReadRatioAdjusted = median(rdb)
	r.WriteRatioNoHash, r.WriteRatioAdjusted = median(wrh), median(wrb)
	return r
}

func (b *bench) mbps(sec float64) float64 {
	if sec <= 0 {
		return 0
	}
	return float64(b.o.size) / 1e6 / sec
}

// oneRun writes and reads one file through each side, the first side
// alternating from run to run, then deletes both files.
func (b *bench) oneRun(ctx context.Context, typ string, s *pathSetup, be storage.Backend, i int, written map[string]bool) (rr runResult, err error) {
	rr.Run = i
	rr.LoadBefore = loadavg()
	kbrName := fmt.Sprintf("kbr-%d.bin", i)
	natName := fmt.Sprintf("native-%d.bin", i)
	kbrFirst := i%2 == 1
	rr.First = map[bool]string{true: "kbr", false: "native"}[kbrFirst]

	if d, err := s.native.startup(ctx); err != nil {
		return rr, fmt.Errorf("native start-up probe: %w", err)
	} else {
		rr.NativeStartup = d.Seconds()
	}

	kbrWrite := func() error {
		written[kbrName] = true
		d, hd, rss, cpu, prof, err := b.kbrWrite(ctx, typ, be, kbrName, s, i)
		rr.KbrWriteSeconds, rr.KbrWriteRSSAddedMiB, rr.KbrWriteCPUSeconds = d.Seconds(), rss, cpu.Seconds()
		rr.KbrWriteHashSeconds = hd.Seconds()
		if prof != "" {
			rr.Profiles = append(rr.Profiles, prof)
		}
		return err
	}
	natWrite := func() error {
		written[natName] = true
		t0 := time.Now()
		detail, err := s.native.put(ctx, b.src, natName)
		rr.NativeWriteSeconds, rr.NativeWriteDetail = time.Since(t0).Seconds(), detail
		if err != nil {
			return fmt.Errorf("native write: %w", err)
		}
		// The native file must be complete too.
		fi, err := be.Stat(ctx, natName)
		if err != nil {
			return fmt.Errorf("native write: stat through kbr: %w", err)
		}
		if fi.Size != b.o.size {
			return fmt.Errorf("native write: %s holds %d bytes, want %d", natName, fi.Size, b.o.size)
		}
		return nil
	}
	kbrRead := func() error {
		d, hd, rss, cpu, prof, err := b.kbrRead(ctx, typ, be, kbrName, i)
		rr.KbrReadSeconds, rr.KbrReadRSSAddedMiB, rr.KbrReadCPUSeconds = d.Seconds(), rss, cpu.Seconds()
		rr.KbrReadHashSeconds = hd.Seconds()
		if prof != "" {
			rr.Profiles = append(rr.Profiles, prof)
		}
		return err
	}
	natRead := func() error {
		t0 := time.Now()
		err := s.native.get(ctx, natName)
		rr.NativeReadSeconds = time.Since(t0).Seconds()
		if err != nil {
			return fmt.Errorf("native read: %w", err)
		}
		return nil
	}
	steps := []func() error{kbrWrite, natWrite, kbrRead, natRead}
	if !kbrFirst {
		steps = []func() error{natWrite, kbrWrite, natRead, kbrRead}
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return rr, err
		}
	}
	for _, name := range []string{kbrName, natName} {
		if err := be.Delete(ctx, name); err != nil {
			return rr, fmt.Errorf("delete %s: %w", name, err)
		}
		delete(written, name)
	}
	rr.WriteRatio = rr.NativeWriteSeconds / rr.KbrWriteSeconds
	rr.ReadRatio = rr.NativeReadSeconds / rr.KbrReadSeconds
	rr.ReadRatioNoHash = rr.NativeReadSeconds / max(rr.KbrReadSeconds-rr.KbrReadHashSeconds, 1e-3)
	rr.WriteRatioNoHash = rr.NativeWriteSeconds / max(rr.KbrWriteSeconds-rr.KbrWriteHashSeconds, 1e-3)
	return rr, nil
}

// startProfile starts a CPU profile of the kbr side when -cpuprofile is set.
func (b *bench) startProfile(typ, op string, run int) (string, func()) {
	if b.o.cpuprofile == "" {
		return "", func() {}
	}
	if err := os.MkdirAll(b.o.cpuprofile, 0o755); err != nil {
		logf("cpuprofile: %v", err)
		return "", func() {}
	}
	p := filepath.Join(b.o.cpuprofile, fmt.Sprintf("%s-%s-run%d.pprof", typ, op, run))
	f, err := os.Create(p)
	if err != nil {
		logf("cpuprofile: %v", err)
		return "", func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		logf("cpuprofile: %v", err)
		return "", func() {}
	}
	return p, func() { pprof.StopCPUProfile(); f.Close() }
}

// kbrWrite streams the source through the backend: Create, Write calls of
// -iobuf bytes, Commit.
// kbrWrite writes name from the source through SHA-256, as kbr's data path
// hashes every file it writes for the manifest; hashTime is the part of d
// spent hashing.
func (b *bench) kbrWrite(ctx context.Context, typ string, be storage.Backend, name string, s *pathSetup, run int) (d, hashTime time.Duration, rssMiB float64, cpu time.Duration, prof string, err error) {
	var src io.Reader
	if b.o.source == "file" || (b.o.source == "auto" && s.fromFile) {
		f, err := os.Open(b.src)
		if err != nil {
			return 0, 0, 0, 0, "", err
		}
		defer f.Close()
		src = f
	} else {
		src = newStream(b.o.size)
	}
	buf := make([]byte, b.o.ioBuf)
	h := &timedHash{h: sha256.New()}
	w := watchRSS()
	prof, stop := b.startProfile(typ, "write", run)
	t0 := time.Now()
	err = func() error {
		wr, err := be.Create(ctx, name)
		if err != nil {
			return fmt.Errorf("kbr create: %w", err)
		}
		n, err := io.CopyBuffer(onlyWriter{io.MultiWriter(h, wr)}, onlyReader{src}, buf)
		if err != nil {
			wr.Abort()
			return fmt.Errorf("kbr write: %w", err)
		}
		if n != b.o.size {
			wr.Abort()
			return fmt.Errorf("kbr write: wrote %d bytes, want %d", n, b.o.size)
		}
		if err := wr.Commit(); err != nil {
			return fmt.Errorf("kbr commit: %w", err)
		}
		if got := hex.EncodeToString(h.h.Sum(nil)); got != b.want {
			return fmt.Errorf("kbr write: wrote SHA-256 %s, the source has %s", got, b.want)
		}
		return nil
	}()
	d = time.Since(t0)
	stop()
	rssMiB, cpu = w.done()
	return d, h.d, rssMiB, cpu, prof, err
}

// kbrRead reads name back to io.Discard through SHA-256 and checks it.
// timedHash hashes what is written to it and keeps the time that took.
type timedHash struct {
	h hash.Hash
	d time.Duration
}

func (t *timedHash) Write(p []byte) (int, error) {
	t0 := time.Now()
	n, err := t.h.Write(p)
	t.d += time.Since(t0)
	return n, err
}

func (b *bench) kbrRead(ctx context.Context, typ string, be storage.Backend, name string, run int) (d, hashTime time.Duration, rssMiB float64, cpu time.Duration, prof string, err error) {
	buf := make([]byte, b.o.ioBuf)
	h := &timedHash{h: sha256.New()}
	w := watchRSS()
	prof, stop := b.startProfile(typ, "read", run)
	t0 := time.Now()
	err = func() error {
		rc, err := be.Open(ctx, name)
		if err != nil {
			return fmt.Errorf("kbr open: %w", err)
		}
		var n int64
		if b.o.writeTo {
			n, err = io.Copy(h, rc)
		} else {
			n, err = io.CopyBuffer(onlyWriter{h}, onlyReader{rc}, buf)
		}
		cerr := rc.Close()
		switch {
		case err != nil:
			return fmt.Errorf("kbr read: %w", err)
		case n != b.o.size:
			return fmt.Errorf("kbr read: got %d bytes, want %d", n, b.o.size)
		case cerr != nil:
			return fmt.Errorf("kbr close: %w", cerr)
		}
		return nil
	}()
	d = time.Since(t0)
	stop()
	rssMiB, cpu = w.done()
	hashTime = h.d
	if err == nil {
		if got := hex.EncodeToString(h.h.Sum(nil)); got != b.want {
			err = fmt.Errorf("kbr read: SHA-256 %s, want %s", got, b.want)
		}
	}
	return d, hashTime, rssMiB, cpu, prof, err
}

// waitServers waits until every address answers a TCP connect, then gives
// the server a few seconds to finish starting.
func waitServers(ctx context.Context, addrs []string, limit time.Duration) error {
	if len(addrs) == 0 {
		return nil
	}
	deadline := time.Now().Add(limit)
	for {
		down := ""
		for _, a := range addrs {
			if a == "" {
				continue
			}
			c, err := net.DialTimeout("tcp", a, 2*time.Second)
			if err != nil {
				down = a
				break
			}
			c.Close()
		}
		if down == "" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer for %v", down, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(5 * time.Second):
	}
	return nil
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
