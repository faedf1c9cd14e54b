package kdata

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbr-project/kbr/internal/kbatch"
)

// producer writes ready batches to many partitions as one idempotent
// producer: its own producer id and one sequence per partition, each batch
// stamped once (a resend keeps its sequence, and the broker drops it if it
// had landed). A partition has up to maxInflightPerPartition batches in
// flight, one per produce request (Kafka takes one batch per partition in
// a request), so that a unit of few partitions keeps the broker busy (the
// first batch of each partition alone, see outPart.confirmed); per
// broker at most maxRequestsPerBroker requests are in flight, each with the
// next batch of as many partitions as fit.
//
// The broker appends a partition's batches only in sequence order. A batch
// that fails (or is refused as out of order because an earlier one failed,
// or because two requests reached the broker out of order) puts its
// partition into a retry round: nothing more is sent until every batch in
// flight is answered, then the unacknowledged batches go again from the
// oldest, with their sequences. An out-of-order refusal of the oldest
// unacknowledged batch, sent when nothing before it was in doubt, means the
// broker lost the producer's state: an error (the activity's retry resumes
// from the end offsets, exactly).
type producer struct {
	cl      *kgo.Client
	pid     int64
	epoch   int16
	parts   []*outPart
	in      chan outBatch
	release func(int64)
	tb      *bucket
	// resent counts batches sent again in retry rounds.
	resent int64
}

type outPart struct {
	topic     string
	topicID   [16]byte // produce v13+ names topics by id
	partition int32
	leader    int32
	known     bool
	// queue holds the unacknowledged batches in order; queue[:next] are
	// sent in this round (in flight or answered, not yet popped).
	queue    []outBatch
	next     int
	inflight int
	retry    bool // a retry round waits for the batches in flight
	// confirmed: the broker acknowledged a batch of this producer for the
	// partition, so it holds the producer's state and refuses any batch
	// out of sequence. Before that it takes any first sequence (KIP-360),
	// and a second batch that overtook the first would land before it
	// (KAFKA-15591): one batch in flight until then.
	confirmed bool
	seq       int32     // the sequence of the next batch to stamp
	lastSent  time.Time // when the newest batch in flight went out
	lastMove  time.Time
	lastErr   error
	acked     int64
}

const (
	// maxRequestBytes bounds one produce request (Kafka's socket.request.max.bytes is 100 MiB).
	maxRequestBytes = 8 << 20
	// maxInflightPerPartition is at most 5: a broker remembers the last
	// five batches of a producer and partition to drop resent duplicates.
	maxInflightPerPartition = 4
	maxRequestsPerBroker    = 4
	// sendSpacing separates two requests carrying batches of one
	// partition: franz-go issues each request from its own goroutine, and
	// two issued at once may reach the connection in either order (which
	// costs a retry round, not correctness).
	sendSpacing = time.Millisecond
	// drainWait bounds a produce request's life, past the request's own
	// 30 s broker timeout: the requests do not end with the unit's context.
	drainWait = 45 * time.Second
)

func newProducer(ctx context.Context, cl *kgo.Client, parts []ImportPartition, throttle int64) (*producer, error) {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60000
	req.ProducerID, req.ProducerEpoch = -1, -1
	var resp *kmsg.InitProducerIDResponse
	var err error
	for attempt := 0; ; attempt++ {
		resp, err = req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err == nil || attempt >= 20 || !kerr.IsRetriable(err) {
			break
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("restore: init producer id: %w", err)
	}
	p := &producer{cl: cl, pid: resp.ProducerID, epoch: resp.ProducerEpoch, in: make(chan outBatch, 256), tb: newBucket(throttle)}
	now := time.Now()
	for _, ip := range parts {
		p.parts = append(p.parts, &outPart{topic: ip.TargetTopic, partition: ip.Partition, lastMove: now})
	}
	return p, nil
}

// sentBatch is a batch of a partition in a request: its sequence names it
// among the partition's unacknowledged batches.
type sentBatch struct {
	part   int
	seq    int32
	asHead bool // it was the oldest unacknowledged batch, nothing in flight before it
}

type produceResult struct {
	broker int32
	sent   []sentBatch
	resp   *kmsg.ProduceResponse
	err    error
}

// run produces until the input is closed and everything is acknowledged.
func (p *producer) run(ctx context.Context, onAcked func(int64)) error {
	inflight := map[int32]int{}
	results := make(chan produceResult, maxRequestsPerBroker*8)
	// Requests outlive ctx: a unit that ends, also cut short, waits until
	// every request it sent is answered, so that none of its batches lands
	// after it returned (a resumed attempt counts what landed to skip it).
	reqCtx := context.WithoutCancel(ctx)
	defer func() {
		for n := range inflight {
			for ; inflight[n] > 0; inflight[n]-- {
				<-results
			}
		}
	}()
	in := p.in
	var (
		acked     int64
		metaAfter time.Time
		backoff   = 100 * time.Millisecond
		lastTick  = time.Now()
	)
	for {
		queued := 0
		for _, op := range p.parts {
			if len(op.queue) > 0 {
				queued++
				if time.Since(op.lastMove) > patience {
					return fmt.Errorf("restore %s[%d]: no progress for %s: %v", op.topic, op.partition, patience, op.lastErr)
				}
			}
		}
		if in == nil && queued == 0 && len(inflight) == 0 {
			onAcked(acked)
			return nil
		}
		needMeta := false
		for _, op := range p.parts {
			if len(op.queue) > 0 && !op.known {
				needMeta = true
			}
		}
		if needMeta && time.Now().After(metaAfter) {
			err := p.locate(ctx)
			if err != nil {
				for _, op := range p.parts {
					if !op.known {
						op.lastErr = err
					}
				}
			}
			metaAfter = time.Now().Add(backoff)
			if found := err == nil && p.allKnown(); found {
				backoff = 100 * time.Millisecond // the next leader move starts over
			} else {
				backoff = min(2*backoff, 2*time.Second)
			}
		}
		spaced := false
		if p.tb.wait() <= 0 {
			spaced = p.launch(reqCtx, inflight, results)
		}
		var timer <-chan time.Time
		switch {
		case needMeta || p.tb.wait() > 0:
			timer = time.After(max(10*time.Millisecond, min(time.Until(metaAfter), p.tb.wait(), time.Second)))
		case spaced:
			timer = time.After(sendSpacing)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case b, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			op := p.parts[b.p]
			if len(op.queue) == 0 {
				op.lastMove = time.Now()
			}
			op.queue = append(op.queue, b)
		case r := <-results:
			inflight[r.broker]--
			if inflight[r.broker] == 0 {
				delete(inflight, r.broker)
			}
			n, err := p.handle(r)
			if err != nil {
				return err
			}
			acked += n
			if time.Since(lastTick) > time.Second {
				lastTick = time.Now()
				onAcked(acked)
			}
		case <-timer:
		}
	}
}

func (p *producer) allKnown() bool {
	for _, op := range p.parts {
		if len(op.queue) > 0 && !op.known {
			return false
		}
	}
	return true
}

// sendable says whether partition op can have its next batch in a request
// now; spaced is true when only sendSpacing holds it back.
func (p *producer) sendable(op *outPart, now time.Time) (ok, spaced bool) {
	if op.retry && op.inflight == 0 {
		op.retry, op.next = false, 0 // a new round from the oldest unacknowledged batch
	}
	for op.next < len(op.queue) && op.queue[op.next].acked {
		op.next++ // acknowledged while an older batch was in doubt
	}
	limit := maxInflightPerPartition
	if !op.confirmed {
		limit = 1
	}
	if !op.known || op.retry || op.next >= len(op.queue) || op.inflight >= limit {
		return false, false
	}
	if op.inflight > 0 && now.Sub(op.lastSent) < sendSpacing {
		return false, true
	}
	return true, false
}

// launch sends, to every broker with room, requests with the next batch of
// each of its partitions that can take one. It reports whether a partition
// waits only for sendSpacing.
func (p *producer) launch(ctx context.Context, inflight map[int32]int, results chan<- produceResult) (spaced bool) {
	now := time.Now()
	byBroker := map[int32][]int{}
	for i, op := range p.parts {
		ok, sp := p.sendable(op, now)
		spaced = spaced || sp
		if ok && inflight[op.leader] < maxRequestsPerBroker {
			byBroker[op.leader] = append(byBroker[op.leader], i)
		}
	}
	for broker, idx := range byBroker {
		req := kmsg.NewPtrProduceRequest()
		req.Acks = -1
		req.TimeoutMillis = 30000
		topics := map[string]int{}
		size := 0
		var sent []sentBatch
		for _, i := range idx {
			op := p.parts[i]
			b := &op.queue[op.next]
			if size > 0 && size+len(b.data) > maxRequestBytes {
				break
			}
			size += len(b.data)
			p.stamp(op, b)
			if b.sends++; b.sends > 1 {
				p.resent++
			}
			ti, ok := topics[op.topic]
			if !ok {
				rt := kmsg.NewProduceRequestTopic()
				rt.Topic, rt.TopicID = op.topic, op.topicID
				req.Topics = append(req.Topics, rt)
				ti = len(req.Topics) - 1
				topics[op.topic] = ti
			}
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = op.partition
			rp.Records = b.data
			req.Topics[ti].Partitions = append(req.Topics[ti].Partitions, rp)
			sent = append(sent, sentBatch{part: i, seq: b.seq, asHead: op.next == 0 && op.inflight == 0})
			op.next++
			op.inflight++
			op.lastSent = now
			if op.confirmed && op.next < len(op.queue) && op.inflight < maxInflightPerPartition {
				spaced = true // its next batch can follow after sendSpacing
			}
		}
		p.tb.take(int64(size))
		inflight[broker]++
		go func() {
			ctx, cancel := context.WithTimeout(ctx, drainWait)
			defer cancel()
			resp, err := p.cl.Broker(int(broker)).Request(ctx, req)
			r := produceResult{broker: broker, sent: sent, err: err}
			if err == nil {
				r.resp = resp.(*kmsg.ProduceResponse)
			}
			results <- r
		}()
	}
	return spaced
}

// stamp gives a batch its producer fields the first time it is sent: the
// partition's next sequence. A resend keeps them.
func (p *producer) stamp(op *outPart, b *outBatch) {
	if b.stamped {
		return
	}
	b.seq, b.stamped = op.seq, true
	op.seq = nextSeq(op.seq, b.records)
	kbatch.Restamp(b.data, p.pid, p.epoch, b.seq)
}

// nextSeq is the sequence after a batch of n records: sequences wrap to 0.
func nextSeq(seq, n int32) int32 {
	return int32((int64(seq) + int64(n)) % (1 << 31))
}

// retriable produce errors: the batch did not land, or landed and the
// broker will say so (duplicate sequence) when it is sent again.
func retriableProduce(err error) bool {
	return errors.Is(err, kerr.NotLeaderForPartition) || errors.Is(err, kerr.LeaderNotAvailable) ||
		errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.NotEnoughReplicas) ||
		errors.Is(err, kerr.NotEnoughReplicasAfterAppend) || errors.Is(err, kerr.RequestTimedOut) ||
		errors.Is(err, kerr.KafkaStorageError) || errors.Is(err, kerr.NetworkException) ||
		errors.Is(err, kerr.CorruptMessage) || errors.Is(err, kerr.UnknownServerError) ||
		errors.Is(err, kerr.ConcurrentTransactions)
}

// handle takes a produce response; it returns the records acknowledged.
func (p *producer) handle(r produceResult) (int64, error) {
	answers := map[int]kmsg.ProduceResponseTopicPartition{}
	if r.err == nil {
		for _, t := range r.resp.Topics {
			for _, rp := range t.Partitions {
				for k, s := range r.sent {
					op := p.parts[s.part]
					if (op.topic == t.Topic || (t.TopicID != [16]byte{} && t.TopicID == op.topicID)) && op.partition == rp.Partition {
						answers[k] = rp
					}
				}
			}
		}
	}
	var acked int64
	for k, s := range r.sent {
		op := p.parts[s.part]
		op.inflight--
		j := op.find(s.seq)
		if j < 0 {
			continue // cannot be: only acknowledged batches leave the queue
		}
		rp, answered := answers[k]
		var err error
		switch {
		case r.err != nil:
			err = r.err
		case !answered:
			err = errors.New("the broker did not answer for the partition")
		default:
			err = kerr.ErrorForCode(rp.ErrorCode)
		}
		switch {
		case err == nil || errors.Is(err, kerr.DuplicateSequenceNumber):
			op.queue[j].acked, op.confirmed = true, true
			op.lastMove, op.lastErr = time.Now(), nil
		case errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge):
			if err := p.split(op, j); err != nil {
				return acked, err
			}
			op.retry = true
		case errors.Is(err, kerr.OutOfOrderSequenceNumber) && !s.asHead:
			op.retry, op.lastErr = true, err
		case r.err != nil || !answered || retriableProduce(err):
			op.known, op.retry, op.lastErr = false, true, err
		default:
			msg := ""
			if answered && rp.ErrorMessage != nil {
				msg = ": " + *rp.ErrorMessage
			}
			return acked, fmt.Errorf("restore %s[%d]: produce: %w%s", op.topic, op.partition, err, msg)
		}
		acked += op.pop(p.release)
	}
	return acked, nil
}

// find is the queue index of the stamped batch with sequence seq, or -1.
func (op *outPart) find(seq int32) int {
	for j := range op.queue {
		if op.queue[j].stamped && op.queue[j].seq == seq {
			return j
		}
		if !op.queue[j].stamped {
			break
		}
	}
	return -1
}

// pop drops the acknowledged batches at the head of the queue, giving back
// their bytes; it returns their records.
func (op *outPart) pop(release func(int64)) int64 {
	var n int64
	for len(op.queue) > 0 && op.queue[0].acked {
		b := op.queue[0]
		// Cleared, or the queue's array would keep the batch's data, and
		// so its whole chunk, after the bound was given back.
		op.queue[0] = outBatch{}
		op.queue = op.queue[1:]
		op.next = max(0, op.next-1)
		op.acked += int64(b.records)
		n += int64(b.records)
		b.done(release)
	}
	return n
}

// split replaces batch j of a partition, refused as too large, by two
// batches of half its records each, stamped with the sequences the refused
// batch had (it did not land, so its sequences are free).
func (p *producer) split(op *outPart, j int) error {
	b := op.queue[j]
	recs, err := kbatch.Decode(b.data, 0)
	if err != nil {
		return fmt.Errorf("restore %s[%d]: split a batch refused as too large: %w", op.topic, op.partition, err)
	}
	if len(recs) < 2 {
		return fmt.Errorf("restore %s[%d]: a single record of %d bytes is over the topic's max.message.bytes", op.topic, op.partition, len(b.data))
	}
	half := len(recs) / 2
	_, h, _, _, _ := kbatch.Next(b.data)
	comp, _ := kbatch.Compressor(codecName(h.Codec()))
	a, c := append([]kbatch.Record(nil), recs[:half]...), append([]kbatch.Record(nil), recs[half:]...)
	kbatch.Renumber(a, 0)
	kbatch.Renumber(c, 0)
	first := outBatch{p: b.p, data: kbatch.Build(a, comp), records: int32(len(a)), held: b.held, chunk: b.chunk, seq: b.seq, stamped: true}
	second := outBatch{p: b.p, data: kbatch.Build(c, comp), records: int32(len(c)), seq: nextSeq(b.seq, int32(len(a))), stamped: true}
	kbatch.Restamp(first.data, p.pid, p.epoch, first.seq)
	kbatch.Restamp(second.data, p.pid, p.epoch, second.seq)
	q := append([]outBatch(nil), op.queue[:j]...)
	q = append(q, first, second)
	op.queue = append(q, op.queue[j+1:]...)
	return nil
}

// locate looks up the leaders of the target partitions that need one.
func (p *producer) locate(ctx context.Context) error {
	req := kmsg.NewPtrMetadataRequest()
	seen := map[string]bool{}
	for _, op := range p.parts {
		if !op.known && !seen[op.topic] {
			seen[op.topic] = true
			t := kmsg.NewMetadataRequestTopic()
			t.Topic = kmsg.StringPtr(op.topic)
			req.Topics = append(req.Topics, t)
		}
	}
	resp, err := req.RequestWith(ctx, p.cl)
	if err != nil {
		return err
	}
	leaders := map[string]map[int32]int32{}
	ids := map[string][16]byte{}
	var firstErr error
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			firstErr = fmt.Errorf("metadata of %s: %w", *t.Topic, err)
			continue
		}
		m := map[int32]int32{}
		for _, rp := range t.Partitions {
			if kerr.ErrorForCode(rp.ErrorCode) == nil || errors.Is(kerr.ErrorForCode(rp.ErrorCode), kerr.ReplicaNotAvailable) {
				m[rp.Partition] = rp.Leader
			}
		}
		leaders[*t.Topic] = m
		ids[*t.Topic] = t.TopicID
	}
	for _, op := range p.parts {
		if op.known {
			continue
		}
		if l, ok := leaders[op.topic][op.partition]; ok && l >= 0 {
			op.leader, op.known, op.topicID = l, true, ids[op.topic]
		}
	}
	return firstErr
}
