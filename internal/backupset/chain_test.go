package backupset

import (
	"strings"
	"testing"
	"time"
)

func seg(name string, first, last int64) SegmentInfo {
	return SegmentInfo{Name: name, FirstOffset: first, LastOffset: last, NextOffset: last + 1, Records: last - first + 1, Size: 10}
}

func TestFlattenChain(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	full := &Manifest{Kind: KindFull, Compression: CompressionZstd, ExecutedAt: at, Partitions: []PartitionBackup{
		{Topic: "a", TopicID: "A", Partition: 0, StartOffset: 0, EndOffset: 10, Segments: []SegmentInfo{seg("f0", 0, 9)}, Records: 10},
		{Topic: "b", TopicID: "B", Partition: 0, StartOffset: 0, EndOffset: 5, Segments: []SegmentInfo{seg("fb", 0, 4)}, Records: 5},
	}}
	inc1 := &Manifest{Kind: KindIncremental, Base: "full.json", Compression: CompressionNone, ExecutedAt: at.Add(time.Hour), Partitions: []PartitionBackup{
		{Topic: "a", TopicID: "A", Partition: 0, StartOffset: 0, EndOffset: 20, Incremental: true, From: 10, Segments: []SegmentInfo{seg("i1", 10, 19)}, Records: 10},
		{Topic: "b", TopicID: "B2", Partition: 0, StartOffset: 0, EndOffset: 3, FullReason: "recreated", Segments: []SegmentInfo{seg("ib", 0, 2)}, Records: 3},
	}}
	inc2 := &Manifest{Kind: KindIncremental, Base: "inc1.json", Compression: CompressionZstd, ExecutedAt: at.Add(2 * time.Hour), Partitions: []PartitionBackup{
		// Retention moved the log start to 15: f0 is dropped, i1 straddles.
		{Topic: "a", TopicID: "A", Partition: 0, StartOffset: 15, EndOffset: 25, Incremental: true, From: 20, Segments: []SegmentInfo{seg("i2", 20, 24)}, Records: 5},
		{Topic: "b", TopicID: "B2", Partition: 0, StartOffset: 0, EndOffset: 3, Incremental: true, From: 3},
	}}
	v, err := Flatten([]*Manifest{inc2, inc1, full})
	if err != nil {
		t.Fatal(err)
	}
	a := v.Partition("a", 0)
	var names []string
	for _, s := range a.Segments {
		names = append(names, s.Name+"/"+s.Compression)
	}
	if got := strings.Join(names, ","); got != "i1/none,i2/zstd" {
		t.Errorf("a[0] segments %s, want i1/none,i2/zstd (f0 below the log start)", got)
	}
	if a.Incremental || a.StartOffset != 15 {
		t.Errorf("a[0] view: incremental %v start %d", a.Incremental, a.StartOffset)
	}
	b := v.Partition("b", 0)
	if len(b.Segments) != 1 || b.Segments[0].Name != "ib" {
		t.Errorf("b[0] segments %+v, want only the recreated topic's ib", b.Segments)
	}
	files := map[string]bool{}
	for _, f := range v.Files() {
		files[f.Name] = true
	}
	if !files["i1"] || !files["i2"] || !files["ib"] || files["f0"] || files["fb"] {
		t.Errorf("view files %v", files)
	}
	n, err := CountFrom(a.Segments, a.StartOffset, func(s SegmentInfo) (int64, error) {
		if s.Name != "i1" {
			t.Errorf("counted %s, only the straddling i1 needs counting", s.Name)
		}
		return 5, nil
	})
	if err != nil || n != 10 {
		t.Errorf("CountFrom = %d, %v; want 10", n, err)
	}
}

func TestFlattenRefusesBrokenChains(t *testing.T) {
	inc := &Manifest{Kind: KindIncremental, Base: "x.json", Partitions: []PartitionBackup{{Topic: "a", TopicID: "A", Incremental: true}}}
	if _, err := Flatten([]*Manifest{inc}); err == nil {
		t.Error("a chain ending at an incremental was accepted")
	}
	full := &Manifest{Kind: KindFull, Partitions: []PartitionBackup{{Topic: "a", TopicID: "OTHER"}}}
	if _, err := Flatten([]*Manifest{inc, full}); err == nil || !strings.Contains(err.Error(), "no match") {
		t.Errorf("incremental on another topic id: %v", err)
	}
}

func TestParseEntry(t *testing.T) {
	for _, c := range []struct {
		name, dir, source string
		ok                bool
	}{
		{"t_20260101T000000Z/3.9.1_metadata_20260102T030405Z.tar.gz", "t_20260101T000000Z", SourceMetadata, true},
		{"t_20260101T000000Z/3.9.1_topicdata_20260102T030405Z/orders/0/00000000000000000000.seg.zst", "t_20260101T000000Z", SourceTopicData, true},
		{"t_20260101T000000Z/3.9.1_manifest_20260102T030405Z.json.kbr-partial-0a1b", "t_20260101T000000Z", SourceManifest, true},
		{"t_20260101T000000Z/notes.txt", "", "", false},
		{"t_20260101T000000Z/3.9.1_other_20260102T030405Z.json", "", "", false},
		{"nodir.json", "", "", false},
	} {
		dir, _, source, at, ok := ParseEntry(c.name)
		if ok != c.ok || dir != c.dir || source != c.source || (ok && at.Day() != 2) {
			t.Errorf("ParseEntry(%q) = %q %q %s %v", c.name, dir, source, at, ok)
		}
	}
}
