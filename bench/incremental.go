package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The incremental group: policy: incremental on the source topic, with a
// fresh task and target dir per repetition:
//
//  1. the task's first run: a full backup (T_full);
//  2. again with nothing new: an incremental of 0 records (T_unchanged);
//  3. after appending 1% new records: an incremental of exactly those (T_1pct).
//
// The source topic keeps its size across phases and runs: partition p's
// offset o always holds the partition's generated record o mod n_p, so the
// appended records continue each partition's cycle, and afterwards
// trimSource deletes as many from the head (DeleteRecords). The topic then
// holds exactly the generated records again, rotated.

func incrName(par int, step string) string { return fmt.Sprintf("kbr incremental p%d: %s", par, step) }

const (
	incrFull      = "full"
	incrUnchanged = "unchanged"
	incrNew       = "+1% records"
)

func (b *bench) incremental(ctx context.Context, rep, par int) error {
	var (
		task, dir string
		runs      int
	)
	defer func() { os.RemoveAll(dir) }()
	// backup runs the task once and checks the run's kind and totals.
	backup := func(step, kind string, records, payload int64) error {
		b.pause()
		ph := &Phase{Name: incrName(par, step), Tool: "kbr", Op: "backup", Parallelism: par, Rep: rep,
			Records: records, PayloadBytes: payload}
		return b.measure(ph, b.zkPIDs, true, func(ph *Phase) error {
			runs++
			res, dur, err := b.kbr.backup(ctx, fmt.Sprintf("%s-%d", task, runs), incrementalYAML(b.zk, task, b.topic, dir, par))
			ph.Seconds = dur.Seconds()
			if err != nil {
				return err
			}
			b.breakdown(ctx, ph, res.WorkflowID)
			r := res.Result
			ph.FileBytes = r.Totals.Bytes
			ph.Notes = append(ph.Notes, fmt.Sprintf("%s: kind %s, %d records, %d files, %.1f MB on disk", r.RecoveryPoint, r.Kind, r.Totals.Records, r.Totals.Files, float64(r.Totals.Bytes)/1e6))
			if r.Kind != kind {
				return fmt.Errorf("run %d of task %s: kind %q, want %q (policy reason %q)", runs, task, r.Kind, kind, r.PolicyReason)
			}
			// Format 2 stores the fetched batches as they are and counts
			// records, not payload bytes (0): then the records decide.
			if r.Totals.Records != records || (r.Totals.PayloadBytes != 0 && r.Totals.PayloadBytes != payload) {
				return fmt.Errorf("run %d of task %s (%s): %d records, %d payload bytes; want %d and %d (partitions copied whole: %v)",
					runs, task, r.Kind, r.Totals.Records, r.Totals.PayloadBytes, records, payload, r.FullPartitions)
			}
			return nil
		})
	}

	// A disturbed full is measured again as the first run of a new task.
	attempt := 0
	if err := b.undisturbed(func() error {
		attempt++
		os.RemoveAll(dir)
		task = fmt.Sprintf("bench-incr-%s-r%d-%d", b.runID, rep, attempt)
		dir = filepath.Join(b.tmp, task)
		return backup(incrFull, "full", int64(len(b.data.recs)), b.data.payload)
	}); err != nil {
		return err
	}
	if err := b.undisturbed(func() error { return backup(incrUnchanged, "incremental", 0, 0) }); err != nil {
		return err
	}
	defer func() {
		if err := b.trimSource(context.WithoutCancel(ctx)); err != nil {
			b.warn("source topic %s: deleting the appended records' share from the head: %v (the next run recreates it)", b.topic, err)
		}
	}()
	// A disturbed retry appends another 1%: the incremental after it copies just those.
	return b.undisturbed(func() error {
		n, payload, err := b.appendSource(ctx, 100)
		if err != nil {
			return err
		}
		return backup(incrNew, "incremental", n, payload)
	})
}

// appendSource produces 1/div of each partition's records (rounded) again at
// its end: the generated records that continue the partition's cycle.
func (b *bench) appendSource(ctx context.Context, div int64) (n, payload int64, err error) {
	if b.partRecs == nil {
		b.partRecs = make([][]int32, b.partitions)
		for i, r := range b.data.recs {
			b.partRecs[r.part] = append(b.partRecs[r.part], int32(i))
		}
	}
	var recs []rec
	for p, idx := range b.partRecs {
		for i := int64(0); i < (int64(len(idx))+div/2)/div; i++ {
			r := b.data.recs[idx[(b.ends[p]+i)%int64(len(idx))]]
			recs = append(recs, r)
			payload += int64(r.klen) + int64(r.hlen) + int64(r.vlen) + int64(len(headerKey))
		}
	}
	codec, _ := compressionCodec(b.srcComp)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.zk.bootstrap...), kgo.ClientID("kbr-bench-append"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(10*time.Millisecond),
		kgo.ProducerBatchCompression(codec))
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	t0 := time.Now()
	if err := produceAll(ctx, cl, b.data, b.topic, recs); err != nil {
		return 0, 0, fmt.Errorf("append to %s: %w", b.topic, err)
	}
	logf("appended %d records (%.1f MB) to %s in %s (not measured)", len(recs), float64(payload)/1e6, b.topic, time.Since(t0).Round(time.Millisecond))
	return int64(len(recs)), payload, b.refreshOffsets(ctx)
}

// trimSource deletes, per partition, the records beyond the generated count
// from the head, and refreshes the offsets the other phases read.
func (b *bench) trimSource(ctx context.Context) error {
	counts, starts, err := topicCounts(ctx, b.zkAdm, b.topic)
	if err != nil || counts == nil {
		return fmt.Errorf("offsets: %v", err)
	}
	var offs kadm.Offsets
	for p := range counts {
		if extra := counts[p] - b.data.perPart[p]; extra > 0 {
			offs.Add(kadm.Offset{Topic: b.topic, Partition: int32(p), At: starts[p] + extra, LeaderEpoch: -1})
		}
	}
	if len(offs) > 0 {
		resp, err := b.zkAdm.DeleteRecords(ctx, offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return err
		}
	}
	return b.refreshOffsets(ctx)
}

func (b *bench) refreshOffsets(ctx context.Context) error {
	counts, starts, err := topicCounts(ctx, b.zkAdm, b.topic)
	if err != nil || counts == nil {
		return fmt.Errorf("offsets of %s: %v", b.topic, err)
	}
	b.starts, b.ends = starts, make([]int64, len(counts))
	for p := range counts {
		b.ends[p] = starts[p] + counts[p]
	}
	return nil
}
