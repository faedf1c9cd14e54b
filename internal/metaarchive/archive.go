// Package metaarchive writes and reads the metadata backup file, a .tar.gz
// with three JSON entries:
//
//	version.json  {"format":1,"kafkaVersion":…,"clusterID":…,"takenAt":…}
//	logical.json  the kmeta.Snapshot (Admin API view, every cluster)
//	znodes.json   the zkmeta.Tree, znode data as base64 (ZooKeeper mode only)
//
// It is its own package because it joins the two views: kmeta and zkmeta
// stay independent of each other and of the file format. version.json is
// written first so a reader can refuse an unknown format before reading the
// rest. The entries are plain JSON so an operator can inspect a backup
// with tar and jq.
package metaarchive

import (
	"github.com/kbr-project/kbr/internal/jsoncase"

	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/kbr-project/kbr/internal/kmeta"
	"github.com/kbr-project/kbr/internal/zkmeta"
)

// Format is the archive format this package writes. It reads format 1
// too: the same entries with camelCase keys.
const Format = 2

// Entry names inside the archive.
const (
	VersionEntry = "version.json"
	LogicalEntry = "logical.json"
	ZnodesEntry  = "znodes.json"
)

// maxEntry bounds what ReadArchive loads per entry, so a corrupt or hostile
// file cannot exhaust memory. A ZooKeeper ensemble holds at most a few GB.
const maxEntry = 4 << 30

// Version is the content of version.json.
type Version struct {
	Format       int       `json:"format"`
	KafkaVersion string    `json:"kafka_version"`
	ClusterID    string    `json:"cluster_id"`
	TakenAt      time.Time `json:"taken_at"`
	ZKChroot     string    `json:"zk_chroot,omitempty"`
}

// UnmarshalJSON reads format 1's camelCase keys too.
func (v *Version) UnmarshalJSON(b []byte) error {
	type plain Version
	return jsoncase.Decode(b, (*plain)(v))
}

// WriteArchive writes the archive of a snapshot and, for a ZooKeeper-mode
// cluster, its znode tree (nil for KRaft). Headers carry the snapshot's time
// and no owner, so the same metadata gives the same bytes.
func WriteArchive(w io.Writer, s *kmeta.Snapshot, t *zkmeta.Tree) error {
	if s == nil {
		return errors.New("write metadata archive: no snapshot")
	}
	v := Version{Format: Format, KafkaVersion: s.KafkaVersion, ClusterID: s.ClusterID, TakenAt: s.TakenAt}
	if t != nil {
		v.ZKChroot = t.Chroot
	}
	gz := gzip.NewWriter(w)
	gz.ModTime = s.TakenAt
	gz.Name = "kbr-metadata.tar"
	tw := tar.NewWriter(gz)
	put := func(name string, val any) error {
		b, err := json.MarshalIndent(val, "", " ")
		if err != nil {
			return fmt.Errorf("write metadata archive: encode %s: %w", name, err)
		}
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: s.TakenAt, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write metadata archive: header of %s: %w", name, err)
		}
		if _, err := tw.Write(b); err != nil {
			return fmt.Errorf("write metadata archive: %s: %w", name, err)
		}
		return nil
	}
	if err := put(VersionEntry, v); err != nil {
		return err
	}
	if err := put(LogicalEntry, s); err != nil {
		return err
	}
	if t != nil {
		if err := put(ZnodesEntry, t); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write metadata archive: close tar: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("write metadata archive: close gzip: %w", err)
	}
	return nil
}

// ReadArchive reads an archive written by WriteArchive. The tree is nil
// when the archive has no znodes.json (a KRaft cluster). Unknown entries
// are ignored so later versions can add some; an unknown format is refused.
func ReadArchive(r io.Reader) (*kmeta.Snapshot, *zkmeta.Tree, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, nil, fmt.Errorf("read metadata archive: not gzip: %w", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	var (
		v    *Version
		s    *kmeta.Snapshot
		tree *zkmeta.Tree
		seen = map[string]bool{}
	)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read metadata archive: %w", err)
		}
		if !localName(hdr.Name) {
			return nil, nil, fmt.Errorf("read metadata archive: entry %q: not a relative path inside the archive", hdr.Name)
		}
		if seen[hdr.Name] {
			return nil, nil, fmt.Errorf("read metadata archive: %s appears twice", hdr.Name)
		}
		seen[hdr.Name] = true
		var dst any
		switch hdr.Name {
		case VersionEntry:
			v = new(Version)
			dst = v
		case LogicalEntry:
			if v == nil {
				return nil, nil, fmt.Errorf("read metadata archive: %s comes before %s", LogicalEntry, VersionEntry)
			}
			s = new(kmeta.Snapshot)
			dst = s
		case ZnodesEntry:
			if v == nil {
				return nil, nil, fmt.Errorf("read metadata archive: %s comes before %s", ZnodesEntry, VersionEntry)
			}
			tree = new(zkmeta.Tree)
			dst = tree
		default:
			continue
		}
		if err := regular(hdr); err != nil {
			return nil, nil, err
		}
		if hdr.Size > maxEntry {
			return nil, nil, fmt.Errorf("read metadata archive: %s is %d bytes, more than the %d allowed", hdr.Name, hdr.Size, int64(maxEntry))
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxEntry))
		if err != nil {
			return nil, nil, fmt.Errorf("read metadata archive: %s: %w", hdr.Name, err)
		}
		if err := json.NewDecoder(bytes.NewReader(b)).Decode(dst); err != nil {
			return nil, nil, fmt.Errorf("read metadata archive: decode %s: %w", hdr.Name, err)
		}
		if hdr.Name == VersionEntry && (v.Format < 1 || v.Format > Format) {
			return nil, nil, fmt.Errorf("read metadata archive: format %d is not supported (this kbr reads formats 1 to %d)", v.Format, Format)
		}
	}
	if v == nil {
		return nil, nil, fmt.Errorf("read metadata archive: no %s", VersionEntry)
	}
	if s == nil {
		return nil, nil, fmt.Errorf("read metadata archive: no %s", LogicalEntry)
	}
	if tree != nil {
		// Every znode path comes from the file: one outside the chroot, or
		// one read two ways, would make a restore write outside its place.
		if err := tree.Validate(); err != nil {
			return nil, nil, fmt.Errorf("read metadata archive: %s: %w", ZnodesEntry, err)
		}
		if v.ZKChroot != "" && v.ZKChroot != tree.Chroot {
			return nil, nil, fmt.Errorf("read metadata archive: %s: chroot %s, but %s says %s", ZnodesEntry, tree.Chroot, VersionEntry, v.ZKChroot)
		}
	}
	return s, tree, nil
}

// regular refuses an entry that is not a plain file: a sparse one (GNU
// or PAX form) reads back as its claimed size in zeros, gigabytes from a
// 512-byte header; links and the rest are nothing WriteArchive writes.
func regular(hdr *tar.Header) error {
	sparse := hdr.Typeflag == tar.TypeGNUSparse
	for k := range hdr.PAXRecords {
		sparse = sparse || strings.HasPrefix(k, "GNU.sparse.")
	}
	if hdr.Typeflag != tar.TypeReg || sparse {
		return fmt.Errorf("read metadata archive: entry %s is not a regular file (type %q%s)", hdr.Name, hdr.Typeflag, map[bool]string{true: ", sparse"}[sparse])
	}
	return nil
}

// localName tells an entry name that stays inside the archive: relative,
// slash-separated, clean (no "", "." or ".." segment). The reader writes
// nothing to disk, but a name that climbs out is a crafted file.
func localName(name string) bool {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") {
		return false
	}
	return path.Clean(name) == name && name != "." && name != ".." && !strings.HasPrefix(name, "../")
}

// ReadVersion reads only version.json, for listing recovery points and for
// the version check of a metadata restore without loading the znodes.
func ReadVersion(r io.Reader) (*Version, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("read metadata archive: not gzip: %w", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("read metadata archive: no %s", VersionEntry)
		}
		if err != nil {
			return nil, fmt.Errorf("read metadata archive: %w", err)
		}
		if hdr.Name != VersionEntry {
			continue
		}
		if err := regular(hdr); err != nil {
			return nil, err
		}
		v := new(Version)
		if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(v); err != nil {
			return nil, fmt.Errorf("read metadata archive: decode %s: %w", VersionEntry, err)
		}
		return v, nil
	}
}
