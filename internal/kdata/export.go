// Package kdata moves topic data between Kafka and a recovery point's files,
// a work unit of many partitions at a time, without Temporal: the export of
// partition ranges into pack files (read_committed, compaction-safe,
// resumable, the broker's record batches stored as served) and their import
// into a cluster (in order, exactly once when resumed, through one
// idempotent producer).
package kdata

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/kbatch"
	"github.com/kbr-project/kbr/internal/schemareg/wire"
	"github.com/kbr-project/kbr/storage"
)

// ExportPartition is one partition range of a work unit: offsets [From, To).
type ExportPartition struct {
	Topic     string
	TopicID   [16]byte
	Partition int32
	From, To  int64
}

// ExportSpec is a work unit to export.
type ExportSpec struct {
	Unit    int
	Attempt int32 // names the attempt's pack files, so a stale attempt never overwrites a live one's
	// Dir is the recovery point's topic-data folder on the target.
	Dir        string
	Partitions []ExportPartition
	// PackBytes is about how large a pack file grows before it is committed
	// (and the unit's progress checkpointed).
	PackBytes   int64
	Compression string
	// FetchMaxBytes bounds one fetch response, PartitionMaxBytes one
	// partition's share of it.
	FetchMaxBytes     int32
	PartitionMaxBytes int32
	// ThrottleBytesS bounds the unit's fetch rate (0: unlimited).
	ThrottleBytesS int64
	// ScanSchemaIDs collects the schema ids the records carry (ExportState.SchemaIDs).
	ScanSchemaIDs bool
}

// PackState is a committed pack and the partitions (indexes into
// ExportSpec.Partitions) it holds chunks of.
type PackState struct {
	File  backupset.FileEntry `json:"file"`
	Slots []int               `json:"slots"`
}

// LostRange is a range of one partition (an index into the spec's
// partitions) that retention deleted before the export reached it.
type LostRange struct {
	P    int   `json:"p"`
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// ExportState is a unit's durable progress: what the committed packs hold.
// A retried attempt given it resumes each partition at Next.
type ExportState struct {
	Next    []int64     `json:"next"`
	Records []int64     `json:"records"`
	Bytes   []int64     `json:"bytes"`
	Lost    []LostRange `json:"lost,omitempty"`
	Packs   []PackState `json:"packs,omitempty"`
	// Seq numbers the attempt's next pack.
	Seq int `json:"seq"`
	// SchemaIDs are the schema ids the committed packs' records carry (ScanSchemaIDs).
	SchemaIDs *wire.IDSet `json:"schema_ids,omitempty"`
}

// NewExportState is the state of a unit that has not started.
func NewExportState(spec ExportSpec) ExportState {
	st := ExportState{Next: make([]int64, len(spec.Partitions)), Records: make([]int64, len(spec.Partitions)), Bytes: make([]int64, len(spec.Partitions))}
	for i, p := range spec.Partitions {
		st.Next[i] = p.From
	}
	return st
}

// Progress is a unit's progress, the open pack included.
type Progress struct {
	Records, Bytes int64
	Done           int // partitions whose range is read
}

// ErrTopicGone is a permanent failure: the topic was deleted or recreated
// during the backup.
var ErrTopicGone = errors.New("topic deleted or recreated during the backup")

// patience is how long a partition may go without progress before the
// export fails with its last error.
const patience = 2 * time.Minute

// Export reads the unit's ranges with one multi-partition fetch in flight
// per broker (the next one issued as soon as the previous response's batch
// headers are read, while its bytes are written) and writes the committed
// batches into pack files of about PackBytes. onCommit runs after each pack
// is committed (and at the end) with the new durable state.
func Export(ctx context.Context, cl *kgo.Client, b storage.Backend, spec ExportSpec, st ExportState,
	onCommit func(ExportState) error, onProgress func(Progress)) (ExportState, error) {
	if len(st.Next) != len(spec.Partitions) {
		return st, fmt.Errorf("export unit %d: state holds %d partitions, spec %d", spec.Unit, len(st.Next), len(spec.Partitions))
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	items := make(chan fetchItem, 2)
	w := &packer{spec: spec, st: st, b: b, onCommit: onCommit, onProgress: onProgress}
	w.init()
	var werr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		werr = w.run(ctx, items)
		if werr != nil {
			cancel(werr)
			for range items { // let the fetch loop finish
			}
		}
	}()
	f := &fetchLoop{cl: cl, spec: spec, items: items}
	ferr := f.run(ctx, st.Next)
	close(items)
	wg.Wait()
	if werr != nil {
		return w.st, werr
	}
	if ferr != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			ferr = cause
		}
		return w.st, ferr
	}
	return w.st, nil
}

// fetchItem is what one fetch gave of one partition: batches to keep (runs
// of the response's bytes), or a gap, and where reading continues.
type fetchItem struct {
	p     int
	at    int64 // the fetch offset
	next  int64
	runs  [][]byte
	heads []kbatch.Header // of the batches in runs, in order
	gapTo int64           // > 0: [at, gapTo) is gone
	bytes int64           // response bytes, for the throttle
}

// ---------------------------------------------------------------------------
// The fetch loop.

type fpart struct {
	at       int64
	leader   int32
	epoch    int32
	known    bool
	topicID  [16]byte
	lastMove time.Time
	lastErr  error
}

type fetchLoop struct {
	cl    *kgo.Client
	spec  ExportSpec
	items chan<- fetchItem
	parts []fpart
	rot   int
}

type fetchResult struct {
	broker int32
	parts  []int
	resp   *kmsg.FetchResponse
	err    error
}

func (f *fetchLoop) run(ctx context.Context, next []int64) error {
	f.parts = make([]fpart, len(f.spec.Partitions))
	now := time.Now()
	for i := range f.parts {
		f.parts[i] = fpart{at: next[i], lastMove: now, topicID: f.spec.Partitions[i].TopicID}
	}
	inflight := map[int32]bool{}
	results := make(chan fetchResult, 16)
	var (
		backoff   = 100 * time.Millisecond
		metaAfter time.Time
		tb        = newBucket(f.spec.ThrottleBytesS)
	)
	for {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		active, unknown := 0, 0
		for i := range f.parts {
			if f.parts[i].at < f.spec.Partitions[i].To {
				active++
				if !f.parts[i].known {
					unknown++
				}
				if time.Since(f.parts[i].lastMove) > patience {
					p := f.spec.Partitions[i]
					return fmt.Errorf("export %s[%d] at offset %d: no progress for %s: %v", p.Topic, p.Partition, f.parts[i].at, patience, f.parts[i].lastErr)
				}
			}
		}
		if active == 0 && len(inflight) == 0 {
			return nil
		}
		if unknown > 0 && time.Now().After(metaAfter) {
			if err := f.locate(ctx); err != nil {
				if errors.Is(err, ErrTopicGone) {
					return err
				}
				for i := range f.parts {
					if !f.parts[i].known {
						f.parts[i].lastErr = err
					}
				}
			}
			metaAfter = time.Now().Add(backoff)
			backoff = min(2*backoff, 2*time.Second)
		}
		// One fetch in flight per broker, each with its partitions.
		byBroker := map[int32][]int{}
		for k := 0; k < len(f.parts); k++ {
			i := (k + f.rot) % len(f.parts)
			fp := &f.parts[i]
			if fp.known && fp.at < f.spec.Partitions[i].To && !inflight[fp.leader] {
				byBroker[fp.leader] = append(byBroker[fp.leader], i)
			}
		}
		f.rot++
		for broker, parts := range byBroker {
			if wait := tb.wait(); wait > 0 {
				break // throttled: launch after the wait below
			}
			inflight[broker] = true
			req := f.request(parts)
			go func() {
				resp, err := f.cl.Broker(int(broker)).Request(ctx, req)
				r := fetchResult{broker: broker, parts: parts, err: err}
				if err == nil {
					r.resp = resp.(*kmsg.FetchResponse)
				}
				results <- r
			}()
		}
		var timer <-chan time.Time
		if len(inflight) == 0 {
			// Nothing to wait for but metadata or the throttle.
			timer = time.After(max(min(time.Until(metaAfter), time.Second), tb.wait(), 10*time.Millisecond))
		} else if w := tb.wait(); w > 0 {
			timer = time.After(w)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-timer:
		case r := <-results:
			delete(inflight, r.broker)
			if err := f.handle(ctx, r, tb); err != nil {
				return err
			}
		}
	}
}

func (f *fetchLoop) request(parts []int) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 500
	req.MinBytes = 1
	req.MaxBytes = f.spec.FetchMaxBytes
	partMax := f.spec.PartitionMaxBytes
	if t := f.spec.ThrottleBytesS; t > 0 {
		// Throttled: about a second's worth per fetch, so the rate holds
		// from the first fetch and waits stay short.
		req.MaxBytes = int32(min(int64(req.MaxBytes), max(t, 64<<10)))
	}
	partMax = min(partMax, req.MaxBytes)
	req.IsolationLevel = 1 // read_committed: aborted transactions are never backed up
	req.SessionEpoch = -1
	topics := map[string]int{}
	for _, i := range parts {
		p := f.spec.Partitions[i]
		ti, ok := topics[p.Topic]
		if !ok {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = p.Topic
			rt.TopicID = f.parts[i].topicID
			req.Topics = append(req.Topics, rt)
			ti = len(req.Topics) - 1
			topics[p.Topic] = ti
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p.Partition
		rp.FetchOffset = f.parts[i].at
		rp.PartitionMaxBytes = partMax
		rp.CurrentLeaderEpoch = f.parts[i].epoch
		rp.LogStartOffset = -1
		req.Topics[ti].Partitions = append(req.Topics[ti].Partitions, rp)
	}
	return req
}

// transient leadership and availability errors: look the leader up again.
func transient(err error) bool {
	return errors.Is(err, kerr.NotLeaderForPartition) || errors.Is(err, kerr.UnknownTopicOrPartition) ||
		errors.Is(err, kerr.FencedLeaderEpoch) || errors.Is(err, kerr.LeaderNotAvailable) ||
		errors.Is(err, kerr.ReplicaNotAvailable) || errors.Is(err, kerr.UnknownLeaderEpoch) ||
		errors.Is(err, kerr.OffsetNotAvailable) || errors.Is(err, kerr.KafkaStorageError) ||
		errors.Is(err, kerr.NotCoordinator) || errors.Is(err, kerr.RequestTimedOut) ||
		errors.Is(err, kerr.CorruptMessage) || errors.Is(err, kerr.UnknownServerError) ||
		errors.Is(err, kerr.UnknownTopicID) || errors.Is(err, kerr.InconsistentTopicID)
}

func (f *fetchLoop) handle(ctx context.Context, r fetchResult, tb *bucket) error {
	if r.err == nil {
		r.err = kerr.ErrorForCode(r.resp.ErrorCode)
	}
	if r.err != nil {
		for _, i := range r.parts {
			f.parts[i].known, f.parts[i].lastErr = false, r.err
		}
		return nil
	}
	want := map[string]map[int32]int{}
	for _, i := range r.parts {
		p := f.spec.Partitions[i]
		if want[p.Topic] == nil {
			want[p.Topic] = map[int32]int{}
		}
		want[p.Topic][p.Partition] = i
	}
	answered := map[int]bool{}
	for ti := range r.resp.Topics {
		t := &r.resp.Topics[ti]
		name := t.Topic
		if name == "" { // v13+ answers by topic id
			for _, i := range r.parts {
				if f.parts[i].topicID == t.TopicID {
					name = f.spec.Partitions[i].Topic
					break
				}
			}
		}
		for pi := range t.Partitions {
			rp := &t.Partitions[pi]
			i, ok := want[name][rp.Partition]
			if !ok {
				continue
			}
			answered[i] = true
			item, err := f.partition(i, rp)
			if err != nil {
				return err
			}
			if item == nil {
				continue
			}
			tb.take(item.bytes)
			select {
			case f.items <- *item:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
	}
	for _, i := range r.parts {
		if !answered[i] {
			f.parts[i].known, f.parts[i].lastErr = false, errors.New("the broker did not answer for the partition")
		}
	}
	return nil
}

// partition reads one partition's answer: the batches to keep and where
// reading continues, or a gap, or an error that sends it back to metadata.
func (f *fetchLoop) partition(i int, rp *kmsg.FetchResponseTopicPartition) (*fetchItem, error) {
	fp := &f.parts[i]
	spec := f.spec.Partitions[i]
	perr := kerr.ErrorForCode(rp.ErrorCode)
	switch {
	case errors.Is(perr, kerr.OffsetOutOfRange):
		logStart := rp.LogStartOffset
		if logStart <= fp.at {
			// Brokers often send -1 with the error: ask for the log start.
			if ls, err := f.logStart(i); err == nil {
				logStart = ls
			}
		}
		if logStart > fp.at {
			to := min(logStart, spec.To)
			item := &fetchItem{p: i, at: fp.at, next: to, gapTo: to}
			fp.at, fp.lastMove = to, time.Now()
			return item, nil
		}
		fp.known, fp.lastErr = false, perr
		return nil, nil
	case perr != nil:
		if !transient(perr) {
			return nil, fmt.Errorf("export %s[%d] at offset %d: %w", spec.Topic, spec.Partition, fp.at, perr)
		}
		fp.known, fp.lastErr = false, perr
		return nil, nil
	}
	var aborted []kbatch.Aborted
	for _, a := range rp.AbortedTransactions {
		aborted = append(aborted, kbatch.Aborted{ProducerID: a.ProducerID, FirstOffset: a.FirstOffset})
	}
	keep := kbatch.NewCommitted(aborted)
	item := &fetchItem{p: i, at: fp.at, next: fp.at, bytes: int64(len(rp.RecordBatches))}
	buf := rp.RecordBatches
	runStart, pos := -1, 0
	endRun := func() {
		if runStart >= 0 {
			item.runs = append(item.runs, rp.RecordBatches[runStart:pos])
			runStart = -1
		}
	}
	for len(buf) > 0 {
		entry, h, rest, complete, err := kbatch.Next(buf)
		if err != nil {
			return nil, fmt.Errorf("export %s[%d] at offset %d: %w", spec.Topic, spec.Partition, fp.at, err)
		}
		if !complete {
			break
		}
		if h.BaseOffset >= spec.To {
			break
		}
		if h.NextOffset() <= fp.at {
			// Before the fetch offset (old formats return whole wrappers).
			pos += len(entry)
			buf = rest
			continue
		}
		if keep.Keep(h, entry) {
			if runStart < 0 {
				runStart = pos
			}
			item.heads = append(item.heads, h)
		} else {
			endRun()
		}
		pos += len(entry)
		buf = rest
		item.next = h.NextOffset()
	}
	endRun()
	if item.next == fp.at {
		fp.lastErr = fmt.Errorf("no complete batch at offset %d (high watermark %d, last stable %d)", fp.at, rp.HighWatermark, rp.LastStableOffset)
		return nil, nil
	}
	item.next = min(item.next, spec.To)
	fp.at, fp.lastMove, fp.lastErr = item.next, time.Now(), nil
	return item, nil
}

// logStart asks the partition's leader for its log start offset.
func (f *fetchLoop) logStart(i int) (int64, error) {
	p := f.spec.Partitions[i]
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = p.Topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = p.Partition
	rp.CurrentLeaderEpoch = f.parts[i].epoch
	rp.Timestamp = -2 // earliest
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := f.cl.Broker(int(f.parts[i].leader)).Request(ctx, req)
	if err != nil {
		return 0, err
	}
	for _, t := range resp.(*kmsg.ListOffsetsResponse).Topics {
		for _, lp := range t.Partitions {
			if lp.Partition == p.Partition {
				if err := kerr.ErrorForCode(lp.ErrorCode); err != nil {
					return 0, err
				}
				return lp.Offset, nil
			}
		}
	}
	return 0, fmt.Errorf("log start of %s[%d]: not in the answer", p.Topic, p.Partition)
}

// locate asks for the leaders of the unit's partitions that need one.
func (f *fetchLoop) locate(ctx context.Context) error {
	req := kmsg.NewPtrMetadataRequest()
	seen := map[string]bool{}
	for i, p := range f.spec.Partitions {
		if !f.parts[i].known && f.parts[i].at < p.To && !seen[p.Topic] {
			seen[p.Topic] = true
			t := kmsg.NewMetadataRequestTopic()
			t.Topic = kmsg.StringPtr(p.Topic)
			req.Topics = append(req.Topics, t)
		}
	}
	if len(req.Topics) == 0 {
		return nil
	}
	resp, err := req.RequestWith(ctx, f.cl)
	if err != nil {
		return err
	}
	type lp struct {
		leader, epoch int32
		err           error
	}
	topics := map[string]map[int32]lp{}
	ids := map[string][16]byte{}
	var firstErr error
	for _, rt := range resp.Topics {
		if rt.Topic == nil {
			continue
		}
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			if errors.Is(err, kerr.UnknownTopicOrPartition) {
				return fmt.Errorf("export %s: %w", *rt.Topic, ErrTopicGone)
			}
			firstErr = err
			continue
		}
		ids[*rt.Topic] = rt.TopicID
		m := map[int32]lp{}
		for _, p := range rt.Partitions {
			m[p.Partition] = lp{p.Leader, p.LeaderEpoch, kerr.ErrorForCode(p.ErrorCode)}
		}
		topics[*rt.Topic] = m
	}
	for i, p := range f.spec.Partitions {
		fp := &f.parts[i]
		if fp.known || fp.at >= p.To {
			continue
		}
		m, ok := topics[p.Topic]
		if !ok {
			continue
		}
		if want := p.TopicID; want != ([16]byte{}) && ids[p.Topic] != ([16]byte{}) && ids[p.Topic] != want {
			return fmt.Errorf("export %s[%d]: topic id changed: %w", p.Topic, p.Partition, ErrTopicGone)
		}
		l, ok := m[p.Partition]
		if !ok {
			return fmt.Errorf("export %s[%d]: partition not in metadata: %w", p.Topic, p.Partition, ErrTopicGone)
		}
		if l.err != nil && !errors.Is(l.err, kerr.ReplicaNotAvailable) {
			fp.lastErr = l.err
			continue
		}
		if l.leader < 0 {
			fp.lastErr = kerr.LeaderNotAvailable
			continue
		}
		fp.leader, fp.epoch, fp.known, fp.topicID = l.leader, l.epoch, true, ids[p.Topic]
	}
	return firstErr
}

// bucket is a byte-rate limit over a sliding second.
type bucket struct {
	rate  int64
	start time.Time
	taken int64
}

func newBucket(rate int64) *bucket { return &bucket{rate: rate, start: time.Now()} }

func (b *bucket) take(n int64) {
	if b.rate > 0 {
		b.taken += n
	}
}

// wait is how long to wait before the next fetch.
func (b *bucket) wait() time.Duration {
	if b.rate <= 0 {
		return 0
	}
	want := time.Duration(float64(b.taken) / float64(b.rate) * float64(time.Second))
	d := want - time.Since(b.start)
	if time.Since(b.start) > 10*time.Second && d <= 0 {
		b.start, b.taken = time.Now(), 0
	}
	return d
}

// ---------------------------------------------------------------------------
// The pack writer.

type packer struct {
	spec       ExportSpec
	st         ExportState // durable: as of the last commit
	b          storage.Backend
	onCommit   func(ExportState) error
	onProgress func(Progress)

	pending ExportState // st plus what the open pack holds
	file    storage.Writer
	pw      *backupset.PackWriter
	name    string
	slots   map[int]bool
	last    time.Time
	comp    string
}

func (w *packer) init() {
	w.pending = cloneState(w.st)
	w.slots = map[int]bool{}
	w.comp = w.spec.Compression
	if w.comp == "" {
		w.comp = backupset.CompressionNone
	}
}

func cloneState(s ExportState) ExportState {
	c := s
	c.Next = append([]int64(nil), s.Next...)
	c.Records = append([]int64(nil), s.Records...)
	c.Bytes = append([]int64(nil), s.Bytes...)
	c.Lost = append([]LostRange(nil), s.Lost...)
	c.Packs = append([]PackState(nil), s.Packs...)
	c.SchemaIDs = s.SchemaIDs.Clone()
	return c
}

func (w *packer) run(ctx context.Context, items <-chan fetchItem) error {
	defer func() {
		if w.file != nil {
			_ = w.file.Abort()
		}
	}()
	for it := range items {
		if err := w.add(ctx, it); err != nil {
			return err
		}
		if w.pw != nil && w.pw.Size() >= w.spec.PackBytes {
			if err := w.commit(); err != nil {
				return err
			}
		}
		if time.Since(w.last) > time.Second {
			w.progress()
		}
	}
	if err := ctx.Err(); err != nil {
		return nil // the fetch loop reports why
	}
	if err := w.commit(); err != nil {
		return err
	}
	w.progress()
	return nil
}

func (w *packer) progress() {
	w.last = time.Now()
	if w.onProgress == nil {
		return
	}
	var p Progress
	for i := range w.pending.Records {
		p.Records += w.pending.Records[i]
		p.Bytes += w.pending.Bytes[i]
		if w.pending.Next[i] >= w.spec.Partitions[i].To {
			p.Done++
		}
	}
	w.onProgress(p)
}

func (w *packer) add(ctx context.Context, it fetchItem) error {
	spec := w.spec.Partitions[it.p]
	if it.at != w.pending.Next[it.p] {
		return fmt.Errorf("export %s[%d]: fetched at %d, written up to %d", spec.Topic, spec.Partition, it.at, w.pending.Next[it.p])
	}
	if it.gapTo > 0 {
		w.pending.Lost = append(w.pending.Lost, LostRange{P: it.p, From: it.at, To: it.gapTo})
		w.pending.Next[it.p] = it.next
		return nil
	}
	pieces, info, err := w.trim(spec, it)
	if err != nil {
		return err
	}
	if w.spec.ScanSchemaIDs && info.Records > 0 {
		if w.pending.SchemaIDs == nil {
			w.pending.SchemaIDs = &wire.IDSet{}
		}
		if err := scanSchemaIDs(w.pending.SchemaIDs, pieces); err != nil {
			return fmt.Errorf("export %s[%d]: %w", spec.Topic, spec.Partition, err)
		}
	}
	if info.Records > 0 {
		if w.pw == nil {
			if err := w.open(ctx); err != nil {
				return err
			}
		}
		tp := backupset.TopicPartition{Topic: spec.Topic, Partition: spec.Partition}
		before := w.pw.Size()
		if err := w.pw.Add(tp, info, pieces...); err != nil {
			return fmt.Errorf("export %s[%d]: write %s: %w", spec.Topic, spec.Partition, w.name, err)
		}
		w.slots[it.p] = true
		w.pending.Records[it.p] += info.Records
		w.pending.Bytes[it.p] += w.pw.Size() - before
	}
	w.pending.Next[it.p] = it.next
	return nil
}

// trim keeps the item's batches as they are, except a batch that reaches
// below the fetch offset or the range's start, or past its end, and the old
// message formats: those are decoded and written again as one v2 batch of
// the records inside the range.
func (w *packer) trim(spec ExportPartition, it fetchItem) ([][]byte, backupset.ChunkInfo, error) {
	info := backupset.ChunkInfo{First: -1, Next: it.next}
	floor := max(it.at, spec.From)
	clean := true
	for _, h := range it.heads {
		if h.Magic < 2 || h.BaseOffset < floor || h.LastOffset() >= spec.To {
			clean = false
			break
		}
	}
	if clean {
		for _, h := range it.heads {
			if info.First < 0 {
				info.First = h.BaseOffset
			}
			info.Records += int64(h.NumRecords)
			info.MaxTimestamp = max(info.MaxTimestamp, h.MaxTimestamp)
		}
		return it.runs, info, nil
	}
	var out [][]byte
	for _, run := range it.runs {
		for len(run) > 0 {
			entry, h, rest, _, err := kbatch.Next(run)
			if err != nil {
				return nil, info, err
			}
			run = rest
			if h.Magic == 2 && h.BaseOffset >= floor && h.LastOffset() < spec.To {
				out = append(out, entry)
				if info.First < 0 {
					info.First = h.BaseOffset
				}
				info.Records += int64(h.NumRecords)
				info.MaxTimestamp = max(info.MaxTimestamp, h.MaxTimestamp)
				continue
			}
			recs, err := kbatch.Decode(entry, floor)
			if err != nil {
				return nil, info, fmt.Errorf("export %s[%d] at offset %d: %w", spec.Topic, spec.Partition, h.BaseOffset, err)
			}
			n := sort.Search(len(recs), func(k int) bool { return recs[k].Offset >= spec.To })
			recs = recs[:n]
			if len(recs) == 0 {
				continue
			}
			out = append(out, kbatch.Build(recs, nil))
			if info.First < 0 {
				info.First = recs[0].Offset
			}
			info.Records += int64(len(recs))
			for _, r := range recs {
				info.MaxTimestamp = max(info.MaxTimestamp, r.Timestamp)
			}
		}
	}
	return out, info, nil
}

func (w *packer) open(ctx context.Context) error {
	w.name = backupset.PackName(w.spec.Dir, w.spec.Unit, w.spec.Attempt, w.pending.Seq)
	f, err := w.b.Create(ctx, w.name)
	if err != nil {
		return fmt.Errorf("export unit %d: %w", w.spec.Unit, err)
	}
	pw, err := backupset.NewPackWriter(f, w.comp)
	if err != nil {
		_ = f.Abort()
		return err
	}
	w.file, w.pw = f, pw
	return nil
}

// commit finishes and publishes the open pack, if any, and makes the
// pending state durable.
func (w *packer) commit() error {
	if w.pw != nil {
		size, sha, _, err := w.pw.Finish()
		if err != nil {
			return fmt.Errorf("export unit %d: finish %s: %w", w.spec.Unit, w.name, err)
		}
		if err := w.file.Commit(); err != nil {
			return fmt.Errorf("export unit %d: commit %s: %w", w.spec.Unit, w.name, err)
		}
		ps := PackState{File: backupset.FileEntry{Name: w.name, Size: size, SHA256: sha}}
		for i := range w.slots {
			ps.Slots = append(ps.Slots, i)
		}
		sort.Ints(ps.Slots)
		w.pending.Packs = append(w.pending.Packs, ps)
		w.pending.Seq++
		w.file, w.pw, w.slots = nil, nil, map[int]bool{}
	}
	w.st = cloneState(w.pending)
	if w.onCommit != nil {
		return w.onCommit(cloneState(w.st))
	}
	return nil
}
