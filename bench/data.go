package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ---------------------------------------------------------------------------
// Records: deterministic, JSON-like, ~1 KiB values, keyed, one header.

const headerKey = "trace-id"

// rec locates one generated record in the arena: key | header value | value.
// No pointers, so a million of them cost the GC nothing.
type rec struct {
	off  int64
	klen uint16
	hlen uint16
	vlen uint16
	part uint16
}

// dataset is every record of the source topic, generated in memory.
type dataset struct {
	arena      []byte
	recs       []rec
	partitions int
	payload    int64   // sum of key+value+header key+header value
	perPart    []int64 // records per partition
}

func (d *dataset) key(r rec) []byte { return d.arena[r.off : r.off+int64(r.klen)] }
func (d *dataset) hval(r rec) []byte {
	return d.arena[r.off+int64(r.klen) : r.off+int64(r.klen)+int64(r.hlen)]
}
func (d *dataset) value(r rec) []byte {
	o := r.off + int64(r.klen) + int64(r.hlen)
	return d.arena[o : o+int64(r.vlen)]
}

func (d *dataset) kgoRecord(topic string, r rec) *kgo.Record {
	return &kgo.Record{
		Topic:     topic,
		Partition: int32(r.part),
		Key:       d.key(r),
		Value:     d.value(r),
		Headers:   []kgo.RecordHeader{{Key: headerKey, Value: d.hval(r)}},
	}
}

type rng uint64

// next is splitmix64.
func (r *rng) next() uint64 {
	*r += 0x9e3779b97f4a7c15
	z := uint64(*r)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

var (
	words = strings.Fields(`the quick brown fox jumps over lazy dog order payment shipped delivered cart
		checkout account login logout session click view search filter price discount coupon refund return
		invoice customer premium basic gold silver bronze mobile desktop tablet android ios web chrome firefox
		safari berlin paris london madrid rome tokyo delhi lagos lima toronto sydney warehouse carrier tracking
		pending failed retry success timeout latency error warning info debug express standard parcel`)
	events    = []string{"page_view", "add_to_cart", "checkout", "payment", "login", "search", "refund", "shipment"}
	countries = []string{"DE", "FR", "GB", "ES", "IT", "JP", "IN", "NG", "PE", "CA", "AU", "US", "BR", "CN"}
	tiers     = []string{"basic", "silver", "gold", "premium"}
	oses      = []string{"android", "ios", "web", "windows", "macos"}
	cats      = []string{"books", "garden", "toys", "electronics", "fashion", "grocery", "sports"}
	baseTime  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
)

const hexdig = "0123456789abcdef"

func appendHex(b []byte, v uint64, n int) []byte {
	for i := 0; i < n; i++ {
		b = append(b, hexdig[(v>>(4*i))&15])
	}
	return b
}

func appendPad(b []byte, v uint64, width int) []byte {
	s := strconv.AppendUint(nil, v, 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// generate makes records until their payload reaches size bytes.
func generate(size int64, partitions int, seed uint64) *dataset {
	d := &dataset{partitions: partitions, perPart: make([]int64, partitions)}
	d.arena = offHeap(int(size + 1<<20))
	d.recs = make([]rec, 0, size/1000+16)
	for i := uint64(0); d.payload < size; i++ {
		r := rng(seed ^ (i * 0x9E3779B97F4A7C15))
		kid := r.next() % 100000
		part := int(kid % uint64(partitions))
		start := int64(len(d.arena))
		b := d.arena
		// key
		b = append(b, "user-"...)
		b = appendPad(b, kid, 6)
		klen := int64(len(b)) - start
		// header value
		b = appendHex(b, r.next(), 16)
		hlen := int64(len(b)) - start - klen
		// value
		vstart := len(b)
		target := 512 + int(r.next()%1025) // 512..1536, mean 1024
		b = append(b, `{"event_id":"`...)
		b = appendHex(b, r.next(), 16)
		b = append(b, `","ts":"`...)
		b = time.UnixMilli(baseTime+int64(i)*7).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
		b = append(b, `","user":{"id":"user-`...)
		b = appendPad(b, kid, 6)
		b = append(b, `","country":"`...)
		b = append(b, countries[kid%uint64(len(countries))]...)
		b = append(b, `","tier":"`...)
		b = append(b, tiers[kid%uint64(len(tiers))]...)
		b = append(b, `"},"event":"`...)
		x := r.next()
		b = append(b, events[x%uint64(len(events))]...)
		b = append(b, `","session":"`...)
		b = appendHex(b, r.next(), 12)
		b = append(b, `","device":{"os":"`...)
		b = append(b, oses[(x>>8)%uint64(len(oses))]...)
		b = append(b, `","app_version":"`...)
		b = strconv.AppendUint(b, 3+(x>>16)%4, 10)
		b = append(b, '.')
		b = strconv.AppendUint(b, (x>>20)%20, 10)
		b = append(b, '.')
		b = strconv.AppendUint(b, (x>>28)%10, 10)
		b = append(b, `"},"items":[`...)
		n := 1 + (x>>32)%4
		for j := uint64(0); j < n; j++ {
			y := r.next()
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"sku":"SKU-`...)
			b = appendPad(b, y%1000000, 6)
			b = append(b, `","qty":`...)
			b = strconv.AppendUint(b, 1+(y>>20)%5, 10)
			b = append(b, `,"price":`...)
			b = strconv.AppendUint(b, (y>>24)%500, 10)
			b = append(b, '.')
			b = appendPad(b, (y>>36)%100, 2)
			b = append(b, `,"category":"`...)
			b = append(b, cats[(y>>44)%uint64(len(cats))]...)
			b = append(b, `"}`...)
		}
		b = append(b, `],"note":"`...)
		noteStart := len(b)
		for len(b)-vstart < target-2 {
			b = append(b, words[r.next()%uint64(len(words))]...)
			b = append(b, ' ')
		}
		// Exactly target bytes, cutting only inside the note.
		b = b[:max(noteStart, vstart+target-2)]
		b = append(b, `"}`...)
		vlen := int64(len(b) - vstart)
		d.arena = b
		d.recs = append(d.recs, rec{off: start, klen: uint16(klen), hlen: uint16(hlen), vlen: uint16(vlen), part: uint16(part)})
		d.payload += klen + vlen + hlen + int64(len(headerKey))
		d.perPart[part]++
	}
	return d
}

// offHeap returns an empty slice with capacity n in anonymous memory
// outside the Go heap, so the records do not inflate the garbage
// collector's target (nor the heap figures) of the phases that follow.
// generate never appends past n: a record adds at most ~1.6 KiB to the
// arena, and it stops once the payload, which counts every arena byte,
// reaches size.
func offHeap(n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, 0, n)
	}
	return b[:0]
}

func recordPayload(r *kgo.Record) int64 {
	n := int64(len(r.Key) + len(r.Value))
	for _, h := range r.Headers {
		n += int64(len(h.Key) + len(h.Value))
	}
	return n
}

// ---------------------------------------------------------------------------
// Topics.

func newAdmin(seeds []string) (*kgo.Client, *kadm.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID("kbr-bench"))
	if err != nil {
		return nil, nil, err
	}
	return cl, kadm.NewClient(cl), nil
}

// topicCounts returns records per partition (end - start), or nil when the
// topic does not exist.
func topicCounts(ctx context.Context, adm *kadm.Client, topic string) ([]int64, []int64, error) {
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	d, ok := td[topic]
	if !ok || d.Err != nil {
		if ok && d.Err != nil && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return nil, nil, d.Err
		}
		return nil, nil, nil
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	n := len(d.Partitions)
	counts, startOffs := make([]int64, n), make([]int64, n)
	for p := 0; p < n; p++ {
		s, ok1 := starts.Lookup(topic, int32(p))
		e, ok2 := ends.Lookup(topic, int32(p))
		if !ok1 || !ok2 || s.Err != nil || e.Err != nil {
			return nil, nil, fmt.Errorf("offsets of %s[%d]: %v %v", topic, p, s.Err, e.Err)
		}
		counts[p], startOffs[p] = e.Offset-s.Offset, s.Offset
	}
	return counts, startOffs, nil
}

func sum(v []int64) int64 {
	var s int64
	for _, x := range v {
		s += x
	}
	return s
}

func deleteTopics(ctx context.Context, adm *kadm.Client, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	resp, err := adm.DeleteTopics(ctx, topics...)
	if err != nil {
		return err
	}
	for _, r := range resp {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("delete %s: %w", r.Topic, r.Err)
		}
	}
	// Wait until they are gone, so a name can be reused at once.
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		td, err := adm.ListTopics(ctx, topics...)
		if err == nil {
			left := 0
			for _, d := range td {
				if d.Err == nil {
					left++
				}
			}
			if left == 0 {
				return nil
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("topics %v still listed 90s after deletion", topics)
}

func createTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32, rf int16, configs map[string]*string) error {
	deadline := time.Now().Add(90 * time.Second)
	for {
		_, err := adm.CreateTopic(ctx, partitions, rf, configs, topic)
		if err == nil {
			break
		}
		// A topic being deleted under the same name: wait for it.
		if !errors.Is(err, kerr.TopicAlreadyExists) || time.Now().After(deadline) {
			return fmt.Errorf("create %s: %w", topic, err)
		}
		time.Sleep(time.Second)
	}
	// Wait until every partition has a leader.
	for time.Now().Before(deadline) {
		td, err := adm.ListTopics(ctx, topic)
		if err == nil {
			if d, ok := td[topic]; ok && d.Err == nil && int32(len(d.Partitions)) == partitions {
				ok := true
				for _, p := range d.Partitions {
					if p.Leader < 0 || p.Err != nil {
						ok = false
					}
				}
				if ok {
					return nil
				}
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	return fmt.Errorf("topic %s has no leaders 90s after creation", topic)
}

// deletePrefixed removes the bench's leftovers (an interrupted run's topics).
func deletePrefixed(ctx context.Context, adm *kadm.Client, prefixes ...string) ([]string, error) {
	td, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	var stale []string
	for _, name := range td.Names() {
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				stale = append(stale, name)
				break
			}
		}
	}
	return stale, deleteTopics(ctx, adm, stale...)
}

// maxMessageBytes mirrors activities.maxMessageBytes: the producer batch limit
// kbr's restore uses for a topic.
func maxMessageBytes(ctx context.Context, adm *kadm.Client, topic string) int32 {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err == nil {
		for _, rc := range rcs {
			for _, c := range rc.Configs {
				if c.Key == "max.message.bytes" && c.Value != nil {
					if v, err := strconv.Atoi(*c.Value); err == nil && v > 0 {
						return int32(min(v, 64<<20))
					}
				}
			}
		}
	}
	return 1 << 20
}

func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none", "":
		return kgo.NoCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("compression %q: want none, lz4, zstd, snappy or gzip", name)
}

// ---------------------------------------------------------------------------
// Produce.

// produceAll produces every record with cl (manual partitioner) and flushes.
func produceAll(ctx context.Context, cl *kgo.Client, d *dataset, topic string, recs []rec) error {
	var (
		mu       sync.Mutex
		firstErr error
	)
	cb := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	}
	for i, r := range recs {
		if i&1023 == 0 {
			mu.Lock()
			err := firstErr
			mu.Unlock()
			if err != nil {
				return err
			}
		}
		cl.Produce(ctx, d.kgoRecord(topic, r), cb)
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	return firstErr
}

// ---------------------------------------------------------------------------
// Consume.

type consumed struct {
	records, payload int64
}

// rawConsume reads [start, end) of every partition with a kgo consumer,
// read_committed, counting and discarding.
func rawConsume(ctx context.Context, seeds []string, topic string, starts, ends []int64, partMaxBytes int32, extra ...kgo.Opt) (consumed, error) {
	return rawConsumeEach(ctx, seeds, topic, starts, ends, partMaxBytes, nil, extra...)
}

// rawConsumeEach is rawConsume that hands every record in range to each
// (nil: discard).
func rawConsumeEach(ctx context.Context, seeds []string, topic string, starts, ends []int64, partMaxBytes int32, each func(*kgo.Record), extra ...kgo.Opt) (consumed, error) {
	var out consumed
	offsets := map[int32]kgo.Offset{}
	left := 0
	for p := range ends {
		if ends[p] > starts[p] {
			offsets[int32(p)] = kgo.NewOffset().At(starts[p])
			left++
		}
	}
	if left == 0 {
		return out, nil
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("kbr-bench-consume"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	}
	if partMaxBytes > 0 {
		opts = append(opts, kgo.FetchMaxPartitionBytes(partMaxBytes))
	}
	opts = append(opts, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return out, err
	}
	defer cl.Close()
	done := make([]bool, len(ends))
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return out, err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("%s[%d]: %w", t, p, err) })
		if ferr != nil {
			return out, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			p := r.Partition
			if done[p] || r.Offset >= ends[p] {
				return
			}
			out.records++
			out.payload += recordPayload(r)
			if each != nil {
				each(r)
			}
			if r.Offset >= ends[p]-1 {
				done[p] = true
				left--
			}
		})
	}
	return out, nil
}

// kcatConsume runs kcat over the whole topic to /dev/null and returns its
// CPU seconds.
func kcatConsume(ctx context.Context, bootstrap, topic string) (float64, error) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, "kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q")
	cmd.Stdout, cmd.Stderr = devnull, &stderr
	err = cmd.Run()
	cpu := 0.0
	if cmd.ProcessState != nil {
		cpu = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	}
	if err != nil {
		return cpu, fmt.Errorf("kcat: %w: %s", err, tail([]byte(stderr.String()), 800))
	}
	return cpu, nil
}

// digests are one SHA-256 per partition over its records in offset order:
// key, value, every header, and (ts) the timestamp, each length-prefixed.
type digests [][32]byte

// topicDigests consumes [starts, ends) of every partition of topic and
// digests it, with and without timestamps.
func topicDigests(ctx context.Context, seeds []string, topic string, starts, ends []int64) (withTS, noTS digests, err error) {
	hs := make([][2]hash.Hash, len(ends))
	for p := range hs {
		hs[p] = [2]hash.Hash{sha256.New(), sha256.New()}
	}
	_, err = rawConsumeEach(ctx, seeds, topic, starts, ends, 0, func(r *kgo.Record) {
		h := hs[r.Partition]
		writeRecord(h[1], r.Key, r.Value, r.Headers)
		writeRecord(h[0], r.Key, r.Value, r.Headers)
		var ts [8]byte
		binary.BigEndian.PutUint64(ts[:], uint64(r.Timestamp.UnixMilli()))
		h[0].Write(ts[:])
	})
	if err != nil {
		return nil, nil, err
	}
	withTS, noTS = make(digests, len(hs)), make(digests, len(hs))
	for p := range hs {
		copy(withTS[p][:], hs[p][0].Sum(nil))
		copy(noTS[p][:], hs[p][1].Sum(nil))
	}
	return withTS, noTS, nil
}

// dataDigests digests the generated records of each partition in the order
// produced, without timestamps: what topicDigests says of a topic holding
// them exactly.
func dataDigests(d *dataset) digests {
	hs := make([]hash.Hash, d.partitions)
	for p := range hs {
		hs[p] = sha256.New()
	}
	for _, r := range d.recs {
		writeRecord(hs[r.part], d.key(r), d.value(r), []kgo.RecordHeader{{Key: headerKey, Value: d.hval(r)}})
	}
	out := make(digests, len(hs))
	for p := range hs {
		copy(out[p][:], hs[p].Sum(nil))
	}
	return out
}

func writeRecord(h hash.Hash, key, value []byte, headers []kgo.RecordHeader) {
	var l [4]byte
	put := func(b []byte, null bool) {
		n := uint32(len(b))
		if null {
			n = 0xFFFFFFFF
		}
		binary.BigEndian.PutUint32(l[:], n)
		h.Write(l[:])
		h.Write(b)
	}
	put(key, key == nil)
	put(value, value == nil)
	binary.BigEndian.PutUint32(l[:], uint32(len(headers)))
	h.Write(l[:])
	for _, x := range headers {
		put([]byte(x.Key), false)
		put(x.Value, x.Value == nil)
	}
}
