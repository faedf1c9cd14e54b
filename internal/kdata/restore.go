package kdata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/storage"
)

// RestoreSpec restores one backed-up partition into a target partition.
//
// Exactly-once without transactions: the restore is the only writer of the
// target partition, produces in order with an idempotent producer, and Base
// is the target's end offset before the first record was produced. Kafka
// assigns contiguous offsets to such writes, so the i-th backed-up record
// lands at Base+i, and after any interruption end-Base records have landed:
// a resumed call skips exactly those.
type RestoreSpec struct {
	Topic       string // target topic
	Partition   int32
	Base        int64
	Segments    []backupset.SegmentInfo
	Compression string
	// Translate lists source offsets (committed group offsets) to map to
	// target offsets: the target offset of the first restored record whose
	// source offset is at least the given one.
	Translate      []int64
	ThrottleBytesS int64
	// MinOffset skips records below it: a chain of recovery points can hold
	// records that retention had deleted by the time of the last one.
	MinOffset int64
	// ToTime, when set, restores the partition as it was at that time: the
	// records before the first one whose timestamp is at or after it (a
	// prefix of the log, as Kafka's offsets-for-times cuts; for CreateTime
	// topics the producers' timestamps stand in for append times).
	ToTime time.Time
}

// RestoreResult reports a finished partition.
type RestoreResult struct {
	Records     int64           // records the partition holds from this restore
	Produced    int64           // records produced by this call
	Skipped     int64           // records found already landed by an earlier attempt
	EndOffset   int64           // Base + Records
	Translated  map[int64]int64 // source offset -> target offset
	SourceBytes int64
	// CutOffset is where a point-in-time restore stopped (MaxInt64: it did not).
	CutOffset int64
}

var errCut = errors.New("reached the point in time")

// cutAt finds, for a point-in-time restore, the first offset at or after
// MinOffset whose record's timestamp is at or after ToTime, and counts the
// records before it: one read of the partition's backup before producing.
func cutAt(ctx context.Context, b storage.Backend, spec RestoreSpec) (cut, count int64, err error) {
	limit := spec.ToTime.UnixMilli()
	cut = math.MaxInt64
	for _, seg := range spec.Segments {
		if seg.Records > 0 && seg.LastOffset < spec.MinOffset {
			continue
		}
		err := readSegment(ctx, b, seg, spec.Compression, func(r *backupset.Record) error {
			if r.Offset < spec.MinOffset {
				return nil
			}
			if r.Timestamp >= limit {
				cut = r.Offset
				return errCut
			}
			count++
			return nil
		})
		if errors.Is(err, errCut) {
			return cut, count, nil
		}
		if err != nil {
			return 0, 0, err
		}
	}
	return cut, count, nil
}

// ErrForeignWrites is a permanent failure: the target partition holds more
// records than the restore produced, so someone else writes to it.
var ErrForeignWrites = errors.New("target partition has records this restore did not write")

// Restore produces the spec's records that have not landed yet.
func Restore(ctx context.Context, cl *kgo.Client, b storage.Backend, spec RestoreSpec, onProgress func(produced int64)) (RestoreResult, error) {
	res := RestoreResult{Translated: map[int64]int64{}}
	var total int64
	cut := int64(math.MaxInt64) // records at or above it are not restored
	var err error
	if !spec.ToTime.IsZero() {
		cut, total, err = cutAt(ctx, b, spec)
	} else {
		total, err = backupset.CountFrom(spec.Segments, spec.MinOffset, func(seg backupset.SegmentInfo) (int64, error) {
			var n int64
			err := readSegment(ctx, b, seg, spec.Compression, func(r *backupset.Record) error {
				if r.Offset >= spec.MinOffset {
					n++
				}
				return nil
			})
			return n, err
		})
	}
	if err != nil {
		return res, err
	}
	res.CutOffset = cut
	end, err := EndOffset(ctx, cl, spec.Topic, spec.Partition)
	if err != nil {
		return res, err
	}
	landed := end - spec.Base
	if landed < 0 || landed > total {
		return res, fmt.Errorf("restore %s[%d]: end offset %d, base %d, backup has %d records: %w", spec.Topic, spec.Partition, end, spec.Base, total, ErrForeignWrites)
	}
	res.Skipped = landed
	translate := append([]int64(nil), spec.Translate...)
	sort.Slice(translate, func(i, j int) bool { return translate[i] < translate[j] })

	var (
		mu       sync.Mutex
		firstErr error
		acked    int64
	)
	promise := func(r *kgo.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("produce %s[%d]: %w", spec.Topic, spec.Partition, err)
		}
		if err == nil {
			acked++
		}
	}
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		return firstErr
	}

	var ordinal int64
	start := time.Now()
	lastReport := time.Now()
	for _, seg := range spec.Segments {
		if seg.Records > 0 && seg.LastOffset < spec.MinOffset {
			continue
		}
		if err := readSegment(ctx, b, seg, spec.Compression, func(r *backupset.Record) error {
			if r.Offset < spec.MinOffset {
				return nil
			}
			if r.Offset >= cut {
				return errCut
			}
			for len(translate) > 0 && translate[0] <= r.Offset {
				res.Translated[translate[0]] = spec.Base + ordinal
				translate = translate[1:]
			}
			if ordinal >= landed {
				if err := failed(); err != nil {
					return err
				}
				cl.Produce(ctx, toKgo(spec.Topic, spec.Partition, r), promise)
				res.Produced++
				res.SourceBytes += int64(len(r.Key) + len(r.Value))
				if spec.ThrottleBytesS > 0 {
					want := time.Duration(float64(res.SourceBytes) / float64(spec.ThrottleBytesS) * float64(time.Second))
					if d := want - time.Since(start); d > 0 {
						time.Sleep(d)
					}
				}
				if onProgress != nil && time.Since(lastReport) > time.Second {
					lastReport = time.Now()
					onProgress(res.Skipped + res.Produced)
				}
			}
			ordinal++
			return nil
		}); errors.Is(err, errCut) {
			break
		} else if err != nil {
			// Wait for what is in flight so the next attempt counts it.
			_ = cl.Flush(context.WithoutCancel(ctx))
			return res, err
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return res, fmt.Errorf("restore %s[%d]: flush: %w", spec.Topic, spec.Partition, err)
	}
	if err := failed(); err != nil {
		return res, err
	}
	if ordinal != total {
		return res, fmt.Errorf("restore %s[%d]: read %d records, manifest says %d", spec.Topic, spec.Partition, ordinal, total)
	}
	for _, t := range translate {
		res.Translated[t] = spec.Base + total
	}
	res.Records = total
	res.EndOffset = spec.Base + total
	end, err = EndOffset(ctx, cl, spec.Topic, spec.Partition)
	if err != nil {
		return res, err
	}
	if end != res.EndOffset {
		return res, fmt.Errorf("restore %s[%d]: end offset %d after restore, want %d: %w", spec.Topic, spec.Partition, end, res.EndOffset, ErrForeignWrites)
	}
	if onProgress != nil {
		onProgress(total)
	}
	return res, nil
}

func toKgo(topic string, partition int32, r *backupset.Record) *kgo.Record {
	kr := &kgo.Record{
		Topic:     topic,
		Partition: partition,
		Key:       r.Key,
		Value:     r.Value,
		Timestamp: time.UnixMilli(r.Timestamp),
	}
	if len(r.Headers) > 0 {
		kr.Headers = make([]kgo.RecordHeader, len(r.Headers))
		for i, h := range r.Headers {
			kr.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	return kr
}

// readSegment streams a segment's records, checking its size and SHA-256.
func readSegment(ctx context.Context, b storage.Backend, seg backupset.SegmentInfo, compression string, fn func(*backupset.Record) error) error {
	rc, err := b.Open(ctx, seg.Name)
	if err != nil {
		return err
	}
	defer rc.Close()
	vr := backupset.NewVerifyingReader(rc, seg.Name, seg.Size, seg.SHA256)
	if seg.Compression != "" {
		compression = seg.Compression
	}
	sr, err := backupset.NewSegmentReader(vr, compression)
	if err != nil {
		return fmt.Errorf("%s: %w", seg.Name, err)
	}
	defer sr.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := sr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", seg.Name, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := vr.Drain(); err != nil {
		return err
	}
	return nil
}

// ReadSegment is readSegment for callers outside the package (verify, tests).
func ReadSegment(ctx context.Context, b storage.Backend, seg backupset.SegmentInfo, compression string, fn func(*backupset.Record) error) error {
	return readSegment(ctx, b, seg, compression, fn)
}

// EndOffset is a partition's high watermark.
func EndOffset(ctx context.Context, cl *kgo.Client, topic string, partition int32) (int64, error) {
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("end offset of %s[%d]: %w", topic, partition, err)
	}
	o, ok := ends.Lookup(topic, partition)
	if !ok {
		return 0, fmt.Errorf("end offset of %s[%d]: partition not found", topic, partition)
	}
	if o.Err != nil {
		return 0, fmt.Errorf("end offset of %s[%d]: %w", topic, partition, o.Err)
	}
	return o.Offset, nil
}
