package pool

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSharedThenClosedWhenIdle(t *testing.T) {
	t.Parallel()
	var opened, closed atomic.Int32
	p := New[int](50*time.Millisecond, func(int) { closed.Add(1) })
	open := func(context.Context) (int, error) { return int(opened.Add(1)), nil }
	ctx := context.Background()
	var wg sync.WaitGroup
	var releases []func()
	var mu sync.Mutex
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, rel, err := p.Get(ctx, "k", open)
			if err != nil || v < 1 {
				t.Errorf("get: %v %v", v, err)
			}
			mu.Lock()
			releases = append(releases, rel)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if p.Len() != 1 {
		t.Fatalf("%d values for one key", p.Len())
	}
	// Concurrent opens of one key may race; the losers are closed at once.
	if int(opened.Load())-int(closed.Load()) != 1 {
		t.Fatalf("opened %d, closed %d: want one left open", opened.Load(), closed.Load())
	}
	for _, r := range releases {
		r()
		r() // a second release is harmless
	}
	before := closed.Load()
	// Taken again before it went idle: not closed.
	_, rel, _ := p.Get(ctx, "k", open)
	time.Sleep(100 * time.Millisecond)
	if closed.Load() != before {
		t.Fatal("closed while in use")
	}
	rel()
	time.Sleep(150 * time.Millisecond)
	if closed.Load() != before+1 || p.Len() != 0 {
		t.Fatalf("idle value not closed: closed %d, len %d", closed.Load(), p.Len())
	}
	// Another key is another value.
	a, ra, _ := p.Get(ctx, "a", open)
	b, rb, _ := p.Get(ctx, "b", open)
	if a == b {
		t.Fatal("two keys share a value")
	}
	ra()
	rb()
	if _, _, err := p.Get(ctx, "c", func(context.Context) (int, error) { return 0, errors.New("no") }); err == nil {
		t.Fatal("open error swallowed")
	}
	p.Close()
}
