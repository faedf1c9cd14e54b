// Package kraftlog knows a KRaft node's metadata log on disk: the files of
// its __cluster_metadata-0 directory (snapshots and log segments), which of
// them a backup copies and up to where, the ids its meta.properties files
// carry and how a restore rewrites them, and a decoder of the metadata
// records those files hold (a Kafka record batch of records whose values
// are versioned ApiMessage frames), enough to list what a snapshot holds.
// It does no I/O of its own beyond the readers and writers it is given, so
// tests drive it directly.
package kraftlog

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Dir is the metadata log's directory inside the metadata log dir.
const Dir = "__cluster_metadata-0"

// Suffixes of the files Kafka keeps in Dir.
const (
	SnapshotSuffix = ".checkpoint"
	SegmentSuffix  = ".log"
	// A snapshot being written, and one marked for deletion.
	partialSuffix = ".checkpoint.part"
	deletedSuffix = ".checkpoint.deleted"
)

// SnapshotID is a snapshot's end offset (exclusive: the snapshot holds the
// state of every record below it) and the epoch of its last record, as its
// file name says: <offset, 20 digits>-<epoch, 10 digits>.checkpoint.
type SnapshotID struct {
	EndOffset int64 `json:"end_offset"`
	Epoch     int32 `json:"epoch"`
}

// Less orders snapshots as Kafka does (OffsetAndEpoch.compareTo): by epoch,
// then by offset.
func (s SnapshotID) Less(o SnapshotID) bool {
	if s.Epoch != o.Epoch {
		return s.Epoch < o.Epoch
	}
	return s.EndOffset < o.EndOffset
}

// FileName is the snapshot's file name.
func (s SnapshotID) FileName() string {
	return fmt.Sprintf("%020d-%010d%s", s.EndOffset, s.Epoch, SnapshotSuffix)
}

func (s SnapshotID) String() string { return fmt.Sprintf("%d (epoch %d)", s.EndOffset, s.Epoch) }

// ParseSnapshotName reads a complete snapshot's file name; a partial
// (.checkpoint.part) or deleted (.checkpoint.deleted) one is not a snapshot.
func ParseSnapshotName(name string) (SnapshotID, bool) {
	base, ok := strings.CutSuffix(name, SnapshotSuffix)
	if !ok || len(base) != 20+1+10 || base[20] != '-' {
		return SnapshotID{}, false
	}
	off, err1 := strconv.ParseInt(base[:20], 10, 64)
	ep, err2 := strconv.ParseInt(base[21:], 10, 32)
	if err1 != nil || err2 != nil || off < 0 || ep < 0 {
		return SnapshotID{}, false
	}
	return SnapshotID{EndOffset: off, Epoch: int32(ep)}, true
}

// ParseSegmentName reads a log segment's file name (<base offset, 20
// digits>.log) and returns its base offset.
func ParseSegmentName(name string) (int64, bool) {
	base, ok := strings.CutSuffix(name, SegmentSuffix)
	if !ok || len(base) != 20 {
		return 0, false
	}
	off, err := strconv.ParseInt(base, 10, 64)
	if err != nil || off < 0 {
		return 0, false
	}
	return off, true
}

// SegmentName is the file name of the segment starting at base.
func SegmentName(base int64) string { return fmt.Sprintf("%020d%s", base, SegmentSuffix) }

// FileInfo is a file of Dir as listed at the start of a copy.
type FileInfo struct {
	Name string
	Size int64
}

// Kinds of the files of a node's metadata log in a recovery point.
const (
	KindSnapshot = "snapshot"
	KindSegment  = "segment"
	// KindState is any other file of Dir a safety copy keeps as it was
	// (quorum-state, leader-epoch-checkpoint, partition.metadata).
	KindState = "state"
)

// PlannedFile is one file a copy takes: all of a snapshot (immutable once
// written), or a segment up to Limit bytes, the size it had when the copy
// started (the copy then ends at the last complete batch below it).
type PlannedFile struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	Limit int64  `json:"limit"`
	// Base is a segment's base offset.
	Base int64 `json:"base,omitempty"`
}

// Plan is what a backup copies of one node's metadata log: the newest
// snapshot and every segment holding records at or after its end offset.
type Plan struct {
	Snapshot *SnapshotID   `json:"snapshot,omitempty"`
	Files    []PlannedFile `json:"files"`
}

// PlanBackup chooses the files of a backup from the listing of Dir taken at
// its start: the newest complete snapshot (by epoch, then offset, as Kafka
// orders them) and the segments from the last one starting at or below its
// end offset on, each up to its size at the start. Without a snapshot the
// log must start at offset 0: a log whose older segments are gone is
// covered only by a snapshot. Index files, partial and deleted snapshots and
// the quorum state are not part of a backup: Kafka rebuilds the indexes,
// and a restored node starts a new election from the log's last epoch.
func PlanBackup(files []FileInfo) (Plan, error) {
	var p Plan
	type seg struct {
		base int64
		f    FileInfo
	}
	var segs []seg
	for _, f := range files {
		if id, ok := ParseSnapshotName(f.Name); ok {
			if p.Snapshot == nil || p.Snapshot.Less(id) {
				id := id
				p.Snapshot = &id
			}
			continue
		}
		if base, ok := ParseSegmentName(f.Name); ok {
			segs = append(segs, seg{base, f})
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].base < segs[j].base })
	var from int64
	if p.Snapshot != nil {
		p.Files = append(p.Files, PlannedFile{Name: p.Snapshot.FileName(), Kind: KindSnapshot, Limit: sizeOf(files, p.Snapshot.FileName())})
		from = p.Snapshot.EndOffset
	}
	first := -1
	for i, s := range segs {
		if s.base <= from {
			first = i
		}
	}
	switch {
	case len(segs) == 0 && p.Snapshot == nil:
		return p, fmt.Errorf("%s holds neither a snapshot nor a log segment: is it a KRaft node's metadata log?", Dir)
	case len(segs) == 0:
		return p, nil
	case first < 0 && p.Snapshot == nil:
		return p, fmt.Errorf("%s has no snapshot and its log starts at offset %d: the records before it are nowhere", Dir, segs[0].base)
	case first < 0:
		return p, fmt.Errorf("%s: the newest snapshot ends at %d but the log starts at %d: the records between are nowhere", Dir, from, segs[0].base)
	}
	for _, s := range segs[first:] {
		p.Files = append(p.Files, PlannedFile{Name: s.f.Name, Kind: KindSegment, Limit: s.f.Size, Base: s.base})
	}
	return p, nil
}

func sizeOf(files []FileInfo, name string) int64 {
	for _, f := range files {
		if f.Name == name {
			return f.Size
		}
	}
	return -1
}

// SafetyFiles chooses the files a safety copy keeps of Dir before a restore
// replaces it: every snapshot, segment and state file as it is (partial and
// deleted snapshots, index files and producer snapshots left out: Kafka
// deletes the first and rebuilds the others).
func SafetyFiles(files []FileInfo) []PlannedFile {
	var out []PlannedFile
	for _, f := range files {
		switch {
		case strings.HasSuffix(f.Name, partialSuffix), strings.HasSuffix(f.Name, deletedSuffix):
		case strings.HasSuffix(f.Name, SnapshotSuffix):
			if _, ok := ParseSnapshotName(f.Name); ok {
				out = append(out, PlannedFile{Name: f.Name, Kind: KindSnapshot, Limit: f.Size})
			}
		case strings.HasSuffix(f.Name, SegmentSuffix):
			if base, ok := ParseSegmentName(f.Name); ok {
				out = append(out, PlannedFile{Name: f.Name, Kind: KindSegment, Limit: f.Size, Base: base})
			}
		case f.Name == "quorum-state", f.Name == "leader-epoch-checkpoint", f.Name == "partition.metadata":
			out = append(out, PlannedFile{Name: f.Name, Kind: KindState, Limit: f.Size})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ValidRestoreName reports whether a file of a recovery point may be put
// into Dir: a snapshot, a segment or a state file, by its plain name (never
// a path).
func ValidRestoreName(name, kind string) bool {
	switch kind {
	case KindSnapshot:
		_, ok := ParseSnapshotName(name)
		return ok
	case KindSegment:
		_, ok := ParseSegmentName(name)
		return ok
	case KindState:
		return name == "quorum-state" || name == "leader-epoch-checkpoint" || name == "partition.metadata"
	}
	return false
}
