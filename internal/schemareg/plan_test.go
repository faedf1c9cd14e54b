package schemareg

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// v is a version with references ("subject/version").
func v(version int, id int32, refs ...string) Version {
	out := Version{Version: version, ID: id, Type: TypeAvro, Schema: fmt.Sprint("s", id)}
	for _, r := range refs {
		subject, n, _ := strings.Cut(r, "/")
		var ver int
		fmt.Sscan(n, &ver)
		out.References = append(out.References, Reference{Name: subject, Subject: subject, Version: ver})
	}
	return out
}

// The plan's rules as a table: a version after every version it references
// and after its subject's earlier versions; among the ready ones by backed-up
// subject then version; topic-name subjects renamed with their topics, the
// others kept; the refusals name what is wrong.
func TestPlanRestoreTable(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		subjects []Subject
		rename   map[string]string
		order    []string // target subject/version, in plan order
		err      string
	}{
		{name: "alphabetical when independent",
			subjects: []Subject{{Name: "b", Versions: []Version{v(1, 2)}}, {Name: "a", Versions: []Version{v(1, 1), v(2, 3)}}},
			order:    []string{"a/1", "a/2", "b/1"}},
		{name: "references first",
			subjects: []Subject{{Name: "a-value", Versions: []Version{v(1, 3, "z/1")}}, {Name: "z", Versions: []Version{v(1, 1)}}},
			order:    []string{"z/1", "a-value/1"}},
		{name: "diamond",
			subjects: []Subject{
				{Name: "top", Versions: []Version{v(1, 4, "l/1", "r/1")}},
				{Name: "l", Versions: []Version{v(1, 2, "base/1")}},
				{Name: "r", Versions: []Version{v(1, 3, "base/1")}},
				{Name: "base", Versions: []Version{v(1, 1)}}},
			order: []string{"base/1", "l/1", "r/1", "top/1"}},
		{name: "a later version of a referenced subject waits only for its own history",
			subjects: []Subject{
				{Name: "a", Versions: []Version{v(1, 1), v(2, 5, "c/1")}},
				{Name: "c", Versions: []Version{v(1, 2)}}},
			order: []string{"a/1", "c/1", "a/2"}},
		{name: "gaps in versions kept in order",
			subjects: []Subject{{Name: "a", Versions: []Version{v(2, 1), v(5, 2), v(9, 3)}}},
			order:    []string{"a/2", "a/5", "a/9"}},
		{name: "topic-name subjects renamed, others kept",
			subjects: []Subject{
				{Name: "orders-value", Versions: []Version{v(1, 2, "com.x.Addr/1")}},
				{Name: "orders-key", Versions: []Version{v(1, 3)}},
				{Name: "com.x.Addr", Versions: []Version{v(1, 1)}},
				{Name: "other-value", Versions: []Version{v(1, 4)}}},
			rename: map[string]string{"orders": "orders_dr"},
			order:  []string{"com.x.Addr/1", "orders_dr-key/1", "orders_dr-value/1", "other-value/1"}},
		{name: "rename onto an existing subject refused",
			subjects: []Subject{{Name: "a-key", Versions: []Version{v(1, 1)}}, {Name: "b-key", Versions: []Version{v(1, 2)}}},
			rename:   map[string]string{"a": "b"},
			err:      "subjects a-key and b-key would both be restored as b-key"},
		{name: "self reference is a cycle",
			subjects: []Subject{{Name: "a", Versions: []Version{v(1, 1, "a/1")}}},
			err:      "cycle among: a version 1"},
		{name: "reference outside the export",
			subjects: []Subject{{Name: "a", Versions: []Version{v(1, 1, "gone/3")}}},
			err:      "a version 1 references gone version 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, err := PlanRestore(&Export{Format: FormatVersion, Subjects: c.subjects}, c.rename)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want an error with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var order []string
			for _, s := range p.Steps {
				order = append(order, fmt.Sprintf("%s/%d", s.Subject, s.Version))
			}
			if !slices.Equal(order, c.order) {
				t.Errorf("order %v, want %v", order, c.order)
			}
		})
	}
}
