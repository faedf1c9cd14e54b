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
	"time"

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

// inprocExport exports every partition of topic as one work unit with
// kdata.Export (one client, one multi-partition fetch in flight per broker),
// as an ExportUnit activity does.
func inprocExport(ctx context.Context, src cluster, topic string, id [16]byte, starts, ends []int64,
	dir, compression string, prof string, ws *wireStats) (kdata.ExportState, *localdir.Dir, error) {
	be, err := localdir.New(dir)
	if err != nil {
		return kdata.ExportState{}, nil, err
	}
	cc := config.Cluster{Name: src.name, BootstrapServers: src.bootstrap}
	spec := kdata.ExportSpec{Dir: "inproc_20260101T000000Z/3.9_topicdata_20260101T000000Z", PackBytes: config.DefaultSegmentBytes,
		Compression: compression, FetchMaxBytes: config.DefaultFetchMaxBytes, PartitionMaxBytes: config.DefaultFetchPartBytes}
	for p := range ends {
		spec.Partitions = append(spec.Partitions, kdata.ExportPartition{Topic: topic, TopicID: id, Partition: int32(p), From: starts[p], To: ends[p]})
	}
	var st kdata.ExportState
	err = withCPUProfile(prof, func() error {
		cl, err := kclient.New(cc, ws.hook())
		if err != nil {
			return err
		}
		defer cl.Close()
		st, err = kdata.Export(ctx, cl, be, spec, kdata.NewExportState(spec), nil, nil)
		return err
	})
	return st, be, err
}

// inprocVerify reads every pack through the SHA-256 check, as the
// restore's "verify recovery point" step does.
func inprocVerify(ctx context.Context, be *localdir.Dir, st kdata.ExportState) (int64, error) {
	var n int64
	for _, ps := range st.Packs {
		s := ps.File
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
	return n, nil
}

// inprocRestore restores every partition with kdata.Import as one work
// unit into topic (already created, empty), as an ImportUnit activity does.
func inprocRestore(ctx context.Context, dst cluster, topic string, batchMax int32, be *localdir.Dir,
	st kdata.ExportState, srcTopic string, prof string, ws *wireStats) (int64, error) {
	cc := config.Cluster{Name: dst.name, BootstrapServers: dst.bootstrap}
	var total int64
	err := withCPUProfile(prof, func() error {
		cl, err := kclient.New(cc, ws.hook())
		if err != nil {
			return err
		}
		defer cl.Close()
		spec := kdata.ImportSpec{MaxBatchBytes: map[string]int32{topic: batchMax}}
		for p := range st.Next {
			src := backupset.Source{Format: backupset.FormatVersion}
			for _, ps := range st.Packs {
				for _, slot := range ps.Slots {
					if slot == p {
						src.Packs = append(src.Packs, ps.File)
					}
				}
			}
			spec.Partitions = append(spec.Partitions, kdata.ImportPartition{SourceTopic: srcTopic, TargetTopic: topic, Partition: int32(p), Sources: []backupset.Source{src}})
		}
		res, err := kdata.Import(ctx, cl, be, spec, nil)
		for _, r := range res.Partitions {
			total += r.Records
		}
		return err
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
