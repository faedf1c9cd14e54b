package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// rec is a record as a consumer sees it; nil and empty differ.
type rec struct {
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []kgo.RecordHeader
	Timestamp int64
}

func (r rec) String() string {
	return fmt.Sprintf("@%d key=%q(nil=%v) value=%d bytes(nil=%v) headers=%d ts=%d", r.Offset, trunc(r.Key), r.Key == nil, len(r.Value), r.Value == nil, len(r.Headers), r.Timestamp)
}

func trunc(b []byte) []byte {
	if len(b) > 20 {
		return b[:20]
	}
	return b
}

// samePayload compares everything but the offset.
func samePayload(a, b rec) string {
	switch {
	case (a.Key == nil) != (b.Key == nil) || !bytes.Equal(a.Key, b.Key):
		return "key"
	case (a.Value == nil) != (b.Value == nil) || !bytes.Equal(a.Value, b.Value):
		return "value"
	case a.Timestamp != b.Timestamp:
		return "timestamp"
	case len(a.Headers) != len(b.Headers):
		return "header count"
	}
	for i := range a.Headers {
		x, y := a.Headers[i], b.Headers[i]
		if x.Key != y.Key || (x.Value == nil) != (y.Value == nil) || !bytes.Equal(x.Value, y.Value) {
			return fmt.Sprintf("header %d", i)
		}
	}
	return ""
}

func randID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func client(t *testing.T, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ProducerBatchMaxBytes(4 << 20)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopic(t *testing.T, adm *kadm.Client, name string, partitions int32, rf int16, configs map[string]*string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, rf, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
	waitLeaders(t, adm, name, partitions)
}

// waitLeaders waits until every partition of a new topic has a leader.
func waitLeaders(t *testing.T, adm *kadm.Client, name string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		md, err := adm.Metadata(ctx, name)
		if err == nil {
			ok := true
			td := md.Topics[name]
			if len(td.Partitions) != int(partitions) {
				ok = false
			}
			for _, p := range td.Partitions {
				if p.Leader < 0 || p.Err != nil {
					ok = false
				}
			}
			if ok {
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("topic %s has no leaders: %v", name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func sptr(s string) *string { return &s }

func produceSync(t *testing.T, cl *kgo.Client, rs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// readAll consumes a topic read_committed from the start to its last stable
// offsets and returns each partition's records in order.
func readAll(t *testing.T, brokers []string, topic string) map[int32][]rec {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, brokers))
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32][]rec{}
	want := map[int32]kgo.Offset{}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		out[o.Partition] = nil
		s, _ := starts.Lookup(topic, o.Partition)
		if o.Offset > s.Offset {
			want[o.Partition] = kgo.NewOffset().At(s.Offset)
			left[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return out
	}
	cl := client(t, brokers, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: want}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(), kgo.FetchMaxPartitionBytes(8<<20))
	idleSince := time.Now()
	for len(left) > 0 {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		if ctx.Err() != nil {
			t.Fatalf("read %s: timed out with partitions left %v", topic, left)
		}
		progressed := false
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			progressed = true
			if !r.Attrs.IsControl() {
				out[r.Partition] = append(out[r.Partition], rec{Offset: r.Offset, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp.UnixMilli()})
			}
			if r.Offset >= end-1 {
				delete(left, r.Partition)
			}
		})
		if progressed {
			idleSince = time.Now()
		} else if time.Since(idleSince) > 8*time.Second {
			// Compaction removed the tail records: nothing more below the end.
			break
		}
	}
	return out
}

// fixture is the data set of the round-trip tests.
type fixture struct {
	main, compact, txn string
	groups             []string
	// groupOffsets: group -> topic -> partition -> committed offset
	groupOffsets map[string]map[string]map[int32]int64
}

func (f *fixture) topics() []string { return []string{f.main, f.compact, f.txn} }

// makeFixture writes every kind of record a backup must carry exactly.
func makeFixture(t *testing.T, brokers []string) *fixture {
	t.Helper()
	id := randID()
	f := &fixture{main: "e2e-" + id + "-main", compact: "e2e-" + id + "-compact", txn: "e2e-" + id + "-txn",
		groupOffsets: map[string]map[string]map[int32]int64{}}
	cl := client(t, brokers)
	adm := kadm.NewClient(cl)
	ctx := context.Background()

	// main: 4 partitions; partition 3 stays empty. Old timestamps need
	// retention off, on the source as on the restored copy.
	createTopic(t, adm, f.main, 4, 3, map[string]*string{"retention.ms": sptr("-1"), "max.message.bytes": sptr("4194304")})
	old := time.Date(2015, 3, 4, 5, 6, 7, 0, time.UTC)
	var rs []*kgo.Record
	rs = append(rs,
		&kgo.Record{Topic: f.main, Partition: 0, Key: nil, Value: []byte("null key"), Timestamp: old},
		&kgo.Record{Topic: f.main, Partition: 0, Key: []byte{0, 1, 2, 0xfe, 0xff}, Value: []byte{}, Timestamp: old.Add(time.Second)},
		&kgo.Record{Topic: f.main, Partition: 0, Key: []byte("tombstone"), Value: nil, Timestamp: old.Add(2 * time.Second)},
		&kgo.Record{Topic: f.main, Partition: 0, Key: []byte{}, Value: []byte("empty key"), Timestamp: old.Add(3 * time.Second)},
		&kgo.Record{Topic: f.main, Partition: 0, Key: []byte("headers"), Value: []byte("h"), Timestamp: old.Add(4 * time.Second),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("a")}, {Key: "h", Value: []byte{0, 0xff, 0x80}}, {Key: "h2", Value: nil}, {Key: "", Value: []byte{}}, {Key: "h", Value: []byte("b")}}},
	)
	for i := 0; i < 200; i++ {
		rs = append(rs, &kgo.Record{Topic: f.main, Partition: int32(i % 3), Key: []byte("k" + strconv.Itoa(i)),
			Value: bytes.Repeat([]byte{byte(i)}, i*7), Timestamp: time.Date(2019, 1, 1, 0, 0, i, 0, time.UTC),
			Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(strconv.Itoa(i))}}})
	}
	big := make([]byte, 1<<20)
	rand.Read(big)
	rs = append(rs, &kgo.Record{Topic: f.main, Partition: 1, Key: []byte("big"), Value: big})
	for i := 0; i < 20; i++ {
		rs = append(rs, &kgo.Record{Topic: f.main, Partition: 1, Key: []byte("after-big"), Value: []byte(strconv.Itoa(i))})
	}
	produceSync(t, client(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner())), rs...)

	// compact: keys rewritten across several segments, then compacted.
	createTopic(t, adm, f.compact, 2, 3, map[string]*string{
		"cleanup.policy": sptr("compact"), "segment.ms": sptr("300"), "min.cleanable.dirty.ratio": sptr("0.01"),
		"min.compaction.lag.ms": sptr("0"), "delete.retention.ms": sptr("100"), "retention.ms": sptr("-1"),
	})
	pc := client(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produced := 0
	for round := 0; round < 6; round++ {
		var cr []*kgo.Record
		for k := 0; k < 10; k++ {
			for p := int32(0); p < 2; p++ {
				var v []byte
				if round == 3 && k == 0 {
					v = nil // a tombstone in a compacted topic
				} else {
					v = []byte(fmt.Sprintf("round %d key %d", round, k))
				}
				cr = append(cr, &kgo.Record{Topic: f.compact, Partition: p, Key: []byte(fmt.Sprintf("ck%d", k)), Value: v})
				produced++
			}
		}
		produceSync(t, pc, cr...)
		time.Sleep(400 * time.Millisecond) // let segment.ms roll the segment
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := readAll(t, brokers, f.compact)
		n := len(got[0]) + len(got[1])
		if n < produced && hasGap(got[0]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s was not compacted within 90s (%d of %d records left)", f.compact, n, produced)
		}
		produceSync(t, pc, &kgo.Record{Topic: f.compact, Partition: 0, Key: []byte("roll"), Value: []byte("x")},
			&kgo.Record{Topic: f.compact, Partition: 1, Key: []byte("roll"), Value: []byte("x")})
		produced += 2
		time.Sleep(time.Second)
	}

	// txn: a committed and an aborted transaction around plain records.
	createTopic(t, adm, f.txn, 2, 3, nil)
	tp := client(t, brokers, kgo.TransactionalID("kbr-e2e-"+id), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	txn := func(commit bool, tag string) {
		if err := tp.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var tr []*kgo.Record
		for i := 0; i < 10; i++ {
			tr = append(tr, &kgo.Record{Topic: f.txn, Partition: int32(i % 2), Key: []byte(tag), Value: []byte(strconv.Itoa(i))})
		}
		if err := tp.ProduceSync(ctx, tr...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := tp.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	produceSync(t, pc, &kgo.Record{Topic: f.txn, Partition: 0, Key: []byte("plain-before"), Value: []byte("p")})
	txn(true, "committed")
	txn(false, "aborted")
	produceSync(t, pc, &kgo.Record{Topic: f.txn, Partition: 0, Key: []byte("plain-after"), Value: []byte("p")},
		&kgo.Record{Topic: f.txn, Partition: 1, Key: []byte("plain-after"), Value: []byte("p")})

	// Consumer groups committed at several offsets, one on the empty
	// partition, one on a compacted-away offset, one inside the aborted
	// transaction.
	compacted := readAll(t, brokers, f.compact)
	txnRecs := readAll(t, brokers, f.txn)
	gMain, gCompact, gTxn := "e2e-"+id+"-g-main", "e2e-"+id+"-g-compact", "e2e-"+id+"-g-txn"
	f.groups = []string{gMain, gCompact, gTxn}
	f.commit(t, adm, gMain, f.main, map[int32]int64{0: 3, 1: 50, 2: 67, 3: 0})
	f.commit(t, adm, gCompact, f.compact, map[int32]int64{0: firstGap(compacted[0]), 1: 0})
	f.commit(t, adm, gTxn, f.txn, map[int32]int64{0: abortedOffset(t, txnRecs[0]), 1: txnRecs[1][len(txnRecs[1])-1].Offset + 1})
	f.commit(t, adm, gMain, f.compact, map[int32]int64{1: compacted[1][len(compacted[1])/2].Offset})
	return f
}

func (f *fixture) commit(t *testing.T, adm *kadm.Client, group, topic string, offs map[int32]int64) {
	t.Helper()
	o := kadm.Offsets{}
	for p, v := range offs {
		o.AddOffset(topic, p, v, -1)
	}
	resp, err := adm.CommitOffsets(context.Background(), group, o)
	if err != nil || resp.Error() != nil {
		t.Fatalf("commit %s: %v %v", group, err, resp.Error())
	}
	if f.groupOffsets[group] == nil {
		f.groupOffsets[group] = map[string]map[int32]int64{}
	}
	f.groupOffsets[group][topic] = offs
}

func hasGap(rs []rec) bool { return firstGap(rs) >= 0 }

// firstGap is the first offset between records that holds no record.
func firstGap(rs []rec) int64 {
	for i := 1; i < len(rs); i++ {
		if rs[i].Offset > rs[i-1].Offset+1 {
			return rs[i-1].Offset + 1
		}
	}
	if len(rs) > 0 && rs[0].Offset > 0 {
		return 0
	}
	return -1
}

// abortedOffset finds an offset the aborted transaction used: a hole in
// the committed view of partition 0 after the committed transaction.
func abortedOffset(t *testing.T, rs []rec) int64 {
	for i := 1; i < len(rs); i++ {
		if string(rs[i].Key) == "plain-after" && rs[i].Offset > rs[i-1].Offset+2 {
			return rs[i-1].Offset + 2 // past the commit marker, inside the aborted records
		}
	}
	t.Fatalf("no aborted range found in %v", rs)
	return 0
}
