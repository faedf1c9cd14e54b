package backupset

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
)

// FormatVersion is bumped when the layout changes incompatibly.
const FormatVersion = 1

// Manifest describes one recovery point. It is written after every file it
// lists, so a reader never sees a recovery point whose data is missing.
type Manifest struct {
	Format       int    `json:"format"`
	Task         string `json:"task"`
	TaskDir      string `json:"taskDir"`
	Cluster      string `json:"cluster"`
	ClusterID    string `json:"clusterId"`
	KafkaVersion string `json:"kafkaVersion"`
	Mode         string `json:"mode"` // "zookeeper" or "kraft"
	Kind         string `json:"kind"` // KindFull or KindIncremental
	// Base is the previous recovery point of an incremental one (a manifest
	// name in the same task folder): its chain ends at a full one.
	Base string `json:"base,omitempty"`
	// Policy is the task policy the run followed, for the history.
	Policy      string    `json:"policy,omitempty"`
	ExecutedAt  time.Time `json:"executedAt"`
	FinishedAt  time.Time `json:"finishedAt"`
	WorkflowID  string    `json:"workflowId,omitempty"`
	RunID       string    `json:"runId,omitempty"`
	DataSources []string  `json:"dataSources"`
	Compression string    `json:"compression"`

	Metadata   *FileEntry        `json:"metadata,omitempty"`
	Offsets    *FileEntry        `json:"offsets,omitempty"`
	Partitions []PartitionBackup `json:"partitions,omitempty"`

	Totals Totals `json:"totals"`
}

// FileEntry is a file of the recovery point, relative to the target root.
type FileEntry struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// TakenAt is when a snapshot's content was read (offsets, metadata).
	TakenAt *time.Time `json:"takenAt,omitempty"`
}

// PartitionBackup is the exported range of one partition.
type PartitionBackup struct {
	Topic     string `json:"topic"`
	TopicID   string `json:"topicId"`
	Partition int32  `json:"partition"`
	// StartOffset..EndOffset (exclusive) is the range that was exported:
	// the log start offset and the last stable offset at the cut.
	StartOffset int64         `json:"startOffset"`
	EndOffset   int64         `json:"endOffset"`
	Segments    []SegmentInfo `json:"segments"`
	Records     int64         `json:"records"`
	// Lost lists ranges deleted by retention before the export reached them.
	Lost []OffsetRange `json:"lost,omitempty"`
	// Incremental partitions hold only [From, EndOffset) in Segments; the
	// records in [StartOffset, From) are in the chain's earlier recovery
	// points (the same partition of the same topic ID).
	Incremental bool  `json:"incremental,omitempty"`
	From        int64 `json:"from,omitempty"`
	// FullReason says why a partition of an incremental run was copied whole.
	FullReason string `json:"fullReason,omitempty"`
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

// Totals sums the recovery point.
type Totals struct {
	Files        int   `json:"files"`
	Bytes        int64 `json:"bytes"`
	Records      int64 `json:"records"`
	PayloadBytes int64 `json:"payloadBytes"`
	Partitions   int   `json:"partitions"`
}

// Files lists every file the manifest vouches for.
func (m *Manifest) Files() []FileEntry {
	var out []FileEntry
	if m.Metadata != nil {
		out = append(out, *m.Metadata)
	}
	if m.Offsets != nil {
		out = append(out, *m.Offsets)
	}
	for _, p := range m.Partitions {
		for _, s := range p.Segments {
			out = append(out, FileEntry{Name: s.Name, Size: s.Size, SHA256: s.SHA256})
		}
	}
	return out
}

// ComputeTotals fills Totals from the entries.
func (m *Manifest) ComputeTotals() {
	t := Totals{Partitions: len(m.Partitions)}
	for _, f := range m.Files() {
		t.Files++
		t.Bytes += f.Size
	}
	for _, p := range m.Partitions {
		t.Records += p.Records
		for _, s := range p.Segments {
			t.PayloadBytes += s.PayloadBytes
		}
	}
	m.Totals = t
}

// Partition finds a partition's backup.
func (m *Manifest) Partition(topic string, partition int32) *PartitionBackup {
	for i := range m.Partitions {
		if m.Partitions[i].Topic == topic && m.Partitions[i].Partition == partition {
			return &m.Partitions[i]
		}
	}
	return nil
}

// Marshal encodes the manifest.
func (m *Manifest) Marshal() ([]byte, error) { return json.MarshalIndent(m, "", "  ") }

// UnmarshalManifest decodes and sanity-checks a manifest. ReadManifest
// does the same and names the file in its errors.
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

func unmarshalManifest(b []byte) (*Manifest, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("the file is empty (%d bytes): it was not written to the end", len(b))
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		var se *json.SyntaxError
		switch {
		case errors.As(err, &se) && se.Error() == "unexpected end of JSON input":
			return nil, fmt.Errorf("the JSON ends early, at byte %d: the file was cut short", len(b))
		case errors.As(err, &se):
			return nil, fmt.Errorf("not valid JSON at byte %d of %d: %v", se.Offset, len(b), err)
		}
		return nil, err
	}
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("format %d, this kbr reads %d", m.Format, FormatVersion)
	}
	for _, n := range m.Names() {
		if !cleanRelative(n) {
			return nil, fmt.Errorf("names the file %q, which is not a clean path inside the target root", n)
		}
	}
	return &m, nil
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
