package schemareg

import (
	"fmt"
	"sort"
	"strings"
)

// SubjectFor is the subject a restore writes for a backed-up one: a subject
// of the topic-name strategy (<topic>-key, <topic>-value) follows its
// topic's rename; any other (record-name strategies, shared schemas) stays.
func SubjectFor(subject string, rename map[string]string) string {
	for _, suffix := range []string{"-value", "-key"} {
		if topic, ok := strings.CutSuffix(subject, suffix); ok {
			if to, ok := rename[topic]; ok && to != "" {
				return to + suffix
			}
		}
	}
	return subject
}

// Step registers one backed-up version under its (maybe renamed) subject.
type Step struct {
	Subject    string // in the target registry
	From       string // the backed-up subject
	Version    int    // backed up
	ID         int32  // backed up
	Type       string
	Schema     string
	References []Reference // as backed up: subjects renamed, versions mapped when run
	Deleted    bool
}

// Setting is a compatibility level or mode to set on a subject ("" the global).
type Setting struct {
	Subject string
	Value   string
}

// Plan is a restore of an export, in the order it runs: every version after
// the versions it references and after the subject's earlier versions.
type Plan struct {
	Steps []Step
	// Compatibility and Modes are set after the schemas, global first.
	Compatibility []Setting
	Modes         []Setting
	// Subjects are the target subjects, sorted.
	Subjects []string
}

// PlanRestore orders an export's versions for registration (references
// first, a subject's versions ascending; among the ready ones, by subject
// and version, so the order is the same every time) and renames the
// topic-name-strategy subjects. Two backed-up subjects renamed onto one,
// a reference to a version the export lacks, or a reference cycle are
// refused, naming the subjects.
func PlanRestore(e *Export, rename map[string]string) (*Plan, error) {
	p := &Plan{}
	target := map[string]string{} // target subject -> backed-up one
	node := map[key]int{}
	var steps []Step
	for _, s := range e.Subjects {
		to := SubjectFor(s.Name, rename)
		if other, dup := target[to]; dup && other != s.Name {
			return nil, fmt.Errorf("subjects %s and %s would both be restored as %s: check rename", other, s.Name, to)
		}
		target[to] = s.Name
		p.Subjects = append(p.Subjects, to)
		for _, v := range s.Versions {
			node[key{s.Name, v.Version}] = len(steps)
			steps = append(steps, Step{Subject: to, From: s.Name, Version: v.Version, ID: v.ID, Type: v.Type, Schema: v.Schema,
				References: append([]Reference(nil), v.References...), Deleted: v.Deleted})
		}
		if s.Compatibility != "" {
			p.Compatibility = append(p.Compatibility, Setting{Subject: to, Value: s.Compatibility})
		}
		if s.Mode != "" {
			p.Modes = append(p.Modes, Setting{Subject: to, Value: s.Mode})
		}
	}
	sort.Strings(p.Subjects)
	if e.Compatibility != "" {
		p.Compatibility = append([]Setting{{Value: e.Compatibility}}, p.Compatibility...)
	}
	if e.Mode != "" {
		p.Modes = append([]Setting{{Value: e.Mode}}, p.Modes...)
	}
	// Kahn's algorithm over "needs" edges.
	needs := make([][]int, len(steps))
	for i, st := range steps {
		for _, r := range st.References {
			j, ok := node[key{r.Subject, r.Version}]
			if !ok {
				return nil, fmt.Errorf("%s version %d references %s version %d, which the export does not hold", st.From, st.Version, r.Subject, r.Version)
			}
			needs[i] = append(needs[i], j)
		}
		// The subject's previous version.
		if i > 0 && steps[i-1].From == st.From {
			needs[i] = append(needs[i], i-1)
		}
	}
	waiting := make([]int, len(steps))
	users := make([][]int, len(steps))
	for i, ns := range needs {
		waiting[i] = len(ns)
		for _, j := range ns {
			users[j] = append(users[j], i)
		}
	}
	less := func(a, b int) bool {
		if steps[a].From != steps[b].From {
			return steps[a].From < steps[b].From
		}
		return steps[a].Version < steps[b].Version
	}
	var ready []int
	for i := range steps {
		if waiting[i] == 0 {
			ready = append(ready, i)
		}
	}
	for len(ready) > 0 {
		sort.Slice(ready, func(a, b int) bool { return less(ready[a], ready[b]) })
		i := ready[0]
		ready = ready[1:]
		p.Steps = append(p.Steps, steps[i])
		for _, u := range users[i] {
			if waiting[u]--; waiting[u] == 0 {
				ready = append(ready, u)
			}
		}
	}
	if len(p.Steps) != len(steps) {
		var stuck []string
		for i, w := range waiting {
			if w > 0 {
				stuck = append(stuck, key{steps[i].From, steps[i].Version}.String())
			}
		}
		sort.Strings(stuck)
		return nil, fmt.Errorf("schema references form a cycle among: %s", strings.Join(stuck[:min(5, len(stuck))], ", "))
	}
	return p, nil
}
