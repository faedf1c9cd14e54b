// Package kdata moves topic data between Kafka and segment files: the export
// of one partition's offset range (read_committed, compaction-safe,
// resumable) and the restore of it (in order, exactly once when resumed).
package kdata

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/storage"
)

// ExportSpec is one partition range to export: offsets [From, To).
type ExportSpec struct {
	Topic     string
	TopicID   [16]byte
	Partition int32
	From, To  int64
	// Dir is the recovery point's topic-data folder on the target.
	Dir            string
	SegmentBytes   int64
	Compression    string
	FetchMaxBytes  int32
	ThrottleBytesS int64
}

// Progress is reported after every fetch.
type Progress struct {
	Offset  int64 // next offset to read
	Records int64 // records written in this call, including the open segment
	Bytes   int64 // file bytes written in this call, including the open segment
}

// Gap is a range that was gone from the log when the export reached it
// (deleted by retention during the backup).
type Gap = backupset.OffsetRange

// ExportResult is what one call exported.
type ExportResult struct {
	Segments []backupset.SegmentInfo
	Gaps     []Gap
}

// ErrTopicGone is a permanent failure: the topic was deleted or recreated
// during the backup.
var ErrTopicGone = errors.New("topic deleted or recreated during the backup")

// Export reads spec's range, rolling a committed segment file about every
// SegmentBytes. onSegment runs after each segment is durable, so a caller
// can checkpoint and resume from SegmentInfo.NextOffset.
func Export(ctx context.Context, cl *kgo.Client, b storage.Backend, spec ExportSpec,
	onSegment func(backupset.SegmentInfo) error, onProgress func(Progress)) (ExportResult, error) {
	var res ExportResult
	f := &fetcher{cl: cl, spec: spec}
	off := spec.From
	var (
		seg      *backupset.SegmentWriter
		segFile  storage.Writer
		segName  string
		done     Progress
		lastTick = time.Now()
		tickB    int64
	)
	abort := func() {
		if segFile != nil {
			_ = segFile.Abort()
			segFile, seg = nil, nil
		}
	}
	defer abort()
	finish := func(next int64) error {
		if seg == nil {
			return nil
		}
		if seg.Records() == 0 {
			abort()
			return nil
		}
		info, err := seg.Finish(next)
		if err != nil {
			return fmt.Errorf("export %s[%d]: finish segment %s: %w", spec.Topic, spec.Partition, segName, err)
		}
		if err := segFile.Commit(); err != nil {
			return fmt.Errorf("export %s[%d]: commit segment %s: %w", spec.Topic, spec.Partition, segName, err)
		}
		info.Name = segName
		segFile, seg = nil, nil
		res.Segments = append(res.Segments, info)
		done.Records += info.Records
		done.Bytes += info.Size
		if onSegment != nil {
			return onSegment(info)
		}
		return nil
	}

	for off < spec.To {
		fp, next, err := f.fetch(ctx, off)
		if err != nil {
			return res, err
		}
		if fp.gapTo > 0 {
			// Retention removed [off, gapTo): record it and go on from the log start.
			if err := finish(off); err != nil {
				return res, err
			}
			to := min(fp.gapTo, spec.To)
			res.Gaps = append(res.Gaps, Gap{From: off, To: to})
			off = to
			continue
		}
		for _, r := range fp.records {
			if r.Offset >= spec.To {
				break
			}
			if seg == nil {
				segName = backupset.SegmentName(spec.Dir, spec.Topic, spec.Partition, r.Offset, spec.Compression)
				if segFile, err = b.Create(ctx, segName); err != nil {
					return res, fmt.Errorf("export %s[%d]: %w", spec.Topic, spec.Partition, err)
				}
				if seg, err = backupset.NewSegmentWriter(segFile, spec.Compression); err != nil {
					return res, err
				}
			}
			if err := seg.Append(convert(r)); err != nil {
				return res, fmt.Errorf("export %s[%d] at offset %d: %w", spec.Topic, spec.Partition, r.Offset, err)
			}
			// Roll inside a fetch too: resuming at the next offset is safe,
			// since the broker returns the whole batch and the decoder skips
			// what lies below the fetch offset.
			if seg.FileBytes() >= spec.SegmentBytes {
				if err := finish(r.Offset + 1); err != nil {
					return res, err
				}
			}
		}
		off = min(next, spec.To)
		if seg != nil && seg.FileBytes() >= spec.SegmentBytes {
			if err := finish(off); err != nil {
				return res, err
			}
		}
		p := done
		if seg != nil {
			p.Records += seg.Records()
			p.Bytes += seg.FileBytes()
		}
		p.Offset = off
		if onProgress != nil {
			onProgress(p)
		}
		if spec.ThrottleBytesS > 0 {
			tickB += fp.bytes
			want := time.Duration(float64(tickB) / float64(spec.ThrottleBytesS) * float64(time.Second))
			// Sleep in short steps, reporting progress between them, so a
			// long throttle wait still heartbeats.
			for sleep := want - time.Since(lastTick); sleep > 0; sleep = want - time.Since(lastTick) {
				select {
				case <-time.After(min(sleep, time.Second)):
				case <-ctx.Done():
					return res, ctx.Err()
				}
				if onProgress != nil {
					onProgress(p)
				}
			}
			if time.Since(lastTick) > 10*time.Second {
				lastTick, tickB = time.Now(), 0
			}
		}
	}
	if err := finish(spec.To); err != nil {
		return res, err
	}
	return res, nil
}

func convert(r *kgo.Record) *backupset.Record {
	out := &backupset.Record{
		Offset:        r.Offset,
		Timestamp:     r.Timestamp.UnixMilli(),
		LogAppendTime: r.Attrs.TimestampType() == 1,
		Key:           r.Key,
		Value:         r.Value,
	}
	if len(r.Headers) > 0 {
		out.Headers = make([]backupset.Header, len(r.Headers))
		for i, h := range r.Headers {
			out.Headers[i] = backupset.Header{Key: h.Key, Value: h.Value}
		}
	}
	return out
}

// fetcher issues Fetch requests for one partition to its leader, so the
// export knows exactly where each response left off (kgo's consumer hides
// the position behind compaction gaps and transaction markers).
type fetcher struct {
	cl     *kgo.Client
	spec   ExportSpec
	leader int32
	epoch  int32
	known  bool
	topic  [16]byte
}

type fetched struct {
	records []*kgo.Record
	bytes   int64
	gapTo   int64 // > 0: offsets before this were deleted
}

// transient leadership and availability errors are retried in place.
func transient(err error) bool {
	return errors.Is(err, kerr.NotLeaderForPartition) || errors.Is(err, kerr.UnknownTopicOrPartition) ||
		errors.Is(err, kerr.FencedLeaderEpoch) || errors.Is(err, kerr.LeaderNotAvailable) ||
		errors.Is(err, kerr.ReplicaNotAvailable) || errors.Is(err, kerr.UnknownLeaderEpoch) ||
		errors.Is(err, kerr.OffsetNotAvailable) || errors.Is(err, kerr.KafkaStorageError) ||
		errors.Is(err, kerr.NotCoordinator) || errors.Is(err, kerr.RequestTimedOut) ||
		errors.Is(err, kerr.CorruptMessage) || errors.Is(err, kerr.UnknownServerError)
}

func (f *fetcher) fetch(ctx context.Context, off int64) (fetched, int64, error) {
	const patience = 2 * time.Minute
	deadline := time.Now().Add(patience)
	backoff := 100 * time.Millisecond
	var lastErr error
	for {
		if err := ctx.Err(); err != nil {
			return fetched{}, off, err
		}
		if time.Now().After(deadline) {
			return fetched{}, off, fmt.Errorf("export %s[%d] at offset %d: no progress for %s: %w", f.spec.Topic, f.spec.Partition, off, patience, lastErr)
		}
		out, next, err := f.once(ctx, off)
		if err == nil && (next > off || out.gapTo > 0) {
			return out, next, nil
		}
		if err != nil && (errors.Is(err, ErrTopicGone) || errors.Is(err, context.Canceled)) {
			return out, next, err
		}
		if err == nil {
			err = errors.New("the broker returned nothing below the cut")
		} else {
			f.known = false
		}
		lastErr = err
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return fetched{}, off, ctx.Err()
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (f *fetcher) locate(ctx context.Context) error {
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(f.spec.Topic)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, f.cl)
	if err != nil {
		return err
	}
	for _, rt := range resp.Topics {
		if rt.Topic == nil || *rt.Topic != f.spec.Topic {
			continue
		}
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			if errors.Is(err, kerr.UnknownTopicOrPartition) {
				return fmt.Errorf("export %s[%d]: %w", f.spec.Topic, f.spec.Partition, ErrTopicGone)
			}
			return err
		}
		if f.spec.TopicID != ([16]byte{}) && rt.TopicID != ([16]byte{}) && rt.TopicID != f.spec.TopicID {
			return fmt.Errorf("export %s[%d]: topic id changed: %w", f.spec.Topic, f.spec.Partition, ErrTopicGone)
		}
		f.topic = rt.TopicID
		for _, p := range rt.Partitions {
			if p.Partition == f.spec.Partition {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && !errors.Is(err, kerr.ReplicaNotAvailable) {
					return err
				}
				if p.Leader < 0 {
					return kerr.LeaderNotAvailable
				}
				f.leader, f.epoch, f.known = p.Leader, p.LeaderEpoch, true
				return nil
			}
		}
	}
	return fmt.Errorf("export %s[%d]: partition not in metadata: %w", f.spec.Topic, f.spec.Partition, ErrTopicGone)
}

func (f *fetcher) once(ctx context.Context, off int64) (fetched, int64, error) {
	if !f.known {
		if err := f.locate(ctx); err != nil {
			return fetched{}, off, err
		}
	}
	maxBytes := f.spec.FetchMaxBytes
	if t := f.spec.ThrottleBytesS; t > 0 && int64(maxBytes) > max(t, 64<<10) {
		// Throttled: about a second's worth per fetch, so waits stay short.
		maxBytes = int32(max(t, 64<<10))
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 500
	req.MinBytes = 1
	req.MaxBytes = maxBytes
	req.IsolationLevel = 1 // read_committed: aborted transactions are never backed up
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = f.spec.Topic
	rt.TopicID = f.topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = f.spec.Partition
	rp.FetchOffset = off
	rp.PartitionMaxBytes = maxBytes
	rp.CurrentLeaderEpoch = f.epoch
	rp.LogStartOffset = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	kresp, err := f.cl.Broker(int(f.leader)).Request(ctx, req)
	if err != nil {
		return fetched{}, off, err
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fetched{}, off, err
	}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if p.Partition != f.spec.Partition {
				continue
			}
			perr := kerr.ErrorForCode(p.ErrorCode)
			switch {
			case errors.Is(perr, kerr.OffsetOutOfRange):
				if p.LogStartOffset > off {
					return fetched{gapTo: p.LogStartOffset}, p.LogStartOffset, nil
				}
				return fetched{}, off, perr
			case errors.Is(perr, kerr.UnknownTopicID):
				return fetched{}, off, fmt.Errorf("export %s[%d]: %w", f.spec.Topic, f.spec.Partition, ErrTopicGone)
			case perr != nil:
				return fetched{}, off, perr
			}
			fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
				Offset:         off,
				IsolationLevel: kgo.ReadCommitted(),
				Topic:          f.spec.Topic,
				Partition:      f.spec.Partition,
			}, p, kgo.DefaultDecompressor(), nil)
			if fp.Err != nil {
				return fetched{}, off, fmt.Errorf("decode %s[%d] at %d: %w", f.spec.Topic, f.spec.Partition, off, fp.Err)
			}
			return fetched{records: fp.Records, bytes: int64(len(p.RecordBatches))}, next, nil
		}
	}
	return fetched{}, off, kerr.UnknownTopicOrPartition
}
