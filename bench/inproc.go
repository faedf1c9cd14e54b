package main

// In-process runs of kbr's export and restore code (internal/kdata), exactly
// as the ExportPartition and RestorePartition activities call it but without
// Temporal, under a CPU profile. Enabled by KBR_CPUPROFILE=<file> (or
// -cpuprofile): the profiles go to <file>.export.pprof and
// <file>.restore.pprof, with a `go tool pprof -top` summary beside each.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/kclient"
	"github.com/kbr-project/kbr/internal/kdata"
	"github.com/kbr-project/kbr/storage/localdir"
)

func profilePath(base, kind string) string {
	return base + "." + kind + ".pprof"
}

// withCPUProfile runs fn under a CPU profile written to path ("" = none),
// and writes a heap profile taken when the Go heap was largest to
// path's .heap.pprof sibling.
func withCPUProfile(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	stop := make(chan struct{})
	done := make(chan []byte)
	go func() {
		var (
			peak int64
			snap []byte
		)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				done <- snap
				return
			case <-t.C:
			}
			if h := goHeap(); h > peak+peak/20 {
				peak = h
				var buf bytes.Buffer
				if pprof.Lookup("heap").WriteTo(&buf, 0) == nil {
					snap = buf.Bytes()
				}
			}
		}
	}()
	err = fn()
	pprof.StopCPUProfile()
	close(stop)
	if snap := <-done; snap != nil {
		_ = os.WriteFile(heapPath(path), snap, 0o644)
	}
	return err
}

func heapPath(cpuProfile string) string {
	return strings.TrimSuffix(cpuProfile, ".pprof") + ".heap.pprof"
}

// pool runs fn(0..n-1) with at most par at once; the first error wins.
func pool(n, par int, fn func(i int) error) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	next := make(chan int)
	for w := 0; w < min(par, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return firstErr
}

// inprocExport exports every partition of topic with kdata.Export, par at a
// time, one kgo client per partition as the activity does.
func inprocExport(ctx context.Context, src cluster, topic string, id [16]byte, starts, ends []int64,
	dir, compression string, par int, prof string, ws *wireStats) ([][]backupset.SegmentInfo, *localdir.Dir, error) {
	be, err := localdir.New(dir)
	if err != nil {
		return nil, nil, err
	}
	cc := config.Cluster{Name: src.name, BootstrapServers: src.bootstrap}
	segs := make([][]backupset.SegmentInfo, len(ends))
	err = withCPUProfile(prof, func() error {
		return pool(len(ends), par, func(p int) error {
			cl, err := kclient.New(cc, ws.hook())
			if err != nil {
				return err
			}
			defer cl.Close()
			res, err := kdata.Export(ctx, cl, be, kdata.ExportSpec{
				Topic: topic, TopicID: id, Partition: int32(p), From: starts[p], To: ends[p],
				Dir:           "inproc_20260101T000000Z/topicdata",
				SegmentBytes:  config.DefaultSegmentBytes,
				Compression:   compression,
				FetchMaxBytes: config.DefaultFetchMaxBytes,
			}, nil, nil)
			segs[p] = res.Segments
			return err
		})
	})
	return segs, be, err
}

// inprocVerify reads every segment file through the SHA-256 check, as the
// restore's "verify recovery point" step does.
func inprocVerify(ctx context.Context, be *localdir.Dir, segs [][]backupset.SegmentInfo) (int64, error) {
	var n int64
	for _, ps := range segs {
		for _, s := range ps {
			rc, err := be.Open(ctx, s.Name)
			if err != nil {
				return n, err
			}
			vr := backupset.NewVerifyingReader(rc, s.Name, s.Size, s.SHA256)
			c, err := io.Copy(io.Discard, vr)
			rc.Close()
			n += c
			if err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// inprocRestore restores every partition with kdata.Restore into topic
// (already created, empty), with the producer options of the
// RestorePartition activity.
func inprocRestore(ctx context.Context, dst cluster, topic string, batchMax int32, be *localdir.Dir,
	segs [][]backupset.SegmentInfo, par int, prof string, ws *wireStats) (int64, error) {
	cc := config.Cluster{Name: dst.name, BootstrapServers: dst.bootstrap}
	var (
		mu    sync.Mutex
		total int64
	)
	err := withCPUProfile(prof, func() error {
		return pool(len(segs), par, func(p int) error {
			// The options of activities.RestorePartition as of commit
			// 613f628: buffer max(16MiB, 2 batches), no
			// RecordDeliveryTimeout (kgo counts it from the record's own,
			// old, timestamp).
			cl, err := kclient.New(cc,
				kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.ProducerBatchMaxBytes(batchMax),
				kgo.MaxBufferedBytes(max(16<<20, 2*int(batchMax))),
				kgo.ProducerLinger(5*time.Millisecond),
				kgo.ProducerBatchCompression(kgo.NoCompression()),
				ws.hook(),
			)
			if err != nil {
				return err
			}
			defer cl.Close()
			res, err := kdata.Restore(ctx, cl, be, kdata.RestoreSpec{
				Topic: topic, Partition: int32(p), Base: 0, Segments: segs[p],
				Compression: backupset.CompressionZstd,
			}, nil)
			mu.Lock()
			total += res.Records
			mu.Unlock()
			return err
		})
	})
	return total, err
}

// pprofTop returns `go tool pprof -top` of a profile, flat and cumulative.
func pprofTop(ctx context.Context, path string, n int) string {
	var b strings.Builder
	for _, mode := range [][]string{{"-top"}, {"-top", "-cum"}} {
		args := append([]string{"tool", "pprof"}, mode...)
		args = append(args, fmt.Sprintf("-nodecount=%d", n), path)
		out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
		if err != nil {
			fmt.Fprintf(&b, "go tool pprof %s: %v\n", strings.Join(mode, " "), err)
		}
		b.Write(out)
		b.WriteString("\n")
	}
	if hp := heapPath(path); fileExists(hp) {
		out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-sample_index=inuse_space", fmt.Sprintf("-nodecount=%d", n), hp).CombinedOutput()
		if err != nil {
			fmt.Fprintf(&b, "go tool pprof (heap): %v\n", err)
		}
		b.WriteString("heap at its peak (inuse_space, as of the last GC):\n")
		b.Write(out)
	}
	return b.String()
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
