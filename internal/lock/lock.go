// Package lock is the state machine of the per-cluster lock: one backup,
// restore or prune holds a cluster at a time, later ones wait in a bounded
// queue, and a task that is running or waiting cannot be queued again. The
// ClusterLockWorkflow drives it; it holds no Temporal code so tests drive it
// directly.
package lock

import (
	"fmt"
	"time"
)

// DefaultQueueLimit bounds the waiters of one cluster.
const DefaultQueueLimit = 10

// Request asks for a cluster's lock on behalf of a workflow run.
type Request struct {
	WorkflowID string    `json:"workflow_id"`
	RunID      string    `json:"run_id"`
	Task       string    `json:"task,omitempty"` // "" for runs outside a task
	Kind       string    `json:"kind"`           // backup, restore, prune
	QueueLimit int       `json:"queue_limit,omitempty"`
	At         time.Time `json:"at"`
}

func (r Request) String() string {
	s := r.Kind + " " + r.WorkflowID
	if r.Task != "" {
		s = r.Kind + " of task " + r.Task + " (" + r.WorkflowID + ")"
	}
	return s
}

// Reply is what the requester is told.
type Reply struct {
	Granted  bool   `json:"granted"`
	Refused  string `json:"refused,omitempty"` // why, when refused
	Position int    `json:"position,omitempty"`
	Holder   string `json:"holder,omitempty"`
}

// Message is a reply addressed to a run.
type Message struct {
	To    Request
	Reply Reply
}

// State is the lock of one cluster.
type State struct {
	Cluster     string    `json:"cluster"`
	Holder      *Request  `json:"holder,omitempty"`
	HolderSince time.Time `json:"holder_since,omitzero"`
	Queue       []Request `json:"queue,omitempty"`
}

// Acquire handles a request at time now.
func (s *State) Acquire(r Request, now time.Time) []Message {
	if s.Holder != nil && s.Holder.WorkflowID == r.WorkflowID {
		// A retried request of the holder: tell it again.
		return []Message{{To: r, Reply: Reply{Granted: true}}}
	}
	for i, q := range s.Queue {
		if q.WorkflowID == r.WorkflowID {
			return []Message{{To: r, Reply: Reply{Position: i + 1, Holder: s.Holder.String()}}}
		}
	}
	if r.Task != "" {
		if s.Holder != nil && s.Holder.Task == r.Task {
			return []Message{{To: r, Reply: Reply{Refused: fmt.Sprintf("task %s is already running (%s)", r.Task, s.Holder.WorkflowID)}}}
		}
		for _, q := range s.Queue {
			if q.Task == r.Task {
				return []Message{{To: r, Reply: Reply{Refused: fmt.Sprintf("task %s is already waiting to run (%s)", r.Task, q.WorkflowID)}}}
			}
		}
	}
	if s.Holder == nil {
		s.Holder, s.HolderSince = &r, now
		return []Message{{To: r, Reply: Reply{Granted: true}}}
	}
	limit := r.QueueLimit
	if limit <= 0 {
		limit = DefaultQueueLimit
	}
	if len(s.Queue) >= limit {
		return []Message{{To: r, Reply: Reply{Refused: fmt.Sprintf(
			"cluster %s is busy: %s holds it and %d more wait, the queue limit (cluster.lock_queue) is %d",
			s.Cluster, s.Holder, len(s.Queue), limit)}}}
	}
	s.Queue = append(s.Queue, r)
	return []Message{{To: r, Reply: Reply{Position: len(s.Queue), Holder: s.Holder.String()}}}
}

// Release frees the lock if workflowID holds it (or drops it from the
// queue) and grants the next waiter.
func (s *State) Release(workflowID string, now time.Time) []Message {
	if s.Holder == nil || s.Holder.WorkflowID != workflowID {
		for i, q := range s.Queue {
			if q.WorkflowID == workflowID {
				s.Queue = append(s.Queue[:i], s.Queue[i+1:]...)
				return s.positions()
			}
		}
		return nil
	}
	s.Holder = nil
	if len(s.Queue) == 0 {
		return nil
	}
	next := s.Queue[0]
	s.Queue = s.Queue[1:]
	s.Holder, s.HolderSince = &next, now
	return append([]Message{{To: next, Reply: Reply{Granted: true}}}, s.positions()...)
}

// positions tells every waiter where it stands now.
func (s *State) positions() []Message {
	var out []Message
	for i, q := range s.Queue {
		out = append(out, Message{To: q, Reply: Reply{Position: i + 1, Holder: s.Holder.String()}})
	}
	return out
}

// Idle reports whether nobody holds or waits.
func (s *State) Idle() bool { return s.Holder == nil && len(s.Queue) == 0 }
