package backupset

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/kbr-project/kbr/internal/kmeta"
)

// FormatVersion is the format this kbr writes. Format 1 (one manifest with
// every partition's segment files) is still read; see FORMAT.md.
const FormatVersion = 2

// Manifest describes one recovery point. It is written after every file it
// lists, so a reader never sees a recovery point whose data is missing.
//
// In format 2 the manifest is an index: the partitions are in its parts,
// one file per work unit, each listed here with its size and SHA-256 (and
// each listing its pack files the same way). A manifest read from format 1
// has its partitions in Partitions and no parts.
type Manifest struct {
	Format       int    `json:"format"`
	Task         string `json:"task"`
	TaskDir      string `json:"task_dir"`
	Cluster      string `json:"cluster"`
	ClusterID    string `json:"cluster_id"`
	KafkaVersion string `json:"kafka_version"`
	Mode         string `json:"mode"` // "zookeeper" or "kraft"
	Kind         string `json:"kind"` // KindFull or KindIncremental
	// Base is the previous recovery point of an incremental one (a manifest
	// name in the same task folder): its chain ends at a full one.
	Base string `json:"base,omitempty"`
	// Policy is the task policy the run followed, for the history.
	Policy      string    `json:"policy,omitempty"`
	ExecutedAt  time.Time `json:"executed_at"`
	FinishedAt  time.Time `json:"finished_at"`
	WorkflowID  string    `json:"workflow_id,omitempty"`
	RunID       string    `json:"run_id,omitempty"`
	DataSources []string  `json:"data_sources"`
	Compression string    `json:"compression"`

	Metadata *FileEntry `json:"metadata,omitempty"`
	Offsets  *FileEntry `json:"offsets,omitempty"`
	Schemas  *FileEntry `json:"schemas,omitempty"` // the Schema Registry's export
	Parts    []PartRef  `json:"parts,omitempty"`
	// KRaftLog is each controller's metadata log (format 2; kraftlog.go).
	KRaftLog []KRaftNode `json:"kraft_log,omitempty"`

	Totals Totals `json:"totals"`
	// Lost summarises the records retention deleted before the export
	// reached them (each range is in the parts).
	Lost *LostSummary `json:"lost,omitempty"`

	// Partitions holds a format 1 manifest's partitions, or those of every
	// part once loaded (see View).
	Partitions []PartitionBackup `json:"-"`
}

// FileEntry is a file of the recovery point, relative to the target root.
type FileEntry struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// TakenAt is when a snapshot's content was read (offsets, metadata).
	TakenAt *time.Time `json:"taken_at,omitempty"`
}

// PartRef is a manifest part as the index lists it.
type PartRef struct {
	FileEntry
	Unit       int   `json:"unit"`
	Partitions int   `json:"partitions"`
	Records    int64 `json:"records"`
	Bytes      int64 `json:"bytes"` // of its pack files
	Files      int   `json:"files"`
}

// Part is one work unit's share of a recovery point: its partitions and the
// pack files that hold their batches.
type Part struct {
	Format     int               `json:"format"`
	Unit       int               `json:"unit"`
	Partitions []PartitionBackup `json:"partitions"`
	Files      []FileEntry       `json:"files"`
}

// PartitionBackup is the exported range of one partition.
type PartitionBackup struct {
	Topic     string `json:"topic"`
	TopicID   string `json:"topic_id"`
	Partition int32  `json:"partition"`
	// StartOffset..EndOffset (exclusive) is the range that was exported:
	// the log start offset and the last stable offset at the cut.
	StartOffset int64 `json:"start_offset"`
	EndOffset   int64 `json:"end_offset"`
	Records     int64 `json:"records"`
	Bytes       int64 `json:"bytes,omitempty"` // stored batch bytes
	// Lost lists ranges deleted by retention before the export reached them.
	Lost []OffsetRange `json:"lost,omitempty"`
	// Incremental partitions hold only [From, EndOffset); the records in
	// [StartOffset, From) are in the chain's earlier recovery points (the
	// same partition of the same topic ID).
	Incremental bool  `json:"incremental,omitempty"`
	From        int64 `json:"from,omitempty"`
	// FullReason says why a partition of an incremental run was copied whole.
	FullReason string `json:"full_reason,omitempty"`
	// Packs are the indexes in the part's Files of the packs holding this
	// partition's chunks (format 2).
	Packs []int `json:"packs,omitempty"`

	// Segments are a format 1 partition's segment files.
	Segments []SegmentInfo `json:"-"`
	// Sources, in a View, are the data of every recovery point of the chain
	// the partition's restore reads, oldest first.
	Sources []Source `json:"-"`
	// Unit, in a View of format 2, is the index of the part of the
	// recovery point asked for that lists the partition.
	Unit int `json:"-"`
}

// Source is where one recovery point of a chain keeps a partition's data.
type Source struct {
	Manifest string // the recovery point
	Format   int
	// Format 2: the pack files holding the partition's chunks, in order.
	Packs []FileEntry
	// Format 1: the segment files.
	Segments    []SegmentInfo
	Compression string
	// Records is how many records this recovery point holds of the
	// partition (some may lie below the view's StartOffset).
	Records int64
}

// Recovery point kinds.
const (
	KindFull        = "full"
	KindIncremental = "incremental"
)

// OffsetRange is [From, To).
type OffsetRange struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// Records is how many offsets the range spans.
func (r OffsetRange) Records() int64 { return r.To - r.From }

// LostSummary counts the lost ranges of a recovery point.
type LostSummary struct {
	Partitions int   `json:"partitions"`
	Ranges     int   `json:"ranges"`
	Offsets    int64 `json:"offsets"` // offsets spanned (records lost, at most)
	// Examples names the first few, "topic[partition] from..to".
	Examples []string `json:"examples,omitempty"`
}

// Totals sums the recovery point.
type Totals struct {
	Files        int   `json:"files"`
	Bytes        int64 `json:"bytes"`
	Records      int64 `json:"records"`
	PayloadBytes int64 `json:"payload_bytes,omitempty"` // format 1: keys+values+headers, uncompressed
	Partitions   int   `json:"partitions"`
}

// Files lists the files the manifest itself vouches for: metadata, offsets,
// schemas, its parts and the controllers' metadata logs (format 2), or every
// segment file (format 1). A part lists its own packs (Part.Files).
func (m *Manifest) Files() []FileEntry {
	var out []FileEntry
	if m.Metadata != nil {
		out = append(out, *m.Metadata)
	}
	if m.Offsets != nil {
		out = append(out, *m.Offsets)
	}
	if m.Schemas != nil {
		out = append(out, *m.Schemas)
	}
	for _, p := range m.Parts {
		out = append(out, p.FileEntry)
	}
	out = append(out, kraftFiles(m.KRaftLog)...)
	if m.Format == 1 {
		for _, p := range m.Partitions {
			for _, s := range p.Segments {
				out = append(out, FileEntry{Name: s.Name, Size: s.Size, SHA256: s.SHA256})
			}
		}
	}
	return out
}

// ComputeTotals fills Totals from the parts (format 2) or the partitions
// (format 1). Format 2 files count the parts' packs too.
func (m *Manifest) ComputeTotals() {
	t := Totals{}
	for _, f := range m.Files() {
		t.Files++
		t.Bytes += f.Size
	}
	if m.Format == 1 {
		t.Partitions = len(m.Partitions)
		for _, p := range m.Partitions {
			t.Records += p.Records
			for _, s := range p.Segments {
				t.PayloadBytes += s.PayloadBytes
			}
		}
	}
	for _, p := range m.Parts {
		t.Files += p.Files
		t.Bytes += p.Bytes
		t.Records += p.Records
		t.Partitions += p.Partitions
	}
	m.Totals = t
}

// Partition finds a partition's backup among Partitions.
func (m *Manifest) Partition(topic string, partition int32) *PartitionBackup {
	for i := range m.Partitions {
		if m.Partitions[i].Topic == topic && m.Partitions[i].Partition == partition {
			return &m.Partitions[i]
		}
	}
	return nil
}

// Marshal encodes the manifest (format 2).
func (m *Manifest) Marshal() ([]byte, error) {
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("manifest: this kbr writes format %d, not %d", FormatVersion, m.Format)
	}
	return json.MarshalIndent(m, "", "  ")
}

// ErrManifest reports a manifest or part that does not read. The errors
// that match it say why themselves, without its text.
var ErrManifest = errors.New("manifest does not read")

// unreadable is an error of ErrManifest, worded by what is wrong.
type unreadable struct{ msg string }

func (e *unreadable) Error() string        { return e.msg }
func (e *unreadable) Is(target error) bool { return target == ErrManifest }

func manifestErrorf(format string, a ...any) error {
	return &unreadable{msg: fmt.Sprintf(format, a...)}
}

// UnmarshalManifest decodes and sanity-checks a manifest of format 1 or 2.
// ReadManifest does the same and names the file in its errors.
func UnmarshalManifest(b []byte) (*Manifest, error) {
	m, err := unmarshalManifest(b)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return m, nil
}

// ReadManifest decodes and sanity-checks the manifest stored under name.
// Errors name the file and say what is wrong with it: empty, not JSON
// (at which byte), a field of the wrong type, an unknown format, or a file
// name that is not a clean path inside the target root.
func ReadManifest(name string, b []byte) (*Manifest, error) {
	m, err := unmarshalManifest(b)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", name, err)
	}
	return m, nil
}

// jsonError says where JSON went wrong.
func jsonError(b []byte, err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se) && se.Error() == "unexpected end of JSON input":
		return manifestErrorf("the JSON ends early, at byte %d: the file was cut short", len(b))
	case errors.As(err, &se):
		return manifestErrorf("not valid JSON at byte %d of %d: %v", se.Offset, len(b), err)
	}
	return manifestErrorf("%v", err)
}

func unmarshalManifest(b []byte) (*Manifest, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, manifestErrorf("the file is empty (%d bytes): it was not written to the end", len(b))
	}
	var probe struct {
		Format int `json:"format"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, jsonError(b, err)
	}
	var m *Manifest
	switch probe.Format {
	case 1:
		var v1 manifestV1
		if err := json.Unmarshal(b, &v1); err != nil {
			return nil, jsonError(b, err)
		}
		m = v1.convert()
	case FormatVersion:
		m = &Manifest{}
		if err := json.Unmarshal(b, m); err != nil {
			return nil, jsonError(b, err)
		}
		for i, p := range m.Parts {
			if p.Name == "" || p.Size < 0 || p.Partitions < 0 {
				return nil, manifestErrorf("parts[%d] (%q) incomplete", i, p.Name)
			}
		}
		if err := checkKRaftLog(m.KRaftLog); err != nil {
			return nil, err
		}
	default:
		return nil, manifestErrorf("format %d, this kbr reads 1 and %d", probe.Format, FormatVersion)
	}
	for _, n := range m.Names() {
		if !cleanRelative(n) {
			return nil, manifestErrorf("names the file %q, which is not a clean path inside the target root", n)
		}
	}
	return m, nil
}

// Names lists every file name the manifest refers to: the files it lists
// and the base of an incremental one.
func (m *Manifest) Names() []string {
	var out []string
	for _, f := range m.Files() {
		out = append(out, f.Name)
	}
	if m.Base != "" {
		out = append(out, m.Base)
	}
	return out
}

// cleanRelative tells a name that stays inside the target root: relative,
// slash-separated, with no empty, "." or ".." segment.
func cleanRelative(name string) bool {
	if name == "" || strings.HasPrefix(name, "/") || strings.ContainsAny(name, "\\\x00") {
		return false
	}
	return path.Clean(name) == name && name != "." && name != ".." && !strings.HasPrefix(name, "../")
}

// MarshalPart encodes a part.
func MarshalPart(p *Part) ([]byte, error) { return json.Marshal(p) }

// UnmarshalPart decodes a part and checks its references.
func UnmarshalPart(b []byte) (*Part, error) {
	var p Part
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, manifestErrorf("part: %v", err)
	}
	if p.Format != FormatVersion {
		return nil, manifestErrorf("part format %d, this kbr reads %d", p.Format, FormatVersion)
	}
	for i, f := range p.Files {
		if !cleanRelative(f.Name) {
			return nil, manifestErrorf("part %d: files[%d] %q is not a clean path inside the target root", p.Unit, i, f.Name)
		}
	}
	for i, pb := range p.Partitions {
		for _, k := range pb.Packs {
			if k < 0 || k >= len(p.Files) {
				return nil, manifestErrorf("part %d: partitions[%d] (%s[%d]) names pack %d of %d", p.Unit, i, pb.Topic, pb.Partition, k, len(p.Files))
			}
		}
	}
	return &p, nil
}

// manifestV1 is format 1 as written: camelCase, partitions inline.
type manifestV1 struct {
	Format       int                 `json:"format"`
	Task         string              `json:"task"`
	TaskDir      string              `json:"taskDir"`
	Cluster      string              `json:"cluster"`
	ClusterID    string              `json:"clusterId"`
	KafkaVersion string              `json:"kafkaVersion"`
	Mode         string              `json:"mode"`
	Kind         string              `json:"kind"`
	Base         string              `json:"base,omitempty"`
	Policy       string              `json:"policy,omitempty"`
	ExecutedAt   time.Time           `json:"executedAt"`
	FinishedAt   time.Time           `json:"finishedAt"`
	WorkflowID   string              `json:"workflowId,omitempty"`
	RunID        string              `json:"runId,omitempty"`
	DataSources  []string            `json:"dataSources"`
	Compression  string              `json:"compression"`
	Metadata     *fileEntryV1        `json:"metadata,omitempty"`
	Offsets      *fileEntryV1        `json:"offsets,omitempty"`
	Partitions   []partitionBackupV1 `json:"partitions,omitempty"`
}

type fileEntryV1 struct {
	Name    string     `json:"name"`
	Size    int64      `json:"size"`
	SHA256  string     `json:"sha256"`
	TakenAt *time.Time `json:"takenAt,omitempty"`
}

type partitionBackupV1 struct {
	Topic       string        `json:"topic"`
	TopicID     string        `json:"topicId"`
	Partition   int32         `json:"partition"`
	StartOffset int64         `json:"startOffset"`
	EndOffset   int64         `json:"endOffset"`
	Segments    []SegmentInfo `json:"segments"`
	Records     int64         `json:"records"`
	Lost        []OffsetRange `json:"lost,omitempty"`
	Incremental bool          `json:"incremental,omitempty"`
	From        int64         `json:"from,omitempty"`
	FullReason  string        `json:"fullReason,omitempty"`
}

func (f *fileEntryV1) convert() *FileEntry {
	if f == nil {
		return nil
	}
	return &FileEntry{Name: f.Name, Size: f.Size, SHA256: f.SHA256, TakenAt: f.TakenAt}
}

func (v *manifestV1) convert() *Manifest {
	m := &Manifest{Format: 1, Task: v.Task, TaskDir: v.TaskDir, Cluster: v.Cluster, ClusterID: v.ClusterID,
		KafkaVersion: v.KafkaVersion, Mode: v.Mode, Kind: v.Kind, Base: v.Base, Policy: v.Policy,
		ExecutedAt: v.ExecutedAt, FinishedAt: v.FinishedAt, WorkflowID: v.WorkflowID, RunID: v.RunID,
		DataSources: v.DataSources, Compression: v.Compression,
		Metadata: v.Metadata.convert(), Offsets: v.Offsets.convert()}
	for _, p := range v.Partitions {
		m.Partitions = append(m.Partitions, PartitionBackup{Topic: p.Topic, TopicID: p.TopicID, Partition: p.Partition,
			StartOffset: p.StartOffset, EndOffset: p.EndOffset, Segments: p.Segments, Records: p.Records, Lost: p.Lost,
			Incremental: p.Incremental, From: p.From, FullReason: p.FullReason})
	}
	m.ComputeTotals()
	return m
}

// OffsetsFile is the content of the consumer offsets data source.
type OffsetsFile struct {
	Cluster   string        `json:"cluster"`
	ClusterID string        `json:"cluster_id,omitempty"`
	TakenAt   time.Time     `json:"taken_at"`
	Groups    []kmeta.Group `json:"groups"`
}
