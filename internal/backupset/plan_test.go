package backupset

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const dir = "t_20260101T000000Z"

func rp(n int) string { return dir + "/3.9_manifest_2026010" + string(rune('0'+n)) + "T000000Z.json" }

// chain builds loaded links: each name's base is the previous one in the
// list (nil-base for the first), every file present in sizes.
func chain(sizes map[string]int64, names ...string) map[string]ChainLink {
	links := map[string]ChainLink{}
	for i, n := range names {
		l := ChainLink{Files: []FileEntry{{Name: n + ".data", Size: 10}}}
		if i > 0 {
			l.Base = names[i-1]
		}
		links[n] = l
		sizes[n] = 1
		sizes[n+".data"] = 10
	}
	return links
}

func TestPlanRun(t *testing.T) {
	t.Parallel()
	type tc struct {
		name   string
		in     func() RunInput
		kind   string
		reason string
		chain  int
	}
	base := func(policy string, full, copies int, names ...string) RunInput {
		sizes := map[string]int64{}
		return RunInput{Policy: policy, FullEvery: full, MaxCopies: copies, Manifests: names, Sizes: sizes, Links: chain(sizes, names...)}
	}
	cases := []tc{
		{"full every time", func() RunInput { return base(PolicyFull, 0, 5, rp(1)) }, KindFull, "policy: full every time", 1},
		{"first run of an incremental task is full", func() RunInput { return base(PolicyIncremental, 0, 5) }, KindFull, "first run", 1},
		{"incremental after the newest", func() RunInput { return base(PolicyIncremental, 0, 5, rp(1), rp(2)) }, KindIncremental, "incremental after " + rp(2), 3},
		{"a missing file breaks the chain", func() RunInput {
			in := base(PolicyIncremental, 0, 5, rp(1), rp(2))
			delete(in.Sizes, rp(1)+".data")
			return in
		}, KindFull, "missing or resized", 1},
		{"a resized file breaks the chain", func() RunInput {
			in := base(PolicyIncremental, 0, 5, rp(1))
			in.Sizes[rp(1)+".data"] = 9
			return in
		}, KindFull, "missing or resized", 1},
		{"a missing base breaks the chain", func() RunInput {
			in := base(PolicyIncremental, 0, 5, rp(1), rp(2))
			delete(in.Sizes, rp(1))
			return in
		}, KindFull, "base " + rp(1) + " missing", 1},
		{"an unreadable newest recovery point", func() RunInput {
			in := base(PolicyIncremental, 0, 5, rp(1))
			in.Links[rp(1)] = ChainLink{Err: errors.New("bad json")}
			return in
		}, KindFull, "unreadable (bad json)", 1},
		{"full once every 3: third link is full", func() RunInput { return base(PolicyFullEveryN, 3, 9, rp(1), rp(2), rp(3)) }, KindFull, "once every 3", 1},
		{"full once every 3: second is incremental", func() RunInput { return base(PolicyFullEveryN, 3, 9, rp(1), rp(2)) }, KindIncremental, "incremental after", 3},
		{"max copies reached: a new chain", func() RunInput { return base(PolicyIncremental, 0, 2, rp(1), rp(2)) }, KindFull, "over max copies 2", 1},
	}
	for _, c := range cases {
		got := PlanRun(c.in())
		if got.Kind != c.kind || !strings.Contains(got.Reason, c.reason) || got.Chain != c.chain {
			t.Errorf("%s: got %+v, want %s (%q) chain %d", c.name, got, c.kind, c.reason, c.chain)
		}
	}
}

func TestPlanRetention(t *testing.T) {
	t.Parallel()
	f := func(s string) string { return dir + "/" + s }
	type tc struct {
		name                  string
		max                   int
		current               string
		manifests             []string
		bases                 map[string]string
		inUse                 []string
		extra                 []string
		kept, chain, use, del []string
		delFiles, foreign     []string
		err                   string
	}
	cases := []tc{
		{name: "keeps the newest max copies", max: 2, manifests: []string{rp(1), rp(2), rp(3)},
			kept: []string{rp(2), rp(3)}, del: []string{rp(1)}, delFiles: []string{rp(1) + ".data"}},
		{name: "keeps the bases a kept incremental needs", max: 1, manifests: []string{rp(1), rp(2), rp(3)},
			bases: map[string]string{rp(3): rp(2), rp(2): rp(1)},
			kept:  []string{rp(1), rp(2), rp(3)}, chain: []string{rp(1), rp(2)}},
		{name: "keeps what a restore reads, with its chain", max: 1, manifests: []string{rp(1), rp(2), rp(3)},
			bases: map[string]string{rp(2): rp(1)}, inUse: []string{rp(2)},
			kept: []string{rp(1), rp(2), rp(3)}, chain: []string{rp(1)}, use: []string{rp(2)}},
		{name: "the run's own recovery point is always kept", max: 1, current: rp(2), manifests: []string{rp(1), rp(2), rp(3)},
			kept: []string{rp(2)}, del: []string{rp(1), rp(3)}, delFiles: []string{rp(1) + ".data", rp(3) + ".data"}},
		{name: "leftovers and partial writes go, foreign files stay", max: 1, manifests: []string{rp(1)},
			extra:    []string{f("3.9_topicdata_20260105T000000Z/packs/00000-a001-00000.pack.kbr-partial-1"), f("notes.txt"), "other/x"},
			kept:     []string{rp(1)},
			delFiles: []string{f("3.9_topicdata_20260105T000000Z/packs/00000-a001-00000.pack.kbr-partial-1")},
			foreign:  []string{"other/x", f("notes.txt")}},
		{name: "an unreadable kept recovery point deletes nothing", max: 1, manifests: []string{rp(1), rp(2)},
			bases: map[string]string{rp(2): "missing"}, err: "unreadable"},
	}
	for _, c := range cases {
		sizes := map[string]int64{}
		links := chain(sizes, c.manifests...)
		for n := range links {
			l := links[n]
			l.Base = c.bases[n]
			links[n] = l
		}
		var files []string
		for n := range sizes {
			files = append(files, n)
		}
		files = append(files, c.extra...)
		inUse := map[string]bool{}
		for _, n := range c.inUse {
			inUse[n] = true
		}
		got, err := PlanRetention(RetentionInput{TaskDir: dir, MaxCopies: c.max, Current: c.current, Manifests: c.manifests, InUse: inUse, Files: files, Links: links})
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
		check := func(what string, got, want []string) {
			if len(got) == 0 && len(want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s %v, want %v", c.name, what, got, want)
			}
		}
		check("kept", got.Kept, c.kept)
		check("kept for chain", got.KeptForChain, c.chain)
		check("kept in use", got.KeptInUse, c.use)
		check("deleted manifests", got.Delete, c.del)
		check("deleted files", got.DeleteFiles, c.delFiles)
		check("foreign", got.Foreign, c.foreign)
	}
	if _, err := PlanRetention(RetentionInput{MaxCopies: 0}); err == nil {
		t.Error("max copies 0 accepted")
	}
}

func TestIncrementalRanges(t *testing.T) {
	t.Parallel()
	base := map[TopicPartition]BasePartition{
		{"a", 0}: {TopicID: "A", EndOffset: 100},
		{"a", 1}: {TopicID: "A", EndOffset: 50},
		{"a", 2}: {TopicID: "A", EndOffset: 80},
		{"b", 0}: {TopicID: "OLD", EndOffset: 10},
		{"c", 0}: {TopicID: "C", EndOffset: 10},
	}
	in := []Range{
		{Topic: "a", TopicID: "A", Partition: 0, Start: 20, End: 150}, // moves on
		{Topic: "a", TopicID: "A", Partition: 1, Start: 60, End: 90},  // retention passed the base's end
		{Topic: "a", TopicID: "A", Partition: 2, Start: 0, End: 70},   // log end went back
		{Topic: "b", TopicID: "NEW", Partition: 0, Start: 0, End: 5},  // recreated
		{Topic: "c", TopicID: "C", Partition: 0, Start: 0, End: 30},   // compacted
		{Topic: "d", TopicID: "D", Partition: 0, Start: 0, End: 3},    // new topic
		{Topic: "a", TopicID: "A", Partition: 3, Start: 0, End: 3},    // new partition
	}
	got := IncrementalRanges(in, base, map[string]bool{"c": true})
	want := []struct {
		incremental bool
		start       int64
		reason      string
	}{
		{true, 100, ""},
		{false, 60, "deleted by retention"},
		{false, 0, "below the previous recovery point's end"},
		{false, 0, "topic recreated"},
		{false, 0, "compacted topic"},
		{false, 0, "not in the previous recovery point"},
		{false, 0, "not in the previous recovery point"},
	}
	for i, w := range want {
		g := got[i]
		if g.Incremental != w.incremental || g.Start != w.start || !strings.Contains(g.FullReason, w.reason) || (w.reason == "" && g.FullReason != "") {
			t.Errorf("%s[%d]: got incremental %v start %d reason %q, want %v %d %q", g.Topic, g.Partition, g.Incremental, g.Start, g.FullReason, w.incremental, w.start, w.reason)
		}
	}
	if got[0].LogStart != 20 || got[0].Backup().StartOffset != 20 || got[0].Backup().From != 100 {
		t.Errorf("incremental range: log start %d, backup %+v", got[0].LogStart, got[0].Backup())
	}
}

func TestPlanUnits(t *testing.T) {
	t.Parallel()
	var rs []Range
	for p := int32(0); p < 12; p++ {
		rs = append(rs, Range{Topic: "big", Partition: p, Start: 0, End: 100, Leader: 1, Bytes: 100 << 20})
	}
	rs = append(rs, Range{Topic: "empty", Partition: 0, Start: 5, End: 5, Leader: 1})
	for p := int32(0); p < 2500; p++ {
		rs = append(rs, Range{Topic: "tiny", Partition: p, Start: 0, End: 1, Leader: 2 + p%2, Bytes: 100})
	}
	units := PlanUnits(rs, UnitOptions{Parallelism: 4, MaxBytes: 1 << 30, MaxPartitions: 1000})
	seen := map[TopicPartition]bool{}
	byLeader := map[int32]int{}
	for _, u := range units {
		if len(u.Ranges) == 0 || len(u.Ranges) > 1000 {
			t.Errorf("unit of leader %d has %d partitions", u.Leader, len(u.Ranges))
		}
		byLeader[u.Leader]++
		for _, r := range u.Ranges {
			if r.Leader != u.Leader {
				t.Errorf("%s[%d] led by %d in a unit of leader %d", r.Topic, r.Partition, r.Leader, u.Leader)
			}
			tp := TopicPartition{r.Topic, r.Partition}
			if seen[tp] {
				t.Errorf("%s[%d] in two units", r.Topic, r.Partition)
			}
			seen[tp] = true
		}
	}
	if len(seen) != 12+1+2500 || !seen[TopicPartition{"empty", 0}] {
		t.Errorf("%d partitions in units, want 2513 (the empty one too: it must be in the manifest)", len(seen))
	}
	// 1.2 GB on leader 1 over 4 slots: about 4 even units.
	if byLeader[1] < 4 {
		t.Errorf("leader 1 (1.2 GB) got %d units, want at least 4 for parallelism 4", byLeader[1])
	}
	for _, u := range units {
		if u.Leader == 1 && (u.Bytes < 200<<20 || u.Bytes > 400<<20+1) {
			t.Errorf("uneven unit of %d MB", u.Bytes>>20)
		}
	}
	// 1250 tiny partitions per leader: split by the partition bound.
	if byLeader[2] != 2 || byLeader[3] != 2 {
		t.Errorf("tiny leaders got %d and %d units, want 2 each (1000 partitions at most)", byLeader[2], byLeader[3])
	}
}
