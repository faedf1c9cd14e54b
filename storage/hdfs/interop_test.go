package hdfs

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kbr-project/kbr/storage"
)

// TestInteropWithHadoop: a file the backend writes (several blocks, an odd
// size) is read byte-exact by Hadoop's own client (`hdfs dfs -cat`, FsShell
// in a JVM, piped into SHA-256), and a file Hadoop writes (`hdfs dfs -put`)
// is listed and read byte-exact by the backend. Hadoop's -ls sees the
// committed name and no partial.
func TestInteropWithHadoop(t *testing.T) {
	e := loadHDFS(t)
	o := defaultOptions()
	o.blockSize = 4 << 20 // 9 blocks
	b := e.openBackend(t, e.target(e.freshRoot(t)), o)
	ctx := ctxT(t)
	const size = 33<<20 + 4321

	want := sha256.New()
	if _, err := storage.WriteFile(ctx, b, "interop/from-kbr.bin", io.TeeReader(pseudo(42, size), want)); err != nil {
		t.Fatal(err)
	}
	cat := e.hadoopCmd(e.User, "org.apache.hadoop.fs.FsShell", "-cat", path.Join(b.Root(), "interop/from-kbr.bin"))
	stdout, err := cat.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cat.Stderr = &stderr
	if err := cat.Start(); err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, copyErr := io.Copy(got, stdout)
	if err := cat.Wait(); err != nil || copyErr != nil {
		t.Fatalf("hdfs dfs -cat: %v %v\n%s", err, copyErr, stderr.String())
	}
	if n != size || hex.EncodeToString(got.Sum(nil)) != hex.EncodeToString(want.Sum(nil)) {
		t.Fatalf("hdfs dfs -cat read %d bytes sha256 %x; the backend wrote %d bytes sha256 %x", n, got.Sum(nil), size, want.Sum(nil))
	}
	t.Logf("hdfs dfs -cat: %d bytes, sha256 %x (same as written)", n, got.Sum(nil))

	ls := e.fsShell(t, "-ls", "-R", b.Root())
	if !strings.Contains(ls, "interop/from-kbr.bin") || strings.Contains(ls, storage.PartialMarker) {
		t.Errorf("hdfs dfs -ls -R:\n%s", ls)
	}

	// The other way: Hadoop writes, the backend reads.
	local := filepath.Join(t.TempDir(), "from-hadoop.bin")
	f, err := os.Create(local)
	if err != nil {
		t.Fatal(err)
	}
	want.Reset()
	if _, err := io.Copy(io.MultiWriter(f, want), pseudo(43, 5<<20+17)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	e.fsShell(t, "-put", local, path.Join(b.Root(), "interop/from-hadoop.bin"))
	fs, err := b.List(ctx, "interop/")
	if err != nil || len(fs) != 2 || fs[0].Name != "interop/from-hadoop.bin" || fs[0].Size != 5<<20+17 {
		t.Fatalf("List after hdfs dfs -put = %+v, %v", fs, err)
	}
	rc, err := b.Open(ctx, "interop/from-hadoop.bin")
	if err != nil {
		t.Fatal(err)
	}
	got.Reset()
	if _, err := io.Copy(got, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if hex.EncodeToString(got.Sum(nil)) != hex.EncodeToString(want.Sum(nil)) {
		t.Error("the backend read a file written by hdfs dfs -put differently")
	}
}
