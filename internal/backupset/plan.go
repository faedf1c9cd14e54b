package backupset

import (
	"fmt"
	"sort"
	"strings"
)

// Planners: the decisions of what to copy and what to delete, as pure
// functions over what the activities listed and loaded. Their table tests
// read as the rules in README.

// Task policies.
const (
	PolicyFull        = "full"
	PolicyIncremental = "incremental"
	PolicyFullEveryN  = "full_every_n"
)

// RunPlan is a run's kind, with its reason for the history.
type RunPlan struct {
	Kind   string `json:"kind"` // full | incremental
	Base   string `json:"base,omitempty"`
	Reason string `json:"reason"`
	// Chain is how many recovery points the new one's chain will hold.
	Chain int `json:"chain"`
}

// ChainLink is a recovery point as PlanRun needs it: its base and every
// file it needs (the manifest's own, its parts and their packs), or why it
// could not be read.
type ChainLink struct {
	Base  string
	Files []FileEntry
	Err   error
}

// RunInput is what PlanRun decides from.
type RunInput struct {
	Policy    string
	FullEvery int
	MaxCopies int
	// Manifests are the task folder's recovery points, oldest first.
	Manifests []string
	// Sizes holds every file of the task folder with its size.
	Sizes map[string]int64
	// Links are the recovery points of the newest one's chain, loaded.
	Links map[string]ChainLink
}

// PlanRun applies a task's policy to the recovery points in its folder:
// full every time; full first, then incremental; or a full once every n
// runs. An incremental run needs the previous recovery point's chain intact
// (every file present with its size); otherwise the run is full and says
// why. A chain never grows past max copies (it could never be pruned).
func PlanRun(in RunInput) RunPlan {
	if in.Policy == PolicyFull || in.Policy == "" {
		return RunPlan{Kind: KindFull, Reason: "policy: full every time", Chain: 1}
	}
	if len(in.Manifests) == 0 {
		return RunPlan{Kind: KindFull, Reason: "first run of the task", Chain: 1}
	}
	latest := in.Manifests[len(in.Manifests)-1]
	full := func(format string, a ...any) RunPlan {
		return RunPlan{Kind: KindFull, Reason: fmt.Sprintf(format, a...), Chain: 1}
	}
	chain := 0
	seen := map[string]bool{}
	for name := latest; name != ""; {
		if seen[name] {
			return full("previous chain loops at %s", name)
		}
		seen[name] = true
		l, ok := in.Links[name]
		if !ok || l.Err != nil {
			return full("previous recovery point unreadable (%v)", l.Err)
		}
		for _, f := range l.Files {
			if sz, ok := in.Sizes[f.Name]; !ok || sz != f.Size {
				return full("previous chain is broken: %s missing or resized", f.Name)
			}
		}
		chain++
		name = l.Base
		if _, ok := in.Sizes[name]; name != "" && !ok {
			return full("previous chain is broken: base %s missing", name)
		}
	}
	if in.Policy == PolicyFullEveryN && chain >= in.FullEvery {
		return full("policy: a full once every %d runs", in.FullEvery)
	}
	if in.MaxCopies > 0 && chain+1 > in.MaxCopies {
		return full("an incremental would make a chain of %d, over max copies %d: a new full starts a new chain", chain+1, in.MaxCopies)
	}
	return RunPlan{Kind: KindIncremental, Base: latest, Chain: chain + 1, Reason: fmt.Sprintf("incremental after %s", latest)}
}

// RetentionInput is what PlanRetention decides from.
type RetentionInput struct {
	TaskDir   string
	MaxCopies int
	// Current is the run's own recovery point, always kept.
	Current string
	// Manifests are the folder's recovery points, oldest first.
	Manifests []string
	// InUse are recovery points that running or pinned restores read.
	InUse map[string]bool
	// Files are every file of the folder (partial writes included).
	Files []string
	// Links are the kept recovery points' chains, loaded.
	Links map[string]ChainLink
}

// RetentionPlan is what a prune deletes, in order: the manifests first (a
// recovery point stops existing with its manifest), then the files no kept
// recovery point lists.
type RetentionPlan struct {
	Kept         []string
	KeptForChain []string // beyond max copies: a kept incremental needs them
	KeptInUse    []string // beyond max copies: a restore reads them
	Delete       []string // manifests, oldest first
	DeleteFiles  []string // the rest, sorted
	Foreign      []string // files kbr did not write: left alone
}

// PlanRetention keeps the newest MaxCopies recovery points of a task, every
// one a restore reads, and every one a kept incremental needs; it deletes
// the others' manifests, then every kbr file of the folder that no kept
// recovery point lists, so a prune cut short never breaks a kept one and the
// next prune removes what it left. It refuses (nothing deleted) when a kept
// recovery point does not read.
func PlanRetention(in RetentionInput) (RetentionPlan, error) {
	var p RetentionPlan
	if in.MaxCopies < 1 {
		return p, fmt.Errorf("max_copies: %d, want at least 1", in.MaxCopies)
	}
	keep := map[string]bool{}
	if in.Current != "" {
		keep[in.Current] = true
	}
	for i := len(in.Manifests) - 1; i >= 0 && len(keep) < in.MaxCopies; i-- {
		keep[in.Manifests[i]] = true
	}
	for _, n := range in.Manifests {
		if in.InUse[n] && !keep[n] {
			keep[n] = true
			p.KeptInUse = append(p.KeptInUse, n)
		}
	}
	wanted := map[string]bool{}
	queue := make([]string, 0, len(keep))
	for n := range keep {
		queue = append(queue, n)
	}
	sort.Strings(queue)
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if wanted[n] {
			continue
		}
		l, ok := in.Links[n]
		if !ok || l.Err != nil {
			return RetentionPlan{}, fmt.Errorf("kept recovery point %s unreadable, nothing deleted: %v", n, l.Err)
		}
		wanted[n] = true
		if !keep[n] {
			p.KeptForChain = append(p.KeptForChain, n)
		}
		for _, f := range l.Files {
			wanted[f.Name] = true
		}
		if l.Base != "" {
			queue = append(queue, l.Base)
		}
	}
	forChain := map[string]bool{}
	for _, n := range p.KeptForChain {
		forChain[n] = true
	}
	p.KeptForChain = nil
	for _, n := range in.Manifests {
		if wanted[n] {
			p.Kept = append(p.Kept, n)
			if forChain[n] {
				p.KeptForChain = append(p.KeptForChain, n)
			}
		} else {
			p.Delete = append(p.Delete, n)
		}
	}
	isManifest := map[string]bool{}
	for _, n := range in.Manifests {
		isManifest[n] = true
	}
	files := append([]string(nil), in.Files...)
	sort.Strings(files)
	for _, f := range files {
		if wanted[f] || isManifest[f] {
			continue
		}
		if dir, _, _, _, ok := ParseEntry(f); !ok || dir != in.TaskDir {
			p.Foreign = append(p.Foreign, f)
			continue
		}
		p.DeleteFiles = append(p.DeleteFiles, f)
	}
	return p, nil
}

// Range is one partition's range to export, [Start, End), as the cut fixed it.
type Range struct {
	Topic     string `json:"topic"`
	TopicID   string `json:"topic_id,omitempty"`
	Partition int32  `json:"partition"`
	Start     int64  `json:"start"`
	End       int64  `json:"end"`
	// Incremental ranges start at the base's end offset; LogStart is then
	// the partition's log start offset at the cut. FullReason says why a
	// partition of an incremental run is copied whole.
	Incremental bool   `json:"incremental,omitempty"`
	LogStart    int64  `json:"log_start,omitempty"`
	FullReason  string `json:"full_reason,omitempty"`
	// Leader is the broker that led the partition at the cut, Bytes its
	// size there (both for grouping into work units).
	Leader int32 `json:"leader"`
	Bytes  int64 `json:"bytes,omitempty"`
}

// Backup turns a range into its manifest entry before its data.
func (r Range) Backup() PartitionBackup {
	pb := PartitionBackup{Topic: r.Topic, TopicID: r.TopicID, Partition: r.Partition, StartOffset: r.Start, EndOffset: r.End, FullReason: r.FullReason}
	if r.Incremental {
		pb.StartOffset, pb.From, pb.Incremental = r.LogStart, r.Start, true
	}
	return pb
}

// BasePartition is a partition as the base recovery point holds it.
type BasePartition struct {
	TopicID   string
	EndOffset int64
}

// IncrementalRanges moves each range's start to the base recovery point's
// end offset where that gives exactly what a full copy would: the same
// topic ID, nothing deleted by retention in between, the log not truncated
// below it, and a topic that is not compacted (compaction may since have
// removed records the chain holds). Every other partition is copied whole
// and says why.
func IncrementalRanges(ranges []Range, base map[TopicPartition]BasePartition, compacted map[string]bool) []Range {
	out := make([]Range, len(ranges))
	for i, r := range ranges {
		bp, ok := base[TopicPartition{r.Topic, r.Partition}]
		switch {
		case !ok:
			r.FullReason = "not in the previous recovery point"
		case bp.TopicID != r.TopicID:
			r.FullReason = fmt.Sprintf("topic recreated since the previous recovery point (id %s, was %s)", r.TopicID, bp.TopicID)
		case compacted[r.Topic]:
			r.FullReason = "compacted topic: copied whole every run"
		case r.Start > bp.EndOffset:
			r.FullReason = fmt.Sprintf("offsets %d..%d were deleted by retention after the previous recovery point", bp.EndOffset, r.Start-1)
		case r.End < bp.EndOffset:
			r.FullReason = fmt.Sprintf("log end %d is below the previous recovery point's end %d (truncated)", r.End, bp.EndOffset)
		default:
			r.Incremental, r.LogStart, r.Start = true, r.Start, bp.EndOffset
		}
		out[i] = r
	}
	return out
}

// UnitOptions shape the work units of a backup.
type UnitOptions struct {
	// Parallelism is how many units run at once: at least that many units
	// are made when there are enough partitions.
	Parallelism int
	// MaxBytes and MaxPartitions bound a unit (its activity's work, its
	// heartbeat and its manifest part).
	MaxBytes      int64
	MaxPartitions int
}

// Unit is a work unit: partitions led by one broker, read by one activity
// with one multi-partition fetch in flight.
type Unit struct {
	Leader int32   `json:"leader"`
	Ranges []Range `json:"ranges"`
	Bytes  int64   `json:"bytes"`
}

// PlanUnits groups the ranges into work units: by
// leader, then by size, each within MaxBytes and MaxPartitions, the bytes of
// each leader's units as even as the partitions allow, and at least
// Parallelism units overall when the data allows it.
func PlanUnits(ranges []Range, o UnitOptions) []Unit {
	if o.MaxPartitions < 1 {
		o.MaxPartitions = 1000
	}
	if o.MaxBytes < 1 {
		o.MaxBytes = 1 << 30
	}
	o.Parallelism = max(1, o.Parallelism)
	byLeader := map[int32][]Range{}
	var leaders []int32
	var total int64
	for _, r := range ranges {
		// Empty ranges too: their partitions must be in the manifest (the
		// restore creates them and commits group offsets on them).
		if _, ok := byLeader[r.Leader]; !ok {
			leaders = append(leaders, r.Leader)
		}
		byLeader[r.Leader] = append(byLeader[r.Leader], r)
		total += max(r.Bytes, 1)
	}
	sort.Slice(leaders, func(i, j int) bool { return leaders[i] < leaders[j] })
	// Aim at units of total/parallelism bytes, so every slot gets work.
	target := min(o.MaxBytes, max(total/int64(o.Parallelism), 1))
	var units []Unit
	for _, l := range leaders {
		rs := byLeader[l]
		// Largest first into the lightest unit: balanced bytes.
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Bytes > rs[j].Bytes })
		var sum int64
		for _, r := range rs {
			sum += max(r.Bytes, 1)
		}
		n := int(max(1, (sum+target-1)/target))
		n = max(n, (len(rs)+o.MaxPartitions-1)/o.MaxPartitions)
		n = min(n, len(rs))
		us := make([]Unit, n)
		for k := range us {
			us[k].Leader = l
		}
		for _, r := range rs {
			best := -1
			for k := range us {
				if len(us[k].Ranges) >= o.MaxPartitions {
					continue
				}
				if best < 0 || us[k].Bytes < us[best].Bytes {
					best = k
				}
			}
			if best < 0 {
				us = append(us, Unit{Leader: l})
				best = len(us) - 1
			}
			us[best].Ranges = append(us[best].Ranges, r)
			us[best].Bytes += max(r.Bytes, 1)
		}
		for k := range us {
			sort.Slice(us[k].Ranges, func(i, j int) bool {
				a, b := us[k].Ranges[i], us[k].Ranges[j]
				if a.Topic != b.Topic {
					return a.Topic < b.Topic
				}
				return a.Partition < b.Partition
			})
		}
		units = append(units, us...)
	}
	return units
}

// Summarize names a few items and says how many there are in all.
func Summarize(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(items[:n], "; "), len(items)-n)
}
