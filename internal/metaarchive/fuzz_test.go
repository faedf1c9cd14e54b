package metaarchive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/kbr-project/kbr/internal/zkmeta"
)

// FuzzReadArchive feeds the metadata archive reader arbitrary bytes (it
// runs from `make fuzz` for a few seconds, and on its committed corpus in
// testdata/fuzz with every `go test`). Properties: no panic; no allocation
// beyond a multiple of what the archive decompresses to (JSON decoding
// allocates some times its input; a crafted size or count must not
// allocate ahead of the data); and a tree it accepts holds only valid
// znode paths inside its chroot, so no restore planned from it can write
// outside the target chroot.
func FuzzReadArchive(f *testing.F) {
	s, tree := sample()
	var buf bytes.Buffer
	if err := WriteArchive(&buf, s, tree); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	buf.Reset()
	if err := WriteArchive(&buf, s, nil); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(tarGz(map[string]string{"version.json": `{"format":1,"zkChroot":"/kafka"}`, "logical.json": `{}`,
		"znodes.json": `{"chroot":"/kafka","znodes":[{"path":"/kafka"},{"path":"/kafkaX/evil"}]}`}))
	f.Add([]byte("not gzip"))
	f.Fuzz(func(t *testing.T, data []byte) {
		unpacked, ok := gunzipSize(data, 8<<20)
		if !ok {
			return // decompresses past 8 MiB: large by content, not by a crafted length
		}
		var (
			tr  *zkmeta.Tree
			err error
		)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, tr, err = ReadArchive(bytes.NewReader(data))
		runtime.ReadMemStats(&after)
		if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(16<<20+256*(int64(len(data))+unpacked)); got > limit {
			t.Errorf("reading %d bytes (%d unpacked) allocated %d bytes, more than %d", len(data), unpacked, got, limit)
		}
		if _, verr := ReadVersion(bytes.NewReader(data)); verr == nil && err == nil && tr == nil {
			// A KRaft archive: nothing more to check.
			return
		}
		if err != nil || tr == nil {
			return
		}
		chroot := tr.Chroot
		if chroot == "" {
			chroot = "/"
		}
		for _, z := range tr.Znodes {
			if zkmeta.ValidPath(z.Path) != nil || !(chroot == "/" || z.Path == chroot || strings.HasPrefix(z.Path, chroot+"/")) {
				t.Errorf("accepted znode %q outside chroot %q", z.Path, tr.Chroot)
			}
		}
		// What the reader accepts, the planner maps inside the target.
		plan, err := zkmeta.PlanRestore(tr, nil, "/target")
		if err != nil {
			return
		}
		for _, op := range plan.Ops {
			if op.Path != "/target" && !strings.HasPrefix(op.Path, "/target/") {
				t.Errorf("plan writes %s, outside the target chroot /target", op.Path)
			}
		}
	})
}

// gunzipSize is how many bytes data decompresses to (the tar stream), up
// to limit; ok is false past it.
func gunzipSize(data []byte, limit int64) (int64, bool) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return 0, true
	}
	n, _ := io.Copy(io.Discard, io.LimitReader(zr, limit+1))
	return n, n <= limit
}

func tarGz(files map[string]string) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range []string{VersionEntry, LogicalEntry, ZnodesEntry} {
		if body, ok := files[name]; ok {
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))})
			tw.Write([]byte(body))
		}
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}
