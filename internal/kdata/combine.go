package kdata

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A worker's restore units that write to one cluster share its client, and
// through it one connection per broker. A broker serves one request of a
// connection at a time, and every produce request costs it work of its own:
// measured on the test stack (256 MiB, 12 partitions), four units each
// sending its own partitions' batches took the broker 1.7x the CPU and the
// import 1.7x the time of one unit sending all twelve. So the produce
// requests that the units of one client have ready for the same broker at
// the same moment go out as one request, and each unit gets back the part
// of the response that answers its partitions. Nothing else is shared: every
// unit keeps its own producer id, sequences and retries, so a unit's
// exactly-once reasoning does not change.
type combiner struct {
	cl      *kgo.Client
	users   int
	mu      sync.Mutex
	brokers map[int32]*brokerQueue
}

type brokerQueue struct {
	waiting  []*subRequest
	inflight int
}

type subRequest struct {
	req  *kmsg.ProduceRequest
	size int
	done chan subResult // buffered: the sender never waits for a unit
}

type subResult struct {
	resp *kmsg.ProduceResponse
	err  error
}

const (
	// maxCombinedBytes bounds a combined request (Kafka's
	// socket.request.max.bytes is 100 MiB by default).
	maxCombinedBytes = 16 << 20
	// combinedInFlight: combined requests in flight per broker. One: the
	// broker serves a connection's requests one at a time anyway, and
	// while it works on one, everything the units have ready meanwhile
	// gathers into the next.
	combinedInFlight = 1
)

var (
	combinersMu sync.Mutex
	combiners   = map[*kgo.Client]*combiner{}
)

// acquireCombiner is the client's combiner; release it when done.
func acquireCombiner(cl *kgo.Client) *combiner {
	combinersMu.Lock()
	defer combinersMu.Unlock()
	c := combiners[cl]
	if c == nil {
		c = &combiner{cl: cl, brokers: map[int32]*brokerQueue{}}
		combiners[cl] = c
	}
	c.users++
	return c
}

func (c *combiner) release() {
	combinersMu.Lock()
	defer combinersMu.Unlock()
	c.users--
	if c.users == 0 && combiners[c.cl] == c {
		delete(combiners, c.cl)
	}
}

// produce sends req to broker, combined with what other units have waiting
// for it, and returns the response to req's partitions. A request still
// waiting when ctx ends is not sent.
func (c *combiner) produce(ctx context.Context, broker int32, req *kmsg.ProduceRequest, size int) (*kmsg.ProduceResponse, error) {
	s := &subRequest{req: req, size: size, done: make(chan subResult, 1)}
	c.mu.Lock()
	q := c.brokers[broker]
	if q == nil {
		q = &brokerQueue{}
		c.brokers[broker] = q
	}
	q.waiting = append(q.waiting, s)
	c.kick(broker, q)
	c.mu.Unlock()
	select {
	case r := <-s.done:
		return r.resp, r.err
	case <-ctx.Done():
		c.mu.Lock()
		for i, w := range q.waiting {
			if w == s {
				q.waiting = append(q.waiting[:i:i], q.waiting[i+1:]...)
				break
			}
		}
		c.mu.Unlock()
		return nil, context.Cause(ctx)
	}
}

// kick sends what waits for broker while it has room; c.mu is held.
func (c *combiner) kick(broker int32, q *brokerQueue) {
	for q.inflight < combinedInFlight && len(q.waiting) > 0 {
		group, rest := takeGroup(q.waiting, maxCombinedBytes)
		q.waiting = rest
		q.inflight++
		go c.send(broker, q, group)
	}
}

type partKey struct {
	topic     string
	partition int32
}

// takeGroup takes, in order, the waiting requests that fit in one request
// of at most max bytes (the first always) and name no partition twice.
func takeGroup(waiting []*subRequest, max int) (group, rest []*subRequest) {
	seen := map[partKey]bool{}
	size := 0
	for _, s := range waiting {
		fits := len(group) == 0 || size+s.size <= max
		if fits {
			for _, t := range s.req.Topics {
				for _, p := range t.Partitions {
					if seen[partKey{t.Topic, p.Partition}] {
						fits = false
					}
				}
			}
		}
		if !fits {
			rest = append(rest, s)
			continue
		}
		for _, t := range s.req.Topics {
			for _, p := range t.Partitions {
				seen[partKey{t.Topic, p.Partition}] = true
			}
		}
		size += s.size
		group = append(group, s)
	}
	return group, rest
}

func (c *combiner) send(broker int32, q *brokerQueue, group []*subRequest) {
	req, timeout := combine(group)
	// Not any one unit's context: the request carries the others' batches.
	ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
	resp, err := c.cl.Broker(int(broker)).Request(ctx, req)
	cancel()
	var pr *kmsg.ProduceResponse
	if err == nil {
		pr = resp.(*kmsg.ProduceResponse)
	}
	parts := split(group, pr)
	for i, s := range group {
		s.done <- subResult{resp: parts[i], err: err}
	}
	c.mu.Lock()
	q.inflight--
	c.kick(broker, q)
	c.mu.Unlock()
}

// combine is one produce request of the group's partitions.
func combine(group []*subRequest) (*kmsg.ProduceRequest, time.Duration) {
	if len(group) == 1 {
		return group[0].req, time.Duration(group[0].req.TimeoutMillis) * time.Millisecond
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks = group[0].req.Acks
	topics := map[string]int{}
	for _, s := range group {
		req.TimeoutMillis = max(req.TimeoutMillis, s.req.TimeoutMillis)
		for _, t := range s.req.Topics {
			i, ok := topics[t.Topic]
			if !ok {
				rt := kmsg.NewProduceRequestTopic()
				rt.Topic, rt.TopicID = t.Topic, t.TopicID
				req.Topics = append(req.Topics, rt)
				i = len(req.Topics) - 1
				topics[t.Topic] = i
			}
			req.Topics[i].Partitions = append(req.Topics[i].Partitions, t.Partitions...)
		}
	}
	return req, time.Duration(req.TimeoutMillis) * time.Millisecond
}

// split gives each request of the group the response's topics and
// partitions that answer its own (a response names topics by name or, from
// produce v13, by id). A partition the broker did not answer is missing
// from its part, as it would be from a response of its own.
func split(group []*subRequest, resp *kmsg.ProduceResponse) []*kmsg.ProduceResponse {
	out := make([]*kmsg.ProduceResponse, len(group))
	if resp == nil {
		return out
	}
	if len(group) == 1 {
		out[0] = resp
		return out
	}
	type idKey struct {
		id        [16]byte
		partition int32
	}
	byName := map[partKey]int{}
	byID := map[idKey]int{}
	for i, s := range group {
		for _, t := range s.req.Topics {
			for _, p := range t.Partitions {
				byName[partKey{t.Topic, p.Partition}] = i
				if t.TopicID != ([16]byte{}) {
					byID[idKey{t.TopicID, p.Partition}] = i
				}
			}
		}
		r := kmsg.NewPtrProduceResponse()
		r.Version, r.ThrottleMillis = resp.Version, resp.ThrottleMillis
		out[i] = r
	}
	for _, t := range resp.Topics {
		placed := map[int]int{} // request -> its topic entry
		for _, p := range t.Partitions {
			i, ok := byName[partKey{t.Topic, p.Partition}]
			if !ok || t.Topic == "" {
				i, ok = byID[idKey{t.TopicID, p.Partition}]
			}
			if !ok {
				continue
			}
			k, ok := placed[i]
			if !ok {
				rt := t
				rt.Partitions = nil
				out[i].Topics = append(out[i].Topics, rt)
				k = len(out[i].Topics) - 1
				placed[i] = k
			}
			out[i].Topics[k].Partitions = append(out[i].Topics[k].Partitions, p)
		}
	}
	return out
}
