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
// producer: its own producer id, one sequence per partition, at most one
// batch of a partition in flight (so a retry resends exactly the batch that
// failed, with its sequence, and the broker drops it if it had landed), and
// per broker at most two produce requests in flight, each with the next
// batch of as many partitions as fit.
type producer struct {
	cl      *kgo.Client
	pid     int64
	epoch   int16
	parts   []*outPart
	in      chan outBatch
	release func(int64)
	tb      *bucket
}

type outPart struct {
	topic     string
	topicID   [16]byte // produce v13+ names topics by id
	partition int32
	leader    int32
	known     bool
	queue     []outBatch
	seq       int32
	inflight  bool
	lastMove  time.Time
	lastErr   error
	acked     int64
}

// maxRequestBytes bounds one produce request (Kafka's socket.request.max.bytes is 100 MiB).
const maxRequestBytes = 8 << 20

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

type produceResult struct {
	broker int32
	sent   []int
	resp   *kmsg.ProduceResponse
	err    error
}

// run produces until the input is closed and everything is acknowledged.
func (p *producer) run(ctx context.Context, onAcked func(int64)) error {
	inflight := map[int32]int{}
	results := make(chan produceResult, 8)
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
			if err := p.locate(ctx); err != nil {
				for _, op := range p.parts {
					if !op.known {
						op.lastErr = err
					}
				}
			}
			metaAfter = time.Now().Add(backoff)
			backoff = min(2*backoff, 2*time.Second)
		}
		if p.tb.wait() <= 0 {
			p.launch(ctx, inflight, results)
		}
		var timer <-chan time.Time
		if needMeta || p.tb.wait() > 0 {
			timer = time.After(max(10*time.Millisecond, min(time.Until(metaAfter), p.tb.wait(), time.Second)))
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

// launch sends, to every broker with room, the head batch of each of its
// partitions that has none in flight.
func (p *producer) launch(ctx context.Context, inflight map[int32]int, results chan<- produceResult) {
	byBroker := map[int32][]int{}
	for i, op := range p.parts {
		if op.known && !op.inflight && len(op.queue) > 0 && inflight[op.leader] < 2 {
			byBroker[op.leader] = append(byBroker[op.leader], i)
		}
	}
	for broker, idx := range byBroker {
		req := kmsg.NewPtrProduceRequest()
		req.Acks = -1
		req.TimeoutMillis = 30000
		topics := map[string]int{}
		size := 0
		var sent []int
		for _, i := range idx {
			op := p.parts[i]
			b := &op.queue[0]
			if size > 0 && size+len(b.data) > maxRequestBytes {
				break
			}
			size += len(b.data)
			p.stamp(op, b)
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
			op.inflight = true
			sent = append(sent, i)
		}
		p.tb.take(int64(size))
		inflight[broker]++
		go func() {
			resp, err := p.cl.Broker(int(broker)).Request(ctx, req)
			r := produceResult{broker: broker, sent: sent, err: err}
			if err == nil {
				r.resp = resp.(*kmsg.ProduceResponse)
			}
			results <- r
		}()
	}
}

// stamp gives a partition's head batch its producer fields, once: a resend
// keeps its sequence.
func (p *producer) stamp(op *outPart, b *outBatch) {
	kbatch.Restamp(b.data, p.pid, p.epoch, op.seq)
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
	var acked int64
	ok := map[int]bool{}
	if r.err == nil {
		for _, t := range r.resp.Topics {
			for _, rp := range t.Partitions {
				for _, i := range r.sent {
					op := p.parts[i]
					if (op.topic != t.Topic && (t.TopicID == [16]byte{} || t.TopicID != op.topicID)) || op.partition != rp.Partition {
						continue
					}
					ok[i] = true
					err := kerr.ErrorForCode(rp.ErrorCode)
					switch {
					case err == nil || errors.Is(err, kerr.DuplicateSequenceNumber):
						b := op.queue[0]
						op.queue = op.queue[1:]
						op.seq = int32((int64(op.seq) + int64(b.records)) % (1 << 31)) // sequences wrap to 0
						op.acked += int64(b.records)
						acked += int64(b.records)
						op.lastMove, op.lastErr = time.Now(), nil
						p.release(b.held)
					case errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge):
						if err := p.split(op); err != nil {
							return acked, err
						}
					case retriableProduce(err):
						op.known, op.lastErr = false, err
					default:
						msg := ""
						if rp.ErrorMessage != nil {
							msg = ": " + *rp.ErrorMessage
						}
						return acked, fmt.Errorf("restore %s[%d]: produce: %w%s", op.topic, op.partition, err, msg)
					}
				}
			}
		}
	}
	for _, i := range r.sent {
		op := p.parts[i]
		op.inflight = false
		if !ok[i] {
			err := r.err
			if err == nil {
				err = errors.New("the broker did not answer for the partition")
			}
			op.known, op.lastErr = false, err
		}
	}
	return acked, nil
}

// split replaces a partition's head batch, refused as too large, by two
// batches of half its records each. The refused batch did not land, so its
// sequence is free for the first half.
func (p *producer) split(op *outPart) error {
	b := op.queue[0]
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
	first := outBatch{p: b.p, data: kbatch.Build(a, comp), records: int32(len(a)), held: b.held}
	second := outBatch{p: b.p, data: kbatch.Build(c, comp), records: int32(len(c))}
	op.queue = append([]outBatch{first, second}, op.queue[1:]...)
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
