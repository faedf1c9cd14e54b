package restoreplan

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/kmeta"
)

func view(format int) *backupset.View {
	m := &backupset.Manifest{Format: format, Partitions: []backupset.PartitionBackup{
		{Topic: "orders", Partition: 0, Records: 10, Unit: 1},
		{Topic: "orders", Partition: 1, Records: 20, Unit: 0},
		{Topic: "orders", Partition: 2, Records: 0, Unit: 1},
		{Topic: "audit", Partition: 0, Records: 5, Unit: 0},
		{Topic: "logs", Partition: 0, Records: 7, Unit: 2},
	}}
	return &backupset.View{Manifest: m, Name: "rp.json"}
}

func snapshot() *kmeta.Snapshot {
	three := func() []kmeta.Partition { return make([]kmeta.Partition, 3) }
	return &kmeta.Snapshot{Topics: []kmeta.Topic{
		{Name: "orders", Partitions: three(), ReplicationFactor: 3, Configs: map[string]string{"retention.ms": "86400000", "cleanup.policy": "delete"}},
		{Name: "audit", Partitions: make([]kmeta.Partition, 1), ReplicationFactor: 1, Configs: map[string]string{"message.timestamp.type": "LogAppendTime"}},
		{Name: "logs", Partitions: make([]kmeta.Partition, 1), ReplicationFactor: 1},
	}}
}

func str(s string) *string { return &s }

func TestPlanTopics(t *testing.T) {
	t.Parallel()
	base := func() Input {
		return Input{View: view(2), Snapshot: snapshot(), TargetBrokers: 1, Existing: map[string]TargetTopic{}, Bookmarks: map[string]Bookmark{}}
	}
	type tc struct {
		name  string
		edit  func(*Input)
		err   string
		check func(t *testing.T, p Plan)
	}
	byTarget := func(p Plan, name string) Topic {
		for _, t := range p.Topics {
			if t.Target == name {
				return t
			}
		}
		return Topic{}
	}
	cases := []tc{
		{name: "every topic, created relaxed, originals kept to set back", check: func(t *testing.T, p Plan) {
			o := byTarget(p, "orders")
			if len(p.Topics) != 3 || !o.Info.Created || o.Info.Retention == nil || *o.Info.Retention != "86400000" || o.Configs["retention.ms"] != "-1" {
				t.Errorf("orders: %+v", o)
			}
			if o.ReplicationFactor != 1 || o.Partitions != 3 {
				t.Errorf("orders: rf %d partitions %d, want 1 and 3", o.ReplicationFactor, o.Partitions)
			}
			a := byTarget(p, "audit")
			if !a.Info.LogAppendTime || a.Configs["message.timestamp.type"] != "CreateTime" || a.Info.Retention != nil {
				t.Errorf("audit: %+v", a)
			}
		}},
		{name: "renamed", edit: func(in *Input) { in.Topics = []string{"orders"}; in.Rename = map[string]string{"orders": "orders2"} }, check: func(t *testing.T, p Plan) {
			if len(p.Topics) != 1 || p.Topics[0].Target != "orders2" || p.Topics[0].Source != "orders" {
				t.Errorf("%+v", p.Topics)
			}
		}},
		{name: "a topic not in the recovery point", edit: func(in *Input) { in.Topics = []string{"orders", "nope"} }, err: `topics[1]: "nope" is not in recovery point rp.json`},
		{name: "a rename source not in the recovery point", edit: func(in *Input) { in.Rename = map[string]string{"nope": "x"} }, err: `rename: source topic "nope"`},
		{name: "two topics into one", edit: func(in *Input) { in.Rename = map[string]string{"orders": "logs"} }, err: "would both restore into logs"},
		{name: "another partition count", edit: func(in *Input) { in.Existing["orders"] = TargetTopic{Partitions: 6} }, err: "exists with 6 partitions"},
		{name: "a target holding records is refused", edit: func(in *Input) { in.Existing["orders"] = TargetTopic{Partitions: 3, Held: 12} }, err: "already holds 12 records"},
		{name: "allow_nonempty appends and keeps the target's own overrides", edit: func(in *Input) {
			in.AllowNonEmpty = true
			in.Existing["orders"] = TargetTopic{Partitions: 3, Held: 12, Retention: str("3600000")}
		}, check: func(t *testing.T, p Plan) {
			o := byTarget(p, "orders")
			if o.Info.Created || !o.Exists || o.Info.Retention == nil || *o.Info.Retention != "3600000" {
				t.Errorf("orders: %+v", o)
			}
		}},
		{name: "an empty existing topic is used", edit: func(in *Input) { in.Existing["logs"] = TargetTopic{Partitions: 1} }, check: func(t *testing.T, p Plan) {
			if l := byTarget(p, "logs"); !l.Exists || l.Info.Created || l.Info.Retention != nil {
				t.Errorf("logs: %+v", l)
			}
		}},
		{name: "a retry goes on with its own records and the first run's originals", edit: func(in *Input) {
			in.Existing["orders"] = TargetTopic{Partitions: 3, Held: 30, Retention: str("-1")}
			in.Bookmarks["orders"] = Bookmark{Info: TopicInfo{Created: true, Retention: str("86400000")}, Bases: map[int32]int64{0: 0, 1: 0, 2: 0}}
		}, check: func(t *testing.T, p Plan) {
			o := byTarget(p, "orders")
			if !o.Resumed || !o.Info.Created || *o.Info.Retention != "86400000" {
				t.Errorf("orders: %+v", o)
			}
		}},
		{name: "a topic an earlier attempt of this restore created, before any bookmark, is the restore's own", edit: func(in *Input) {
			// The attempt created it relaxed and then failed: its settings
			// are the relaxed ones, the originals come from the backup.
			in.Existing["orders"] = TargetTopic{Partitions: 3, Retention: str("-1"), Ours: true}
			in.Existing["audit"] = TargetTopic{Partitions: 1, Retention: str("-1"), Ours: true}
		}, check: func(t *testing.T, p Plan) {
			o := byTarget(p, "orders")
			if !o.Exists || o.Resumed || !o.Info.Created || o.Info.Retention == nil || *o.Info.Retention != "86400000" {
				t.Errorf("orders: %+v (info %+v)", o, o.Info)
			}
			if a := byTarget(p, "audit"); !a.Info.Created || !a.Info.LogAppendTime || a.Info.Retention != nil {
				t.Errorf("audit: %+v (info %+v)", a, a.Info)
			}
		}},
		{name: "a topic of our own that holds records is still refused", edit: func(in *Input) {
			in.Existing["orders"] = TargetTopic{Partitions: 3, Held: 5, Retention: str("-1"), Ours: true}
		}, err: "already holds 5 records"},
		{name: "without metadata, the layout from the data", edit: func(in *Input) { in.Snapshot = nil }, check: func(t *testing.T, p Plan) {
			if o := byTarget(p, "orders"); o.Partitions != 3 || !strings.Contains(o.Note, "no metadata") {
				t.Errorf("orders: %+v", o)
			}
		}},
	}
	for _, c := range cases {
		in := base()
		if c.edit != nil {
			c.edit(&in)
		}
		p, err := PlanTopics(in, "NonEmpty", "BadInput")
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		c.check(t, p)
	}
}

func TestBasesAndUnits(t *testing.T) {
	t.Parallel()
	top := Topic{TopicPlan: kmeta.TopicPlan{Target: "o", Partitions: 2}}
	ends := map[int32]int64{0: 5, 1: 9}
	if b := Bases(top, Bookmark{}, ends); b[0] != 5 || b[1] != 9 {
		t.Errorf("fresh bases %v", b)
	}
	top.Resumed = true
	if b := Bases(top, Bookmark{Bases: map[int32]int64{0: 1}}, ends); b[0] != 1 || b[1] != 9 {
		t.Errorf("resumed bases %v, want the bookmark for 0 and the end for 1", b)
	}
	sel := map[string]bool{"orders": true, "audit": true}
	us := Units(view(2), sel, UnitOptions{Parallelism: 2, MaxPartitions: 100})
	if len(us) != 2 || !us[0].Span || us[0].Partitions != 2 || us[1].Partitions != 2 || us[0].Records != 25 || us[1].Records != 10 {
		t.Fatalf("format 2 units %+v", us)
	}
	// Spans follow the parts: part 0's partitions, then part 1's.
	if ps := UnitPartitions(view(2), sel, us[1]); len(ps) != 2 || ps[0].Partition != 0 || ps[1].Partition != 2 || ps[0].Unit != 1 {
		t.Errorf("unit 1 partitions %+v", ps)
	}
	// A restore planned before spans names the backup's parts.
	if ps := UnitPartitions(view(2), sel, UnitRef{Part: 1, Partitions: 2}); len(ps) != 2 || ps[0].Partition != 0 || ps[1].Partition != 2 {
		t.Errorf("part 1 partitions %+v", ps)
	}
	us = Units(view(1), sel, UnitOptions{MaxPartitions: 2})
	if len(us) != 2 || us[0].To != 2 || us[1].From != 2 || us[1].To != 4 {
		t.Fatalf("format 1 units %+v", us)
	}
	var all []string
	for _, u := range us {
		for _, p := range UnitPartitions(view(1), sel, u) {
			all = append(all, p.Topic)
		}
	}
	if strings.Join(all, ",") != "orders,orders,orders,audit" {
		t.Errorf("format 1 unit partitions %v", all)
	}
}

// Restore units: every selected partition in exactly one unit, in part
// order, at least Parallelism units with even bytes, within the bounds.
func TestUnitsBalance(t *testing.T) {
	t.Parallel()
	parts := func(bytes ...int64) *backupset.View {
		m := &backupset.Manifest{Format: 2}
		for i, b := range bytes {
			// Two backup parts, interleaved in the view's order.
			m.Partitions = append(m.Partitions, backupset.PartitionBackup{Topic: "t", Partition: int32(i), Bytes: b, Records: b, Unit: i % 2})
		}
		return &backupset.View{Manifest: m}
	}
	twelve := make([]int64, 12)
	for i := range twelve {
		twelve[i] = 90
	}
	for _, tc := range []struct {
		name  string
		bytes []int64
		o     UnitOptions
		sizes []int // partitions per unit
	}{
		{"12 even partitions, parallelism 4", twelve, UnitOptions{Parallelism: 4, MaxPartitions: 1000}, []int{3, 3, 3, 3}},
		{"12 even partitions, parallelism 12", twelve, UnitOptions{Parallelism: 12, MaxPartitions: 1000}, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{"more slots than partitions", []int64{5, 5, 5}, UnitOptions{Parallelism: 8, MaxPartitions: 1000}, []int{1, 1, 1}},
		{"parallelism 1", []int64{5, 5, 5}, UnitOptions{Parallelism: 1, MaxPartitions: 1000}, []int{3}},
		{"max partitions", []int64{5, 5, 5, 5, 5}, UnitOptions{Parallelism: 1, MaxPartitions: 2}, []int{2, 2, 1}},
		{"max bytes", []int64{60, 60, 60}, UnitOptions{Parallelism: 1, MaxPartitions: 1000, MaxBytes: 100}, []int{1, 1, 1}},
		// Part order: 0, 2, 4 (part 0: 90, 10, 10), then 1, 3 (part 1: 40, 30).
		{"one large partition", []int64{90, 40, 10, 30, 10}, UnitOptions{Parallelism: 2, MaxPartitions: 1000}, []int{1, 4}},
		{"empty partitions count", []int64{0, 0, 0, 0}, UnitOptions{Parallelism: 2, MaxPartitions: 1000}, []int{2, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := parts(tc.bytes...)
			sel := map[string]bool{"t": true}
			us := Units(v, sel, tc.o)
			var sizes []int
			seen := map[int32]int{}
			prevUnit := -1
			for i, u := range us {
				sizes = append(sizes, u.Partitions)
				if u.Index != i || !u.Span || u.Part != -1 {
					t.Errorf("unit %d: %+v", i, u)
				}
				ps := UnitPartitions(v, sel, u)
				var bytes int64
				for _, p := range ps {
					seen[p.Partition]++
					bytes += p.Bytes
					if p.Unit < prevUnit {
						t.Errorf("unit %d: partition %d of part %d after part %d", i, p.Partition, p.Unit, prevUnit)
					}
					prevUnit = p.Unit
				}
				if len(ps) != u.Partitions || bytes != u.Bytes || u.Records != bytes {
					t.Errorf("unit %d: %d partitions %d bytes listed, the ref says %+v", i, len(ps), bytes, u)
				}
				if tc.o.MaxBytes > 0 && len(ps) > 1 && bytes > tc.o.MaxBytes {
					t.Errorf("unit %d: %d bytes over %d", i, bytes, tc.o.MaxBytes)
				}
			}
			if fmt.Sprint(sizes) != fmt.Sprint(tc.sizes) {
				t.Errorf("partitions per unit %v, want %v", sizes, tc.sizes)
			}
			for i := range tc.bytes {
				if seen[int32(i)] != 1 {
					t.Errorf("partition %d in %d units", i, seen[int32(i)])
				}
			}
		})
	}
}
