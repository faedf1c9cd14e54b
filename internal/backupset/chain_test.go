package backupset

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func seg(name string, first, last int64) SegmentInfo {
	return SegmentInfo{Name: name, FirstOffset: first, LastOffset: last, NextOffset: last + 1, Records: last - first + 1, Size: 10}
}

func TestFlattenChain(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	full := &Manifest{Format: 1, Kind: KindFull, Compression: CompressionZstd, ExecutedAt: at, Partitions: []PartitionBackup{
		{Topic: "a", TopicID: "A", Partition: 0, StartOffset: 0, EndOffset: 10, Segments: []SegmentInfo{seg("f0", 0, 9)}, Records: 10},
		{Topic: "b", TopicID: "B", Partition: 0, StartOffset: 0, EndOffset: 5, Segments: []SegmentInfo{seg("fb", 0, 4)}, Records: 5},
	}}
	inc1 := &Manifest{Format: 1, Kind: KindIncremental, Base: "full.json", Compression: CompressionNone, ExecutedAt: at.Add(time.Hour), Partitions: []PartitionBackup{
		{Topic: "a", TopicID: "A", Partition: 0, StartOffset: 0, EndOffset: 20, Incremental: true, From: 10, Segments: []SegmentInfo{seg("i1", 10, 19)}, Records: 10},
		{Topic: "b", TopicID: "B2", Partition: 0, StartOffset: 0, EndOffset: 3, FullReason: "recreated", Segments: []SegmentInfo{seg("ib", 0, 2)}, Records: 3},
	}}
	inc2 := &Manifest{Format: 1, Kind: KindIncremental, Base: "inc1.json", Compression: CompressionZstd, ExecutedAt: at.Add(2 * time.Hour), Partitions: []PartitionBackup{
		// Retention moved the log start to 15: f0 is dropped, i1 straddles.
		{Topic: "a", TopicID: "A", Partition: 0, StartOffset: 15, EndOffset: 25, Incremental: true, From: 20, Segments: []SegmentInfo{seg("i2", 20, 24)}, Records: 5},
		{Topic: "b", TopicID: "B2", Partition: 0, StartOffset: 0, EndOffset: 3, Incremental: true, From: 3},
	}}
	v, err := Flatten([]Loaded{{"inc2.json", inc2, nil}, {"inc1.json", inc1, nil}, {"full.json", full, nil}})
	if err != nil {
		t.Fatal(err)
	}
	a := v.Partition("a", 0)
	var names []string
	segsOf := func(p *PartitionBackup) []SegmentInfo {
		var out []SegmentInfo
		for _, src := range p.Sources {
			out = append(out, src.Segments...)
		}
		return out
	}
	for _, s := range segsOf(a) {
		names = append(names, s.Name+"/"+s.Compression)
	}
	if got := strings.Join(names, ","); got != "i1/none,i2/zstd" {
		t.Errorf("a[0] segments %s, want i1/none,i2/zstd (f0 below the log start)", got)
	}
	if a.Incremental || a.StartOffset != 15 {
		t.Errorf("a[0] view: incremental %v start %d", a.Incremental, a.StartOffset)
	}
	b := v.Partition("b", 0)
	if bs := segsOf(b); len(bs) != 1 || bs[0].Name != "ib" {
		t.Errorf("b[0] segments %+v, want only the recreated topic's ib", bs)
	}
	if a.Records != 15 || b.Records != 3 {
		t.Errorf("records a %d b %d, want 15 (i1 and i2) and 3", a.Records, b.Records)
	}
	n, err := CountFrom(segsOf(a), a.StartOffset, func(s SegmentInfo) (int64, error) {
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
	inc := &Manifest{Format: 1, Kind: KindIncremental, Base: "x.json", Partitions: []PartitionBackup{{Topic: "a", TopicID: "A", Incremental: true}}}
	if _, err := Flatten([]Loaded{{"i.json", inc, nil}}); err == nil {
		t.Error("a chain ending at an incremental was accepted")
	}
	full := &Manifest{Format: 1, Kind: KindFull, Partitions: []PartitionBackup{{Topic: "a", TopicID: "OTHER"}}}
	if _, err := Flatten([]Loaded{{"i.json", inc, nil}, {"x.json", full, nil}}); err == nil || !strings.Contains(err.Error(), "no match") {
		t.Errorf("incremental on another topic id: %v", err)
	}
	if _, err := Flatten([]Loaded{{"i.json", inc, nil}, {"y.json", full, nil}}); err == nil || !strings.Contains(err.Error(), "names base") {
		t.Errorf("chain whose base is another recovery point: %v", err)
	}
}

// A task's chain goes on across the upgrade to format 2: a format 2
// incremental on a format 1 full reads both, and packs of several parts.
func TestFlattenMixedFormats(t *testing.T) {
	full := &Manifest{Format: 1, Kind: KindFull, Compression: CompressionZstd, Partitions: []PartitionBackup{
		{Topic: "a", TopicID: "A", Partition: 0, EndOffset: 10, Segments: []SegmentInfo{seg("f0", 0, 9)}, Records: 10},
		{Topic: "a", TopicID: "A", Partition: 1, EndOffset: 4, Segments: []SegmentInfo{seg("f1", 0, 3)}, Records: 4},
	}}
	inc := &Manifest{Format: 2, Kind: KindIncremental, Base: "full.json", Compression: CompressionNone, Parts: []PartRef{{Unit: 0}, {Unit: 1}}}
	parts := []*Part{
		{Format: 2, Unit: 0, Files: []FileEntry{{Name: "p0-0"}, {Name: "p0-1"}}, Partitions: []PartitionBackup{
			{Topic: "a", TopicID: "A", Partition: 1, EndOffset: 9, Incremental: true, From: 4, Records: 5, Packs: []int{0, 1}}}},
		{Format: 2, Unit: 1, Files: []FileEntry{{Name: "p1-0"}}, Partitions: []PartitionBackup{
			{Topic: "a", TopicID: "A", Partition: 0, EndOffset: 12, Incremental: true, From: 10, Records: 2, Packs: []int{0}},
			{Topic: "new", TopicID: "N", Partition: 0, EndOffset: 1, FullReason: "not in the previous recovery point", Records: 1, Packs: []int{0}}}},
	}
	v, err := Flatten([]Loaded{{"inc.json", inc, parts}, {"full.json", full, nil}})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Partitions) != 3 || v.Partitions[0].Topic != "a" || v.Partitions[0].Partition != 0 || v.Partitions[2].Topic != "new" {
		t.Fatalf("partitions %+v", v.Partitions)
	}
	p1 := v.Partition("a", 1)
	if len(p1.Sources) != 2 || p1.Sources[0].Format != 1 || p1.Sources[0].Segments[0].Name != "f1" ||
		p1.Sources[1].Format != 2 || len(p1.Sources[1].Packs) != 2 || p1.Sources[1].Packs[1].Name != "p0-1" || p1.Records != 9 {
		t.Errorf("a[1] sources %+v records %d", p1.Sources, p1.Records)
	}
	if n := v.Partition("new", 0); len(n.Sources) != 1 || n.Sources[0].Packs[0].Name != "p1-0" {
		t.Errorf("new[0] sources %+v", n.Sources)
	}
	if v.Chain[0] != "inc.json" || v.Chain[1] != "full.json" {
		t.Errorf("chain %v", v.Chain)
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
		// The schemas file is the task's own: a prune deletes it with its recovery point.
		{"t_20260101T000000Z/3.9.1_schemas_20260102T030405Z.json", "t_20260101T000000Z", SourceSchemas, true},
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

// The schemas file is one the manifest vouches for: verify checks it, the
// manifest's index checks its size, and retention keeps it with its
// recovery point.
func TestManifestFilesListSchemas(t *testing.T) {
	m := &Manifest{Format: FormatVersion, Metadata: &FileEntry{Name: "m"}, Schemas: &FileEntry{Name: "s", Size: 7}}
	var names []string
	for _, f := range m.Files() {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != "m,s" || !slices.Contains(m.Names(), "s") {
		t.Errorf("files %v, names %v: want the schemas file listed", names, m.Names())
	}
	m.ComputeTotals()
	if m.Totals.Files != 2 || m.Totals.Bytes != 7 {
		t.Errorf("totals %+v", m.Totals)
	}
}
