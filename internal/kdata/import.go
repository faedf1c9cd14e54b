package kdata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/kbatch"
	"github.com/kbr-project/kbr/storage"
)

// ImportPartition restores one backed-up partition into a target partition.
//
// Exactly once without transactions: the restore is the only writer of the
// target partition, produces in order with an idempotent producer, and Base
// is the target's end offset before the first record was produced. Kafka
// assigns contiguous offsets to such writes, so the i-th backed-up record
// lands at Base+i, and after any interruption end-Base records have landed:
// a resumed import skips exactly those.
type ImportPartition struct {
	SourceTopic string
	TargetTopic string
	Partition   int32
	Base        int64
	// MinOffset skips records below it: a chain of recovery points can hold
	// records that retention had deleted by the time of the last one.
	MinOffset int64
	// Sources are the partition's data, oldest recovery point first.
	Sources []backupset.Source
	// Translate lists source offsets (committed group offsets) to map to
	// target offsets: the target offset of the first restored record whose
	// source offset is at least the given one.
	Translate []int64
}

// ImportSpec is a work unit to restore.
type ImportSpec struct {
	Partitions []ImportPartition
	// ToTime, when set, restores each partition as it was at that time: the
	// records before the first one whose timestamp is at or after it (a
	// prefix of the log, as Kafka's offsets-for-times cuts; for CreateTime
	// topics the producers' timestamps stand in for append times).
	ToTime time.Time
	// Compression "" or "keep" produces batches as the brokers stored them;
	// a codec name (none, gzip, snappy, lz4, zstd) builds every batch again
	// with it.
	Compression string
	// BatchBytes is the size small stored batches are merged up to;
	// MaxBatchBytes (per target topic) what its max.message.bytes allows.
	BatchBytes    int32
	MaxBatchBytes map[string]int32
	// ThrottleBytesS bounds the unit's produce rate (0: unlimited).
	ThrottleBytesS int64
	// MaxBufferedBytes bounds the batches read ahead of the producer and
	// not yet acknowledged (default 64 MiB), unless Budget is given.
	MaxBufferedBytes int64
	// Budget, when set, is the bound instead, shared with other units.
	Budget *Budget
	// RemapSchemaIDs, when set, rewrites the schema id of each record key and
	// value in the wire format (magic 0, 4-byte id) through it: every batch
	// takes the record path. Prefixed ids it lacks are left alone and counted.
	RemapSchemaIDs map[int32]int32
}

// ImportPartitionResult is a restored partition.
type ImportPartitionResult struct {
	Records    int64           // records the partition holds from this restore
	Produced   int64           // produced by this call
	Skipped    int64           // found already landed by an earlier attempt
	EndOffset  int64           // Base + Records
	Translated map[int64]int64 // source offset -> target offset
	// CutOffset is where a point-in-time restore stopped (MaxInt64: it did not).
	CutOffset int64
}

// ImportResult is a restored unit, its partitions in the spec's order.
type ImportResult struct {
	Partitions []ImportPartitionResult
	// RawBatches were produced as stored; Rebuilt went through their records.
	RawBatches, Rebuilt int64
	// Resent counts batches the producer sent again (a retriable error, a
	// leader move, or two requests that reached the broker out of order).
	Resent int64
	// SchemaIDsRewritten and SchemaIDsUnmapped count keys and values whose
	// schema id RemapSchemaIDs rewrote, or does not hold.
	SchemaIDsRewritten, SchemaIDsUnmapped int64
}

// ErrForeignWrites is a permanent failure: the target partition holds more
// records than the restore produced, so someone else writes to it.
var ErrForeignWrites = errors.New("target partition has records this restore did not write")

// Import produces the unit's records that have not landed yet.
func Import(ctx context.Context, cl *kgo.Client, b storage.Backend, spec ImportSpec, onProgress func(records int64)) (ImportResult, error) {
	res := ImportResult{Partitions: make([]ImportPartitionResult, len(spec.Partitions))}
	if len(spec.Partitions) == 0 {
		return res, nil
	}
	if spec.BatchBytes <= 0 {
		spec.BatchBytes = 1 << 20
	}
	if spec.MaxBufferedBytes <= 0 {
		spec.MaxBufferedBytes = 64 << 20
	}
	var comp kgo.Compressor
	rebuildAll := spec.Compression != "" && spec.Compression != "keep"
	if rebuildAll {
		var err error
		if comp, err = kbatch.Compressor(spec.Compression); err != nil {
			return res, err
		}
	}
	ends, err := endOffsets(ctx, cl, spec.Partitions)
	if err != nil {
		return res, err
	}
	states := make([]*inPart, len(spec.Partitions))
	for i, p := range spec.Partitions {
		landed := ends[i] - p.Base
		if landed < 0 {
			return res, fmt.Errorf("restore %s[%d]: end offset %d below the restore's base %d: %w", p.TargetTopic, p.Partition, ends[i], p.Base, ErrForeignWrites)
		}
		tr := append([]int64(nil), p.Translate...)
		sort.Slice(tr, func(a, b int) bool { return tr[a] < tr[b] })
		limit := spec.BatchBytes
		if m := spec.MaxBatchBytes[p.TargetTopic]; m > 0 {
			limit = min(limit, m)
		}
		states[i] = &inPart{spec: p, landed: landed, translate: tr, translated: map[int64]int64{}, cut: math.MaxInt64, limit: limit}
		res.Partitions[i].Skipped = landed
	}
	prod, err := newProducer(ctx, cl, spec.Partitions, spec.ThrottleBytesS)
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	rd := &importReader{spec: spec, b: b, states: states, out: prod.in, comp: comp, rebuildAll: rebuildAll,
		buffered: &share{b: spec.Budget}}
	if spec.Budget == nil {
		rd.buffered.b = NewBudget(spec.MaxBufferedBytes)
	}
	// A unit that ends, also with an error, gives back what it still holds.
	defer rd.buffered.drain()
	prod.release = rd.buffered.release
	var rerr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rerr = rd.run(ctx)
		close(prod.in)
		if rerr != nil {
			cancel(rerr)
		}
	}()
	perr := prod.run(ctx, func(acked int64) {
		if onProgress != nil {
			var skipped int64
			for _, s := range states {
				skipped += s.landed
			}
			onProgress(skipped + acked)
		}
	})
	if perr != nil {
		cancel(perr)
	}
	wg.Wait()
	if rerr != nil && !errors.Is(rerr, context.Canceled) {
		return res, rerr
	}
	if perr != nil {
		return res, perr
	}
	if rerr != nil {
		return res, rerr
	}
	res.RawBatches, res.Rebuilt, res.Resent = rd.raw, rd.rebuilt, prod.resent
	res.SchemaIDsRewritten, res.SchemaIDsUnmapped = rd.remapped, rd.unmapped
	after, err := endOffsets(ctx, cl, spec.Partitions)
	if err != nil {
		return res, err
	}
	for i, s := range states {
		p := spec.Partitions[i]
		if s.landed > s.ordinal {
			return res, fmt.Errorf("restore %s[%d]: %d records found landed, the backup has %d: %w", p.TargetTopic, p.Partition, s.landed, s.ordinal, ErrForeignWrites)
		}
		for _, t := range s.translate {
			s.translated[t] = p.Base + s.ordinal
		}
		r := &res.Partitions[i]
		r.Records, r.Produced, r.EndOffset, r.Translated, r.CutOffset = s.ordinal, s.ordinal-s.landed, p.Base+s.ordinal, s.translated, s.cut
		if after[i] != r.EndOffset {
			return res, fmt.Errorf("restore %s[%d]: end offset %d after restore, want %d: %w", p.TargetTopic, p.Partition, after[i], r.EndOffset, ErrForeignWrites)
		}
	}
	if onProgress != nil {
		var n int64
		for _, s := range states {
			n += s.ordinal
		}
		onProgress(n)
	}
	return res, nil
}

// endOffsets lists the target partitions' high watermarks.
func endOffsets(ctx context.Context, cl *kgo.Client, parts []ImportPartition) ([]int64, error) {
	topics := map[string]bool{}
	var names []string
	for _, p := range parts {
		if !topics[p.TargetTopic] {
			topics[p.TargetTopic] = true
			names = append(names, p.TargetTopic)
		}
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %d topics: %w", len(names), err)
	}
	out := make([]int64, len(parts))
	for i, p := range parts {
		o, ok := ends.Lookup(p.TargetTopic, p.Partition)
		if !ok {
			return nil, fmt.Errorf("end offset of %s[%d]: partition not found", p.TargetTopic, p.Partition)
		}
		if o.Err != nil {
			return nil, fmt.Errorf("end offset of %s[%d]: %w", p.TargetTopic, p.Partition, o.Err)
		}
		out[i] = o.Offset
	}
	return out, nil
}

// EndOffset is a partition's high watermark.
func EndOffset(ctx context.Context, cl *kgo.Client, topic string, partition int32) (int64, error) {
	e, err := endOffsets(ctx, cl, []ImportPartition{{TargetTopic: topic, Partition: partition}})
	if err != nil {
		return 0, err
	}
	return e[0], nil
}

// inPart is the reader's state of one partition.
type inPart struct {
	spec       ImportPartition
	landed     int64 // records an earlier attempt already produced
	ordinal    int64 // records read so far (restored, landed or not)
	translate  []int64
	translated map[int64]int64
	cut        int64 // first offset a point-in-time restore leaves out
	stopped    bool  // reached the point in time
	limit      int32 // largest batch to produce
	merge      [][]byte
	mergeBytes int
}

// outBatch is a batch ready to produce, without its producer fields yet.
type outBatch struct {
	p       int
	data    []byte
	records int32
	held    int64 // bytes of the read-ahead bound it holds
	chunk   *hold // the chunk its data is a slice of, if it is one
	// The producer's: the batch's sequence once stamped, how often it was
	// sent, and whether the broker acknowledged it.
	seq     int32
	stamped bool
	sends   int
	acked   bool
}

// importReader reads a unit's data, oldest recovery point first, and turns
// it into batches to produce.
type importReader struct {
	spec       ImportSpec
	b          storage.Backend
	states     []*inPart
	out        chan<- outBatch
	comp       kgo.Compressor
	rebuildAll bool
	buffered   *share
	raw        int64
	rebuilt    int64
	comps      map[int]kgo.Compressor
	remapped   int64 // keys and values whose schema id was rewritten
	unmapped   int64
	// cur is the chunk being taken apart, nil on the format 1 path.
	cur *hold
}

// hold is bytes of the read-ahead bound that batches share: a chunk read
// from a pack stays in memory until the reader and every batch sliced from
// it are done with it.
type hold struct {
	refs    atomic.Int32
	n       int64
	release func(int64)
}

func (h *hold) ref() { h.refs.Add(1) }

func (h *hold) unref() {
	if h.refs.Add(-1) == 0 {
		h.release(h.n)
	}
}

func (r *importReader) run(ctx context.Context) error {
	depth := 0
	for _, s := range r.states {
		depth = max(depth, len(s.spec.Sources))
	}
	// Level by level from the oldest source of each partition: each
	// partition's data comes in its own order, packs are read once.
	for level := 0; level < depth; level++ {
		packs := map[string]backupset.FileEntry{}
		wants := map[string]map[backupset.TopicPartition]int{} // pack -> partition -> state
		for i, s := range r.states {
			k := level - (depth - len(s.spec.Sources)) // align the newest sources
			if k < 0 {
				continue
			}
			src := s.spec.Sources[k]
			if src.Format == 1 {
				if err := r.segments(ctx, i, src); err != nil {
					return err
				}
				continue
			}
			for _, f := range src.Packs {
				packs[f.Name] = f
				if wants[f.Name] == nil {
					wants[f.Name] = map[backupset.TopicPartition]int{}
				}
				wants[f.Name][backupset.TopicPartition{Topic: s.spec.SourceTopic, Partition: s.spec.Partition}] = i
			}
		}
		names := make([]string, 0, len(packs))
		for n := range packs {
			names = append(names, n)
		}
		sort.Strings(names) // a unit's packs sort in the order written
		for _, n := range names {
			if err := r.pack(ctx, packs[n], wants[n]); err != nil {
				return err
			}
		}
	}
	for i := range r.states {
		if err := r.flush(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// pack reads the wanted partitions' chunks of one pack: the footer and the
// index by range, then the chunks, neighbouring ones in one read.
func (r *importReader) pack(ctx context.Context, f backupset.FileEntry, want map[backupset.TopicPartition]int) error {
	ix, err := ReadPackIndex(ctx, r.b, f)
	if err != nil {
		return err
	}
	type sel struct {
		c backupset.Chunk
		p int
	}
	var chunks []sel
	for _, c := range ix.Chunks {
		if p, ok := want[ix.Partitions[c.Slot]]; ok {
			chunks = append(chunks, sel{c, p})
		}
	}
	for k := 0; k < len(chunks); {
		// One read for a run of adjacent chunks.
		j := k + 1
		for j < len(chunks) && chunks[j].c.Offset == chunks[j-1].c.Offset+chunks[j-1].c.Length && chunks[j].c.Offset-chunks[k].c.Offset < 64<<20 {
			j++
		}
		start := chunks[k].c.Offset
		end := chunks[j-1].c.Offset + chunks[j-1].c.Length
		rc, err := storage.OpenRange(ctx, r.b, f.Name, start, end-start)
		if err != nil {
			return fmt.Errorf("read %s: %w", f.Name, err)
		}
		for ; k < j; k++ {
			if err := r.chunk(ctx, rc, f.Name, chunks[k].c, chunks[k].p); err != nil {
				rc.Close()
				return err
			}
		}
		rc.Close()
	}
	return nil
}

// chunk reads one chunk of partition i, positioned at it, once the
// read-ahead bound has room for it, and takes its batches. No merge is
// pending here (batches flushes them), so what holds the bound is in
// flight and is given back as it is acknowledged.
func (r *importReader) chunk(ctx context.Context, rc io.Reader, name string, c backupset.Chunk, i int) error {
	h := &hold{n: max(c.Raw, c.Length), release: r.buffered.release}
	if err := r.buffered.acquire(ctx, h.n); err != nil {
		return err
	}
	h.refs.Store(1) // the reader's
	defer h.unref()
	data, err := backupset.ReadChunk(rc, c, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	r.cur = h
	defer func() { r.cur = nil }()
	return r.batches(ctx, i, data)
}

// ReadPackIndex reads a pack's index by range.
func ReadPackIndex(ctx context.Context, b storage.Backend, f backupset.FileEntry) (*backupset.PackIndex, error) {
	if f.Size < backupset.PackFooterSize {
		return nil, fmt.Errorf("%s: %w: %d bytes", f.Name, backupset.ErrPackCorrupt, f.Size)
	}
	footer, err := readRange(ctx, b, f.Name, f.Size-backupset.PackFooterSize, backupset.PackFooterSize)
	if err != nil {
		return nil, err
	}
	off, n, crc, err := backupset.ParsePackFooter(footer, f.Size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	data, err := readRange(ctx, b, f.Name, off, n)
	if err != nil {
		return nil, err
	}
	ix, err := backupset.ParsePackIndex(data, crc, off)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	return ix, nil
}

func readRange(ctx context.Context, b storage.Backend, name string, off, n int64) ([]byte, error) {
	rc, err := storage.OpenRange(ctx, b, name, off, n)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer rc.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("read %s at %d: %w", name, off, err)
	}
	return buf, nil
}

// batches takes one chunk's batches of partition i.
func (r *importReader) batches(ctx context.Context, i int, data []byte) error {
	s := r.states[i]
	for len(data) > 0 && !s.stopped {
		entry, h, rest, ok, err := kbatch.Next(data)
		if err == nil && !ok {
			err = fmt.Errorf("%w: batch cut short", kbatch.ErrCorrupt)
		}
		if err == nil {
			err = kbatch.CheckCRC(entry)
		}
		if err != nil {
			return fmt.Errorf("restore %s[%d]: %w", s.spec.SourceTopic, s.spec.Partition, err)
		}
		data = rest
		if h.LastOffset() < s.spec.MinOffset {
			continue
		}
		fast := !r.rebuildAll && r.spec.RemapSchemaIDs == nil && h.Contiguous() && !h.LogAppendTime() && h.BaseOffset >= s.spec.MinOffset &&
			(r.spec.ToTime.IsZero() || h.MaxTimestamp < r.spec.ToTime.UnixMilli()) &&
			(s.ordinal >= s.landed || s.ordinal+int64(h.NumRecords) <= s.landed) && len(entry) <= int(s.limit)
		if !fast {
			if err := r.flush(ctx, i); err != nil {
				return err
			}
			recs, err := kbatch.Decode(entry, s.spec.MinOffset)
			if err != nil {
				return fmt.Errorf("restore %s[%d] at offset %d: %w", s.spec.SourceTopic, s.spec.Partition, h.BaseOffset, err)
			}
			if err := r.records(ctx, i, recs, h.Codec()); err != nil {
				return err
			}
			continue
		}
		n := int64(h.NumRecords)
		for len(s.translate) > 0 && s.translate[0] <= h.LastOffset() {
			d := max(0, s.translate[0]-h.BaseOffset)
			s.translated[s.translate[0]] = s.spec.Base + s.ordinal + d
			s.translate = s.translate[1:]
		}
		if s.ordinal+n <= s.landed { // landed already
			s.ordinal += n
			continue
		}
		s.ordinal += n
		if h.Codec() == kbatch.CodecNone && len(entry) < int(s.limit)/2 {
			if s.mergeBytes+len(entry) > int(s.limit) {
				if err := r.flush(ctx, i); err != nil {
					return err
				}
			}
			s.merge = append(s.merge, entry)
			s.mergeBytes += len(entry)
			continue
		}
		if err := r.flush(ctx, i); err != nil {
			return err
		}
		r.raw++
		if err := r.send(ctx, outBatch{p: i, data: entry, records: h.NumRecords, chunk: r.cur}); err != nil {
			return err
		}
	}
	return r.flush(ctx, i)
}

// records takes records that need their own batch: point in time,
// translation and skipping record by record, then built again.
func (r *importReader) records(ctx context.Context, i int, recs []kbatch.Record, codec int) error {
	s := r.states[i]
	limit := r.spec.ToTime.UnixMilli()
	keep := recs[:0:0]
	for _, rec := range recs {
		if rec.Offset < s.spec.MinOffset {
			continue
		}
		if !r.spec.ToTime.IsZero() && rec.Timestamp >= limit {
			s.cut, s.stopped = rec.Offset, true
			break
		}
		for len(s.translate) > 0 && s.translate[0] <= rec.Offset {
			s.translated[s.translate[0]] = s.spec.Base + s.ordinal
			s.translate = s.translate[1:]
		}
		if s.ordinal >= s.landed {
			keep = append(keep, rec)
		}
		s.ordinal++
	}
	if len(keep) == 0 {
		return nil
	}
	if r.spec.RemapSchemaIDs != nil {
		n, u := remapSchemaIDs(keep, r.spec.RemapSchemaIDs)
		r.remapped, r.unmapped = r.remapped+n, r.unmapped+u
	}
	comp := r.comp
	if !r.rebuildAll && codec != kbatch.CodecNone {
		comp = r.compressor(codec) // as the producers had it
	}
	// Split so that no batch is over the topic's limit.
	for len(keep) > 0 {
		n, size := 0, 0
		for n < len(keep) && (n == 0 || size+recordSize(keep[n]) < int(s.limit)*9/10) {
			size += recordSize(keep[n])
			n++
		}
		part := append([]kbatch.Record(nil), keep[:n]...)
		keep = keep[n:]
		kbatch.Renumber(part, 0)
		r.rebuilt++
		if err := r.send(ctx, outBatch{p: i, data: kbatch.Build(part, comp), records: int32(len(part))}); err != nil {
			return err
		}
	}
	return nil
}

func (r *importReader) compressor(codec int) kgo.Compressor {
	if r.comps == nil {
		r.comps = map[int]kgo.Compressor{}
	}
	c, ok := r.comps[codec]
	if !ok {
		c, _ = kbatch.Compressor(codecName(codec))
		r.comps[codec] = c
	}
	return c
}

func recordSize(r kbatch.Record) int {
	n := len(r.Key) + len(r.Value) + 16
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value) + 8
	}
	return n
}

func codecName(c int) string {
	switch c {
	case kbatch.CodecGzip:
		return "gzip"
	case kbatch.CodecSnappy:
		return "snappy"
	case kbatch.CodecLz4:
		return "lz4"
	case kbatch.CodecZstd:
		return "zstd"
	}
	return "none"
}

// flush sends partition i's batches waiting to be merged.
func (r *importReader) flush(ctx context.Context, i int) error {
	s := r.states[i]
	switch len(s.merge) {
	case 0:
		return nil
	case 1:
		b := s.merge[0]
		s.merge, s.mergeBytes = nil, 0
		_, h, _, _, _ := kbatch.Next(b)
		r.raw++
		return r.send(ctx, outBatch{p: i, data: b, records: h.NumRecords, chunk: r.cur})
	}
	m, err := kbatch.Merge(s.merge)
	s.merge, s.mergeBytes = nil, 0
	if err != nil {
		return fmt.Errorf("restore %s[%d]: %w", s.spec.SourceTopic, s.spec.Partition, err)
	}
	_, h, _, _, _ := kbatch.Next(m)
	r.raw++
	return r.send(ctx, outBatch{p: i, data: m, records: h.NumRecords})
}

// done gives back what an acknowledged batch holds of the read-ahead bound.
func (b *outBatch) done(release func(int64)) {
	release(b.held)
	if b.chunk != nil {
		b.chunk.unref()
	}
}

// send hands a batch to the producer. A slice of the chunk being read
// holds that chunk; a batch built from it (merged or rebuilt) holds its own
// bytes, taken without waiting (it comes from a chunk the bound admitted,
// and waiting here, holding that chunk, could wait for itself); a batch of
// the format 1 path waits for room.
func (r *importReader) send(ctx context.Context, b outBatch) error {
	switch {
	case b.chunk != nil:
		b.chunk.ref()
	case r.cur != nil:
		b.held = int64(len(b.data))
		r.buffered.take(b.held)
	default:
		b.held = int64(len(b.data))
		if err := r.buffered.acquire(ctx, b.held); err != nil {
			return err
		}
	}
	select {
	case r.out <- b:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// segments reads a format 1 partition's segment files (records, not
// batches) and builds batches of them.
func (r *importReader) segments(ctx context.Context, i int, src backupset.Source) error {
	s := r.states[i]
	var recs []kbatch.Record
	size := 0
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		err := r.records(ctx, i, recs, kbatch.CodecNone)
		recs, size = recs[:0:0], 0
		return err
	}
	for _, seg := range src.Segments {
		if s.stopped {
			break
		}
		if seg.Records > 0 && seg.LastOffset < s.spec.MinOffset {
			continue
		}
		err := ReadSegment(ctx, r.b, seg, src.Compression, func(rec *backupset.Record) error {
			kr := kbatch.Record{Offset: rec.Offset, Timestamp: rec.Timestamp, Key: rec.Key, Value: rec.Value}
			for _, h := range rec.Headers {
				kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
			}
			recs = append(recs, kr)
			size += recordSize(kr)
			if size >= int(s.limit)/2 {
				return flush()
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := flush(); err != nil {
			return err
		}
	}
	return flush()
}

// Budget bounds the bytes of batches read ahead of a producer and not yet
// acknowledged: one unit's own, or, shared by the units a worker runs at
// once (ImportSpec.Budget), the whole worker's, so its memory does not
// grow with the restore's parallelism. A batch larger than the budget
// waits until nothing else is held.
type Budget struct {
	mu    sync.Mutex
	wake  chan struct{} // closed and replaced on every release
	limit int64
	used  int64
}

// NewBudget makes a budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit, wake: make(chan struct{})} }

func (s *Budget) acquire(ctx context.Context, n int64) error {
	for {
		s.mu.Lock()
		if s.used == 0 || s.used+n <= s.limit {
			s.used += n
			s.mu.Unlock()
			return nil
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// take holds n bytes without waiting.
func (s *Budget) take(n int64) {
	s.mu.Lock()
	s.used += n
	s.mu.Unlock()
}

func (s *Budget) release(n int64) {
	s.mu.Lock()
	s.used -= n
	close(s.wake) // every waiter looks again
	s.wake = make(chan struct{})
	s.mu.Unlock()
}

// share is one unit's part of a Budget: what it holds, given back whole
// when the unit ends.
type share struct {
	b    *Budget
	mu   sync.Mutex
	held int64
}

func (s *share) acquire(ctx context.Context, n int64) error {
	if err := s.b.acquire(ctx, n); err != nil {
		return err
	}
	s.mu.Lock()
	s.held += n
	s.mu.Unlock()
	return nil
}

func (s *share) take(n int64) {
	s.b.take(n)
	s.mu.Lock()
	s.held += n
	s.mu.Unlock()
}

func (s *share) release(n int64) {
	s.mu.Lock()
	n = min(n, s.held)
	s.held -= n
	s.mu.Unlock()
	s.b.release(n)
}

func (s *share) drain() {
	s.mu.Lock()
	n := s.held
	s.held = 0
	s.mu.Unlock()
	if n > 0 {
		s.b.release(n)
	}
}
