package lock

import (
	"strings"
	"testing"
	"time"
)

func req(id, task string) Request {
	return Request{WorkflowID: id, Task: task, Kind: "backup", QueueLimit: 2}
}

// One holder at a time; waiters in order; the bound refuses the next with
// a message naming the holder and the limit; a task never runs twice.
func TestLock(t *testing.T) {
	now := time.Unix(0, 0)
	s := &State{Cluster: "c1"}
	if m := s.Acquire(req("a", "t1"), now); !m[0].Reply.Granted {
		t.Fatalf("first request not granted: %+v", m)
	}
	if m := s.Acquire(req("a2", "t1"), now); !strings.Contains(m[0].Reply.Refused, "already running") {
		t.Errorf("same task while running: %+v", m)
	}
	if m := s.Acquire(req("b", "t2"), now); m[0].Reply.Granted || m[0].Reply.Position != 1 || !strings.Contains(m[0].Reply.Holder, "t1") {
		t.Errorf("second task: %+v, want queued at 1 behind t1", m)
	}
	if m := s.Acquire(req("b2", "t2"), now); !strings.Contains(m[0].Reply.Refused, "already waiting") {
		t.Errorf("same task while waiting: %+v", m)
	}
	s.Acquire(req("c", ""), now)
	m := s.Acquire(req("d", ""), now)
	if r := m[0].Reply.Refused; !strings.Contains(r, "cluster.lock_queue") || !strings.Contains(r, "is 2") {
		t.Errorf("over the bound: %+v", m)
	}
	m = s.Release("a", now)
	if len(m) != 2 || m[0].To.WorkflowID != "b" || !m[0].Reply.Granted || m[1].To.WorkflowID != "c" || m[1].Reply.Position != 1 {
		t.Errorf("release: %+v, want b granted and c at position 1", m)
	}
	if m := s.Release("nobody", now); m != nil {
		t.Errorf("release by a stranger: %+v", m)
	}
	s.Release("c", now) // a waiter gives up
	s.Release("b", now)
	if !s.Idle() {
		t.Errorf("not idle after every release: %+v", s)
	}
}
