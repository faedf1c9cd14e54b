package kdata

import (
	"context"
	"math"
	"testing"
	"time"
)

// The read-ahead bound holds while batches wait for acknowledgement: the
// producer here acknowledges all but every tenth batch, as when a few
// partitions stall behind a slow broker. A chunk read from a pack stays in
// memory until its last batch is acknowledged, so the chunks read and not
// given back stay within the budget (plus the one chunk it lets past when
// it is empty), however many of their other batches were acknowledged.
func TestImportReadAheadBoundsChunks(t *testing.T) {
	t.Parallel()
	f := newFake(t, 2, "src", "dst")
	f.fill(t, "src", 2, 20000, 37) // batches of about 5 KB
	spec, st, b := exportAll(t, f, 2)

	var maxChunk int64
	var chunks int
	for _, ps := range st.Packs {
		ix, err := ReadPackIndex(context.Background(), b, ps.File)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range ix.Chunks {
			maxChunk = max(maxChunk, c.Raw)
			chunks++
		}
	}
	budget := 2 * maxChunk
	if chunks < 8 {
		t.Fatalf("the backup has %d chunks, want at least 8 for the bound to matter", chunks)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan outBatch)
	var states []*inPart
	for i, p := range spec.Partitions {
		ip := ImportPartition{SourceTopic: "src", TargetTopic: "dst", Partition: p.Partition, Sources: sources(st, i, b)}
		states = append(states, &inPart{spec: ip, translated: map[int64]int64{}, cut: math.MaxInt64, limit: 8 << 10})
	}
	rd := &importReader{spec: ImportSpec{BatchBytes: 8 << 10}, b: b, states: states, out: out, buffered: &share{b: NewBudget(budget)}}
	t.Logf("%d chunks up to %d bytes, budget %d", chunks, maxChunk, budget)

	done := make(chan error, 1)
	go func() { done <- rd.run(ctx) }()

	var received, kept int64
	var n int
	for stalled := false; !stalled; {
		select {
		case bt := <-out:
			n++
			received += int64(len(bt.data))
			if n%10 == 0 {
				kept += int64(len(bt.data)) // never acknowledged
				continue
			}
			bt.done(rd.buffered.release)
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			done <- nil // it read everything: the check below says whether it should have
			stalled = true
		case <-time.After(500 * time.Millisecond):
			stalled = true
		}
	}
	cancel()
	<-done
	if n < 10 {
		t.Fatalf("the reader sent %d batches before it stalled, want at least 10 (the test keeps every tenth)", n)
	}
	// Every batch received came from a chunk still held or given back;
	// those that hold one back are the kept ones, each in its own chunk at
	// worst, so the chunks read are bounded by what stays held.
	if limit := budget + maxChunk; received > limit {
		t.Errorf("read %d bytes of batches ahead (%d batches, %d kept unacknowledged) with a budget of %d and chunks up to %d: the chunks stay in memory past the bound",
			received, n, kept, budget, maxChunk)
	}
}

// An acknowledged batch leaves nothing behind in its partition's queue:
// the queue's array would otherwise keep the batch's data, a slice of a
// chunk, and so the whole chunk, after its bound was given back.
func TestPopDropsBatchData(t *testing.T) {
	t.Parallel()
	op := &outPart{}
	for i := 0; i < 3; i++ {
		op.queue = append(op.queue, outBatch{data: make([]byte, 10), records: 1, held: 10, acked: i < 2})
	}
	array := op.queue[:cap(op.queue)]
	var given int64
	if n := op.pop(func(n int64) { given += n }); n != 2 || given != 20 {
		t.Fatalf("pop: %d records, %d bytes given back; want 2 and 20", n, given)
	}
	for i := 0; i < 2; i++ {
		if array[i].data != nil || array[i].chunk != nil {
			t.Errorf("the queue's array still holds acknowledged batch %d's data", i)
		}
	}
	if len(op.queue) != 1 || op.queue[0].data == nil {
		t.Errorf("the unacknowledged batch is gone from the queue")
	}
}
