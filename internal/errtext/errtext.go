// Package errtext turns the error of a failed Temporal run into the one
// line an operator reads.
//
// A run's error reaches the client as a chain of wrappers: the workflow
// execution error, the workflow's application error, the activity error,
// the activity's application error and one application error per level of
// the Go error it wrapped (the failure converter keeps each level). Every
// level's Error() repeats all the text below it, and the wrappers add
// their own ("activity error (type: PruneTask, scheduledEventID: 30, ...)",
// "(type: StoragePermanent, retryable: false)"). Line keeps each message
// once, without that bookkeeping, outermost first, so the line reads
// "what was being done: where: why".
package errtext

import (
	"errors"
	"regexp"
	"strings"

	"go.temporal.io/sdk/temporal"
)

// Temporal's wrapper text, as its errors' Error() writes it (sdk
// internal/error.go), with the ": " that joins it to its cause.
var boilerplate = []*regexp.Regexp{
	regexp.MustCompile(`workflow execution error \(type: [^,()]*, workflowID: [^,()]*, runID: [^,()]*\)(: )?`),
	regexp.MustCompile(`child workflow execution error \(type: [^,()]*, workflowID: [^,()]*, runID: [^,()]*, initiatedEventID: -?\d+, startedEventID: -?\d+\)(: )?`),
	regexp.MustCompile(`activity error \(type: [^,()]*, scheduledEventID: -?\d+, startedEventID: -?\d+, identity: [^()]*?\)(: )?`),
	regexp.MustCompile(` \(type: [^,()]*, retryable: (true|false)\)`),
	regexp.MustCompile(` \(type: (StartToClose|ScheduleToStart|ScheduleToClose|Heartbeat|Unspecified)\)`),
}

// Clean removes Temporal's wrapper text from a message that embeds it (a
// step's detail holds a workflow-side err.Error()), drops a segment that
// repeats the one before it, and makes it one line.
func Clean(msg string) string {
	for _, re := range boilerplate {
		msg = re.ReplaceAllString(msg, "")
	}
	msg = oneLine(msg)
	segs := dropRepeatedTails(strings.Split(msg, ": "))
	out := segs[:0]
	for _, s := range segs { // "start Kafka: start Kafka: ..." once
		if len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return strings.Join(out, ": ")
}

// dropRepeatedTails removes the text an error chain's Error() repeats: a
// workflow's message embeds "A: B: C" and then, level by level, "B: C"
// and "C" again. Whenever the segments end with a tail that the segments
// before it also end with, the tail goes; the shortest such tail first.
func dropRepeatedTails(segs []string) []string {
	for {
		cut := false
		for j := len(segs) - 1; j > 0 && !cut; j-- {
			tail, head := segs[j:], segs[:j]
			if len(head) < len(tail) {
				break
			}
			if equal(head[len(head)-len(tail):], tail) {
				segs, cut = head, true
			}
		}
		if !cut {
			return segs
		}
	}
}

func equal(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

// oneLine joins the lines of a message: a list ("refused:\n  - a\n  - b")
// becomes "refused: a; b".
func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	var b strings.Builder
	for i, l := range lines {
		l = strings.TrimSpace(l)
		l = strings.TrimPrefix(l, "- ")
		if l == "" {
			continue
		}
		if i > 0 && b.Len() > 0 {
			if strings.HasSuffix(b.String(), ":") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(l)
	}
	return b.String()
}

// Line flattens err into one line: each level's own message once,
// outermost first, Temporal's wrapper text left out. A level whose text
// the line already holds adds nothing; one that holds the line so far
// replaces it. Nil gives "".
func Line(err error) string {
	var line string
	add := func(msg string) {
		msg = Clean(msg)
		switch {
		case msg == "" || strings.Contains(line, msg):
		case line == "" || strings.Contains(msg, line):
			line = msg
		default:
			line += ": " + msg
		}
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		var (
			app      *temporal.ApplicationError
			timeout  *temporal.TimeoutError
			canceled *temporal.CanceledError
			panicErr *temporal.PanicError
			server   *temporal.ServerError
		)
		switch {
		case is[*temporal.WorkflowExecutionError](e), is[*temporal.ActivityError](e), is[*temporal.ChildWorkflowExecutionError](e):
			// Wrappers: their own text is bookkeeping; the cause follows.
		case as(e, &app):
			add(app.Message())
		case as(e, &timeout):
			msg := timeout.Message()
			if msg == "" {
				msg = "timeout (" + timeout.TimeoutType().String() + ")"
			}
			add(msg)
		case as(e, &canceled):
			add("canceled")
		case as(e, &panicErr):
			add("panic: " + panicErr.Error())
		case as(e, &server):
			add(server.Message())
		case is[*temporal.TerminatedError](e):
			add("terminated")
		default:
			// A Go wrapper: its own words, without its cause's (next).
			msg := e.Error()
			if c := errors.Unwrap(e); c != nil {
				if own, ok := strings.CutSuffix(msg, c.Error()); ok {
					msg = strings.TrimSuffix(strings.TrimSpace(own), ":")
				}
			}
			add(msg)
		}
	}
	return line
}

// is tells whether e itself (not what it wraps) is of type T.
func is[T error](e error) bool {
	_, ok := e.(T)
	return ok
}

// as is errors.As on e itself, not on what it wraps: each level of the
// chain is read once, in its turn.
func as[T error](e error, target *T) bool {
	t, ok := e.(T)
	if ok {
		*target = t
	}
	return ok
}
