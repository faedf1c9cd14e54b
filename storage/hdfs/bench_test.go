package hdfs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/storagetest"
)

// BenchmarkThroughput compares the backend with Hadoop's own client on the
// same file, in the same run: a local file (1 GiB, or KBR_HDFS_BENCH_SIZE) is
// written to HDFS and read back to a local file through the backend, and
// through `hdfs dfs -put` / `hdfs dfs -get` (FsShell in a JVM, its start-up
// included, as an operator would run it). Run it with
//
//	go test -run '^$' -bench Throughput -benchtime 1x ./storage/hdfs
//
// It reports MB/s of each and the ratio backend / hdfs dfs.
func BenchmarkThroughput(bm *testing.B) {
	e := loadHDFS(bm)
	size := int64(1 << 30)
	if s := os.Getenv("KBR_HDFS_BENCH_SIZE"); s != "" {
		n, err := storagetest.ParseSize(s)
		if err != nil {
			bm.Fatal(err)
		}
		size = n
	}
	dir := bm.TempDir()
	src := filepath.Join(dir, "src.bin")
	f, err := os.Create(src)
	if err != nil {
		bm.Fatal(err)
	}
	want := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, want), pseudo(7, size)); err != nil {
		bm.Fatal(err)
	}
	f.Close()
	wantSum := fmt.Sprintf("%x", want.Sum(nil))

	b := e.openBackend(bm, e.target(e.freshRoot(bm)), defaultOptions())
	ctx := context.Background()
	mbps := func(d time.Duration) float64 { return float64(size) / 1e6 / d.Seconds() }
	check := func(file string) {
		h := sha256.New()
		f, err := os.Open(file)
		if err != nil {
			bm.Fatal(err)
		}
		defer f.Close()
		io.Copy(h, f)
		if got := fmt.Sprintf("%x", h.Sum(nil)); got != wantSum {
			bm.Fatalf("%s: sha256 %s, want %s", file, got, wantSum)
		}
		os.Remove(file)
	}
	hdfsDfs := func(args ...string) time.Duration {
		cmd := e.hadoopCmd(e.User, append([]string{"org.apache.hadoop.fs.FsShell"}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			bm.Fatalf("hdfs dfs %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return time.Since(start)
	}
	// JVM start-up alone, to tell it apart from the transfer.
	jvm := hdfsDfs("-test", "-d", b.Root())

	bm.ResetTimer()
	for i := 0; i < bm.N; i++ {
		name := fmt.Sprintf("bench/kbr-%d.bin", i)
		in, err := os.Open(src)
		if err != nil {
			bm.Fatal(err)
		}
		start := time.Now()
		if _, err := storage.WriteFile(ctx, b, name, in); err != nil {
			bm.Fatal(err)
		}
		kbrW := time.Since(start)
		in.Close()

		hdfsPath := path.Join(b.Root(), fmt.Sprintf("bench/dfs-%d.bin", i))
		dfsW := hdfsDfs("-put", "-d", src, hdfsPath)

		out := filepath.Join(dir, "kbr-get.bin")
		of, err := os.Create(out)
		if err != nil {
			bm.Fatal(err)
		}
		start = time.Now()
		rc, err := b.Open(ctx, name)
		if err != nil {
			bm.Fatal(err)
		}
		if _, err := io.Copy(of, rc); err != nil {
			bm.Fatal(err)
		}
		rc.Close()
		of.Close()
		kbrR := time.Since(start)
		check(out)

		out = filepath.Join(dir, "dfs-get.bin")
		dfsR := hdfsDfs("-get", hdfsPath, out)
		check(out)

		bm.ReportMetric(mbps(kbrW), "kbr-write-MB/s")
		bm.ReportMetric(mbps(kbrR), "kbr-read-MB/s")
		bm.ReportMetric(mbps(dfsW), "dfs-put-MB/s")
		bm.ReportMetric(mbps(dfsR), "dfs-get-MB/s")
		bm.Logf("%d MiB: backend write %v (%.0f MB/s), read %v (%.0f MB/s); hdfs dfs -put %v (%.0f MB/s), -get %v (%.0f MB/s); JVM start-up of hdfs dfs alone %v",
			size>>20, kbrW.Round(time.Millisecond), mbps(kbrW), kbrR.Round(time.Millisecond), mbps(kbrR),
			dfsW.Round(time.Millisecond), mbps(dfsW), dfsR.Round(time.Millisecond), mbps(dfsR), jvm.Round(time.Millisecond))
		bm.Logf("ratio backend / hdfs dfs: write %.2f, read %.2f (without hdfs dfs JVM start-up: write %.2f, read %.2f)",
			dfsW.Seconds()/kbrW.Seconds(), dfsR.Seconds()/kbrR.Seconds(),
			(dfsW-jvm).Seconds()/kbrW.Seconds(), (dfsR-jvm).Seconds()/kbrR.Seconds())
		b.Delete(ctx, name)
	}
}
