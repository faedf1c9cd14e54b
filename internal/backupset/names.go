// Package backupset is the on-target format of a recovery point (FORMAT.md
// is its grammar): the MRS file naming, the manifest index and its parts,
// the pack files that hold topic data as Kafka record batches, format 1's
// segment files (still read), and the pure planners that decide what a run
// copies and what retention deletes.
//
// Layout under the target path (format 2):
//
//	<task>_<task creation time>/
//	  <kafka version>_metadata_<execution time>.tar.gz
//	  <kafka version>_offsets_<execution time>.json
//	  <kafka version>_schemas_<execution time>.json       (the Schema Registry's export)
//	  <kafka version>_topicdata_<execution time>/packs/<unit>-a<attempt>-<seq>.pack
//	  <kafka version>_manifest_<execution time>.parts/<unit>-a<attempt>.json
//	  <kafka version>_manifest_<execution time>.json      (written last)
//
// A recovery point exists exactly when its manifest exists.
package backupset

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// TimeFormat is the UTC time stamp used in every name.
const TimeFormat = "20060102T150405Z"

// Data source names, as they appear in file names.
const (
	SourceMetadata  = "metadata"
	SourceTopicData = "topicdata"
	SourceOffsets   = "offsets"
	SourceManifest  = "manifest"
	// SourceKRaftLog is the controllers' metadata log (see kraftlog.go);
	// its files are named with KRaftLogName, as '_' separates a name's parts.
	SourceKRaftLog = "kraft_log"
	SourceSchemas  = "schemas" // the Schema Registry export, a .json
)

var taskNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$`)

// ValidTaskName reports whether name can head a task folder. Underscores are
// refused because they separate the name from the creation time.
func ValidTaskName(name string) error {
	if !taskNameRE.MatchString(name) {
		return fmt.Errorf("task name %q: use 1-64 letters, digits, '.' or '-', starting with a letter or digit", name)
	}
	return nil
}

// TaskDir is the folder of a task: "<task>_<creation time>".
func TaskDir(task string, created time.Time) string {
	return task + "_" + created.UTC().Format(TimeFormat)
}

// ParseTaskDir splits a task folder name.
func ParseTaskDir(dir string) (task string, created time.Time, ok bool) {
	i := strings.LastIndex(dir, "_")
	if i <= 0 {
		return "", time.Time{}, false
	}
	t, err := time.Parse(TimeFormat, dir[i+1:])
	if err != nil {
		return "", time.Time{}, false
	}
	return dir[:i], t, true
}

// Name is "<kafka version>_<data source>_<execution time>".
func Name(kafkaVersion, source string, executed time.Time) string {
	return SafeVersion(kafkaVersion) + "_" + source + "_" + executed.UTC().Format(TimeFormat)
}

// SafeVersion keeps a version string usable in a file name.
func SafeVersion(v string) string {
	if v == "" {
		return "unknown"
	}
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, v)
}

// ManifestName is the manifest file of an execution, inside its task folder.
func ManifestName(taskDir, kafkaVersion string, executed time.Time) string {
	return taskDir + "/" + Name(kafkaVersion, SourceManifest, executed) + ".json"
}

// ParseEntry recognises a file of a task folder, relative to the target
// root: "<taskdir>/<version>_<source>_<time>" followed by its extension or
// sub-path (".tar.gz", ".json", "/<topic>/<partition>/<offset>.seg", and
// the partial-write suffix of an unfinished one).
func ParseEntry(p string) (taskDir, version, source string, executed time.Time, ok bool) {
	taskDir, rest, found := strings.Cut(p, "/")
	if !found || taskDir == "" {
		return "", "", "", time.Time{}, false
	}
	if _, _, isTask := ParseTaskDir(taskDir); !isTask {
		return "", "", "", time.Time{}, false
	}
	first, _, _ := strings.Cut(rest, "/")
	parts := strings.SplitN(first, "_", 3)
	if len(parts) != 3 || len(parts[2]) < len(TimeFormat) {
		return "", "", "", time.Time{}, false
	}
	switch parts[1] {
	case SourceMetadata, SourceOffsets, SourceTopicData, SourceManifest, KRaftLogName, SourceSchemas:
	default:
		return "", "", "", time.Time{}, false
	}
	t, err := time.Parse(TimeFormat, parts[2][:len(TimeFormat)])
	if err != nil {
		return "", "", "", time.Time{}, false
	}
	return taskDir, parts[0], parts[1], t, true
}

// ParseManifestName recognises "<taskdir>/<version>_manifest_<time>.json".
func ParseManifestName(p string) (taskDir, version string, executed time.Time, ok bool) {
	slash := strings.LastIndex(p, "/")
	if slash <= 0 {
		return "", "", time.Time{}, false
	}
	taskDir, base := p[:slash], p[slash+1:]
	if strings.Contains(taskDir, "/") {
		return "", "", time.Time{}, false
	}
	base, found := strings.CutSuffix(base, ".json")
	if !found {
		return "", "", time.Time{}, false
	}
	parts := strings.Split(base, "_")
	if len(parts) != 3 || parts[1] != SourceManifest {
		return "", "", time.Time{}, false
	}
	t, err := time.Parse(TimeFormat, parts[2])
	if err != nil {
		return "", "", time.Time{}, false
	}
	return taskDir, parts[0], t, true
}

// SegmentName is the file of one segment of a partition.
func SegmentName(topicDataDir, topic string, partition int32, firstOffset int64, compression string) string {
	ext := ".seg"
	if compression == CompressionZstd {
		ext += ".zst"
	}
	return fmt.Sprintf("%s/%s/%d/%020d%s", topicDataDir, topic, partition, firstOffset, ext)
}

// PackName is a pack file of a work unit's attempt: the attempt is in the
// name so that an attempt that lost its lease (and may still be writing)
// never replaces a file a newer attempt committed.
func PackName(topicDataDir string, unit int, attempt int32, seq int) string {
	return fmt.Sprintf("%s/packs/%05d-a%03d-%05d.pack", topicDataDir, unit, attempt, seq)
}

// PartName is the manifest part of a work unit, next to the manifest.
func PartName(manifest string, unit int, attempt int32) string {
	return fmt.Sprintf("%s.parts/%05d-a%03d.json", strings.TrimSuffix(manifest, ".json"), unit, attempt)
}

// PlanName is the plan of a work unit of a backup that is running: the
// partitions and ranges it exports. It is not part of the recovery point.
func PlanName(topicDataDir string, unit int) string {
	return fmt.Sprintf("%s/plan/%05d.json", topicDataDir, unit)
}
