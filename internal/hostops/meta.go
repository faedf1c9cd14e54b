package hostops

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MetaFile is the name of the file Kafka keeps in every log dir.
const MetaFile = "meta.properties"

// OrigSuffix names the copy of meta.properties kept before kbr first
// rewrites it ("meta.properties.kbr-orig"). It is written once and never
// overwritten, so it always holds what the broker had before any restore.
const OrigSuffix = ".kbr-orig"

// ClusterIDFix is what SetClusterID did in one log dir.
type ClusterIDFix struct {
	Dir string `json:"dir"`
	// Before is the cluster.id found ("" when meta.properties has none).
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
	// Status: "fixed", "already correct", or "no meta.properties" (a log
	// dir the broker never started with: Kafka writes it on first start
	// from the cluster id in ZooKeeper, so there is nothing to fix).
	Status string `json:"status"`
	// Original is the path of the kept original, when one exists.
	Original string `json:"original,omitempty"`
}

// Fix statuses.
const (
	FixFixed   = "fixed"
	FixCorrect = "already correct"
	FixAbsent  = "no meta.properties"
)

// ReadClusterID returns the cluster.id of a log dir's meta.properties
// ("" when the file has none). A missing file is fs.ErrNotExist.
func ReadClusterID(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		return "", err
	}
	return parseProperties(data)["cluster.id"], nil
}

// SetClusterID sets cluster.id in dir/meta.properties to id, the way the
// MRS procedure has an operator edit it by hand after an
// InconsistentClusterIdException. The rewrite is atomic (a temp file in the
// same dir, fsynced, renamed over, the dir fsynced): a crash leaves the old
// or the new file, never half of one. Every other line is kept as it was.
// The original is copied to meta.properties.kbr-orig the first time only.
// Running it again with the same id changes nothing.
func SetClusterID(dir, id string) (ClusterIDFix, error) {
	fix := ClusterIDFix{Dir: dir, After: id}
	if strings.TrimSpace(id) == "" || strings.ContainsAny(id, "\r\n") {
		return fix, fmt.Errorf("set cluster.id in %s: %q is not a cluster id", dir, id)
	}
	path := filepath.Join(dir, MetaFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		fix.Status = FixAbsent
		return fix, nil
	}
	if err != nil {
		return fix, fmt.Errorf("set cluster.id: %w", err)
	}
	fix.Before = parseProperties(data)["cluster.id"]
	orig := path + OrigSuffix
	if _, err := os.Stat(orig); err == nil {
		fix.Original = orig
	}
	if fix.Before == id {
		fix.Status = FixCorrect
		return fix, nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return fix, fmt.Errorf("set cluster.id: %w", err)
	}
	if fix.Original == "" {
		if err := writeAtomic(orig, data, st.Mode().Perm()); err != nil {
			return fix, fmt.Errorf("set cluster.id: keep the original: %w", err)
		}
		fix.Original = orig
	}
	if err := writeAtomic(path, replaceClusterID(data, id), st.Mode().Perm()); err != nil {
		return fix, fmt.Errorf("set cluster.id: %w", err)
	}
	fix.Status = FixFixed
	return fix, nil
}

// replaceClusterID rewrites the cluster.id line (or appends one), keeping
// every other line and the file's line ending.
func replaceClusterID(data []byte, id string) []byte {
	lines := bytes.SplitAfter(data, []byte("\n"))
	var out bytes.Buffer
	done := false
	for _, l := range lines {
		trim := strings.TrimLeft(string(l), " \t")
		if !done && trim != "" && trim[0] != '#' && trim[0] != '!' {
			if k, _ := splitProperty(strings.TrimRight(trim, "\r\n")); k == "cluster.id" {
				nl := "\n"
				if !bytes.HasSuffix(l, []byte("\n")) {
					nl = ""
				}
				out.WriteString("cluster.id=" + id + nl)
				done = true
				continue
			}
		}
		out.Write(l)
	}
	if !done {
		if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
			out.WriteString("\n")
		}
		out.WriteString("cluster.id=" + id + "\n")
	}
	return out.Bytes()
}

// writeAtomic writes data to path through a temp file in the same dir:
// write, fsync, rename, fsync the dir.
func writeAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".kbr-tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
