// Package pool shares expensive connections within a worker process: one
// Kafka client per cluster and one storage session per target, reused by
// every activity, reference counted, closed when idle, and opened anew when
// what they were opened with changes (an address, a credential).
package pool

import (
	"context"
	"sync"
	"time"
)

// Pool holds one V per key. The zero value is not usable; use New.
type Pool[V any] struct {
	close func(V)
	idle  time.Duration

	mu      sync.Mutex
	entries map[string]*entry[V]
}

type entry[V any] struct {
	v     V
	refs  int
	timer *time.Timer
	gen   int
}

// New makes a pool that closes a value idle for idle.
func New[V any](idle time.Duration, close func(V)) *Pool[V] {
	return &Pool[V]{close: close, idle: idle, entries: map[string]*entry[V]{}}
}

// Get returns the value for key, opening it with open if there is none, and
// a release to call when done with it. Two Gets of one key share one value.
func (p *Pool[V]) Get(ctx context.Context, key string, open func(context.Context) (V, error)) (V, func(), error) {
	p.mu.Lock()
	if e, ok := p.entries[key]; ok {
		e.refs++
		if e.timer != nil {
			e.timer.Stop()
			e.timer = nil
		}
		p.mu.Unlock()
		return e.v, p.releaser(key, e), nil
	}
	p.mu.Unlock()
	// Open outside the lock: dialling can take seconds.
	v, err := open(ctx)
	if err != nil {
		var zero V
		return zero, nil, err
	}
	p.mu.Lock()
	if e, ok := p.entries[key]; ok {
		// Someone else opened it meanwhile: use theirs.
		e.refs++
		if e.timer != nil {
			e.timer.Stop()
			e.timer = nil
		}
		p.mu.Unlock()
		p.close(v)
		return e.v, p.releaser(key, e), nil
	}
	e := &entry[V]{v: v, refs: 1}
	p.entries[key] = e
	p.mu.Unlock()
	return v, p.releaser(key, e), nil
}

func (p *Pool[V]) releaser(key string, e *entry[V]) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			e.refs--
			if e.refs > 0 {
				return
			}
			e.gen++
			gen := e.gen
			e.timer = time.AfterFunc(p.idle, func() {
				p.mu.Lock()
				cur, ok := p.entries[key]
				if !ok || cur != e || e.refs > 0 || e.gen != gen {
					p.mu.Unlock()
					return
				}
				delete(p.entries, key)
				p.mu.Unlock()
				p.close(e.v)
			})
		})
	}
}

// Len is how many values the pool holds.
func (p *Pool[V]) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}

// Close closes every value at once, in use or not.
func (p *Pool[V]) Close() {
	p.mu.Lock()
	es := p.entries
	p.entries = map[string]*entry[V]{}
	p.mu.Unlock()
	for _, e := range es {
		if e.timer != nil {
			e.timer.Stop()
		}
		p.close(e.v)
	}
}
