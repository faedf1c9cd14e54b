package kdata

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A release that frees room for several waiting units wakes them all.
func TestBudgetWakesEveryWaiter(t *testing.T) {
	t.Parallel()
	b := NewBudget(100)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	holder := &share{b: b}
	if err := holder.acquire(ctx, 100); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() { got <- (&share{b: b}).acquire(ctx, 40) }()
	}
	time.Sleep(50 * time.Millisecond) // both wait
	holder.release(100)
	for i := 0; i < 2; i++ {
		if err := <-got; err != nil {
			t.Fatalf("waiter %d: %v; want both granted by one release", i, err)
		}
	}
}

// A unit that ends gives back what it holds, and never more.
func TestShareDrain(t *testing.T) {
	t.Parallel()
	b := NewBudget(100)
	ctx := context.Background()
	failed := &share{b: b}
	if err := failed.acquire(ctx, 70); err != nil {
		t.Fatal(err)
	}
	failed.release(20)
	failed.drain()
	failed.release(50) // a late acknowledgement after the unit ended
	if b.used != 0 {
		t.Fatalf("budget holds %d after the unit drained, want 0", b.used)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := (&share{b: b}).acquire(short, 100); err != nil {
		t.Fatalf("the whole budget after a drain: %v", err)
	}
	if err := (&share{b: b}).acquire(short, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire beyond the budget: %v, want it to wait until the context ends", err)
	}
}
