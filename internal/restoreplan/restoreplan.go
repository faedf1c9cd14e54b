// Package restoreplan decides, without I/O, what a data restore does: which
// topics it creates and how, what it refuses before anything is written,
// what it relaxes and sets back, and how its partitions split into work
// units. The activities list and load what it needs, call it, and execute.
package restoreplan

import (
	"fmt"
	"sort"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/kmeta"
)

// TopicInfo is what a restore changed on a target topic and sets back when
// it ends: kept with the restore's bookmarks, so a retried restore sets back
// what the first run found, not what the first run left.
type TopicInfo struct {
	// Created: the restore created the topic.
	Created bool `json:"created"`
	// Retention is the topic's retention.ms override before the restore
	// relaxed it (nil: none, the override is deleted after).
	Retention *string `json:"retention,omitempty"`
	// LogAppendTime: the topic stamps append times; it is CreateTime while
	// the restore produces (the records keep the times consumers saw on the
	// source) and LogAppendTime again after.
	LogAppendTime bool `json:"log_append_time,omitempty"`
}

// TargetTopic is a topic as it exists on the target cluster.
type TargetTopic struct {
	Partitions int32
	// Held is how many records it holds (end minus start offsets).
	Held int64
	// Retention is its retention.ms override, nil when none.
	Retention *string
	// LogAppendTime is its message.timestamp.type.
	LogAppendTime bool
	// Ours: an earlier attempt of this restore created it (and failed
	// before it bookmarked it), so its settings are the relaxed ones and
	// the originals to set back come from the backup, as for a new topic.
	Ours bool
}

// Bookmark is what an earlier run of the same restore left on the target:
// each partition's base offset and the topic's original settings.
type Bookmark struct {
	Info  TopicInfo
	Bases map[int32]int64
}

// Input is what PlanTopics decides from.
type Input struct {
	View     *backupset.View
	Snapshot *kmeta.Snapshot // the backup's metadata, nil when it has none
	// Topics are the source topics to restore (empty: every one in the
	// recovery point); Rename maps source to target names.
	Topics        []string
	Rename        map[string]string
	AllowNonEmpty bool
	// ReplicationFactor overrides the backed-up one when > 0.
	ReplicationFactor int16
	TargetBrokers     int
	Existing          map[string]TargetTopic
	// Bookmarks are an earlier run's, by target topic.
	Bookmarks map[string]Bookmark
}

// Topic is one topic to restore.
type Topic struct {
	kmeta.TopicPlan
	// Exists: the topic is on the target already (created by an earlier run
	// of this restore when Resumed).
	Exists  bool
	Resumed bool
	Info    TopicInfo
}

// Plan is the topics of a restore.
type Plan struct {
	Topics   []Topic
	Warnings []string
}

// Selected is the set of source topics a restore reads.
func (p Plan) Selected() map[string]bool {
	s := map[string]bool{}
	for _, t := range p.Topics {
		s[t.Source] = true
	}
	return s
}

// Error is a refusal of a restore before anything is written; Field names
// the config field at fault, Type the error type (names.Err*).
type Error struct {
	Field, Type, Msg string
}

func (e *Error) Error() string { return e.Msg }

// PlanTopics plans the topics of a restore, refusing before any change: a
// topic or rename source not in the recovery point, a target topic with
// another partition count, or a target topic holding records (unless
// allow_nonempty, or the records are this restore's own from an earlier
// run). Retention is relaxed to -1 while old records arrive, and
// LogAppendTime topics are CreateTime meanwhile; Info says what to set back.
func PlanTopics(in Input, typeNonEmpty, typeBadInput string) (Plan, error) {
	var plan Plan
	inBackup := map[string]int32{}
	for _, p := range in.View.Partitions {
		inBackup[p.Topic] = max(inBackup[p.Topic], p.Partition+1)
	}
	topics := append([]string(nil), in.Topics...)
	if len(topics) == 0 {
		for t := range inBackup {
			topics = append(topics, t)
		}
		sort.Strings(topics)
	}
	for i, t := range topics {
		if _, ok := inBackup[t]; !ok {
			return plan, &Error{Field: fmt.Sprintf("topics[%d]", i), Type: typeBadInput, Msg: fmt.Sprintf("topics[%d]: %q is not in recovery point %s", i, t, in.View.Name)}
		}
	}
	renamed := make([]string, 0, len(in.Rename))
	for src := range in.Rename {
		renamed = append(renamed, src)
	}
	sort.Strings(renamed)
	for _, src := range renamed {
		if _, ok := inBackup[src]; !ok {
			return plan, &Error{Field: "rename", Type: typeBadInput, Msg: fmt.Sprintf("rename: source topic %q is not in recovery point %s", src, in.View.Name)}
		}
	}
	var plans []kmeta.TopicPlan
	if in.Snapshot != nil {
		plans = kmeta.PlanTopics(in.Snapshot, topics, in.Rename, in.TargetBrokers)
	} else {
		plans = make([]kmeta.TopicPlan, len(topics))
	}
	for i, t := range topics {
		if in.Snapshot != nil && plans[i].Partitions > 0 {
			continue
		}
		// Without metadata the layout comes from the data.
		p := kmeta.TopicPlan{Source: t, Target: t, Partitions: inBackup[t], ReplicationFactor: int16(min(3, max(1, in.TargetBrokers))),
			Configs: map[string]string{}, Note: "no metadata in the backup: partition count from the data, configs left to the target's defaults"}
		if dst, ok := in.Rename[t]; ok && dst != "" {
			p.Target = dst
		}
		plans[i] = p
	}
	seen := map[string]string{}
	for i := range plans {
		p := &plans[i]
		if in.ReplicationFactor > 0 {
			p.ReplicationFactor = in.ReplicationFactor
		}
		if p.Partitions < inBackup[p.Source] {
			return plan, &Error{Type: typeBadInput, Msg: fmt.Sprintf("topic %s: metadata has %d partitions, data has %d", p.Source, p.Partitions, inBackup[p.Source])}
		}
		if other, dup := seen[p.Target]; dup {
			return plan, &Error{Field: "rename", Type: typeBadInput, Msg: fmt.Sprintf("rename: %s and %s would both restore into %s", other, p.Source, p.Target)}
		}
		seen[p.Target] = p.Source
		t := Topic{TopicPlan: *p}
		bm, resumed := in.Bookmarks[p.Target]
		ex, exists := in.Existing[p.Target]
		t.Exists, t.Resumed = exists, resumed && exists
		if exists && ex.Partitions != p.Partitions {
			return plan, &Error{Type: typeBadInput, Msg: fmt.Sprintf("target topic %s exists with %d partitions, the backup of %s has %d", p.Target, ex.Partitions, p.Source, p.Partitions)}
		}
		switch {
		case t.Resumed:
			t.Info = bm.Info
		case exists && ex.Held > 0 && !in.AllowNonEmpty:
			return plan, &Error{Type: typeNonEmpty, Msg: fmt.Sprintf("target topic %s already holds %d records: refusing to restore into it (set allow_nonempty: true to append)", p.Target, ex.Held)}
		case exists && !ex.Ours:
			t.Info = TopicInfo{Retention: ex.Retention, LogAppendTime: ex.LogAppendTime}
		default:
			t.Info.Created = true
			if v, ok := p.Configs["retention.ms"]; ok {
				t.Info.Retention = &v
			}
			t.Info.LogAppendTime = p.Configs["message.timestamp.type"] == "LogAppendTime"
		}
		// Created relaxed: old records would be deleted by the next
		// retention check, and LogAppendTime would restamp them.
		t.Configs = cloneConfigs(p.Configs)
		t.Configs["retention.ms"] = "-1"
		if t.Info.LogAppendTime {
			t.Configs["message.timestamp.type"] = "CreateTime"
		}
		plan.Topics = append(plan.Topics, t)
		if p.Note != "" {
			plan.Warnings = append(plan.Warnings, p.Target+": "+p.Note)
		}
	}
	return plan, nil
}

func cloneConfigs(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+2)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Bases fixes each partition's base offset: the earlier run's bookmark
// where it left one, else the end offset now, before this restore writes.
func Bases(t Topic, bm Bookmark, ends map[int32]int64) map[int32]int64 {
	out := make(map[int32]int64, t.Partitions)
	for p := int32(0); p < t.Partitions; p++ {
		if b, ok := bm.Bases[p]; ok && t.Resumed {
			out[p] = b
		} else {
			out[p] = ends[p]
		}
	}
	return out
}

// UnitRef names a work unit of a restore: a span of the selected
// partitions in part order (format 2, Span), one part of the recovery point
// (format 2, as restores planned before spans), or a range of its
// partitions in order (format 1).
type UnitRef struct {
	Index      int   `json:"index"`
	Part       int   `json:"part"` // -1: a span or format 1
	Span       bool  `json:"span,omitempty"`
	From       int   `json:"from,omitempty"`
	To         int   `json:"to,omitempty"`
	Partitions int   `json:"partitions"`
	Records    int64 `json:"records"`
	Bytes      int64 `json:"bytes"`
}

// UnitOptions shape a restore's work units.
type UnitOptions struct {
	// Parallelism is how many units run at once: at least that many units
	// are made when there are enough partitions, their bytes as even as
	// the partitions allow, so that no slot idles while another works.
	Parallelism int
	// MaxPartitions and MaxBytes bound a unit.
	MaxPartitions int
	MaxBytes      int64
}

// Units splits the selected partitions of a view into work units. Format
// 2: spans of the partitions ordered by the part that holds them (a span
// reads few packs), cut so that every unit's bytes come near the total
// over the number of units: at least Parallelism units, more where
// MaxPartitions or MaxBytes ask. The backup's own units are not reused:
// they were cut for its source leaders and its parallelism. Format 1: runs
// of at most MaxPartitions.
func Units(v *backupset.View, selected map[string]bool, o UnitOptions) []UnitRef {
	o.MaxPartitions = max(1, o.MaxPartitions)
	o.Parallelism = max(1, o.Parallelism)
	if o.MaxBytes < 1 {
		o.MaxBytes = 1 << 30
	}
	var units []UnitRef
	if v.Format == 1 {
		sel := selectedPartitions(v, selected)
		for from := 0; from < len(sel); from += o.MaxPartitions {
			u := UnitRef{Index: len(units), Part: -1, From: from, To: min(len(sel), from+o.MaxPartitions)}
			for _, p := range sel[u.From:u.To] {
				u.Partitions++
				u.Records += p.Records
				u.Bytes += p.Bytes
			}
			units = append(units, u)
		}
		return units
	}
	sel := spanOrder(v, selected)
	if len(sel) == 0 {
		return nil
	}
	var total int64
	for _, p := range sel {
		total += max(p.Bytes, 1)
	}
	k := max(o.Parallelism, int((total+o.MaxBytes-1)/o.MaxBytes), (len(sel)+o.MaxPartitions-1)/o.MaxPartitions)
	k = min(k, len(sel))
	left := total
	for from := 0; from < len(sel); {
		remaining := max(1, k-len(units))
		target := (left + int64(remaining) - 1) / int64(remaining)
		u := UnitRef{Index: len(units), Part: -1, Span: true, From: from}
		var bytes int64
		to := from
		for to < len(sel) {
			// Leave at least one partition for each unit still to come.
			if to > from && (bytes >= target || to-from >= o.MaxPartitions || len(sel)-to < remaining ||
				bytes+max(sel[to].Bytes, 1) > o.MaxBytes) {
				break
			}
			// Past the target by more than it is short of it: stop here.
			if to > from && bytes+max(sel[to].Bytes, 1)-target > target-bytes {
				break
			}
			bytes += max(sel[to].Bytes, 1)
			u.Partitions++
			u.Records += sel[to].Records
			u.Bytes += sel[to].Bytes
			to++
		}
		u.To = to
		left -= bytes
		units = append(units, u)
		from = to
	}
	return units
}

func selectedPartitions(v *backupset.View, selected map[string]bool) []backupset.PartitionBackup {
	var sel []backupset.PartitionBackup
	for _, p := range v.Partitions {
		if selected[p.Topic] {
			sel = append(sel, p)
		}
	}
	return sel
}

// spanOrder is the order spans index: the selected partitions by part,
// then as the view lists them (topic, partition).
func spanOrder(v *backupset.View, selected map[string]bool) []backupset.PartitionBackup {
	sel := selectedPartitions(v, selected)
	sort.SliceStable(sel, func(i, j int) bool { return sel[i].Unit < sel[j].Unit })
	return sel
}

// UnitPartitions are the partitions of a unit, as Units split them.
func UnitPartitions(v *backupset.View, selected map[string]bool, u UnitRef) []backupset.PartitionBackup {
	if u.Span || u.Part < 0 {
		sel := selectedPartitions(v, selected)
		if u.Span {
			sel = spanOrder(v, selected)
		}
		if u.From < 0 || u.To > len(sel) || u.From > u.To {
			return nil
		}
		return sel[u.From:u.To]
	}
	var out []backupset.PartitionBackup
	for _, p := range v.Partitions {
		if selected[p.Topic] && p.Unit == u.Part {
			out = append(out, p)
		}
	}
	return out
}
