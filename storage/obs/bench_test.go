package obs

import (
	"context"
	"io"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/kbr-project/kbr/storage/storagetest"
)

// BenchmarkThroughput compares a 1 GiB file through the backend (streaming
// writer: unknown size, 5 MiB parts, one part in flight) with plain minio-go
// on the same MinIO (PutObject with the size known, minio-go's default part
// size and 4 upload threads; GetObject), in the same run. There is no `mc`
// on these machines to compare with. Run:
//
//	go test -run '^$' -bench Throughput -benchtime 1x ./storage/obs/
func BenchmarkThroughput(b *testing.B) {
	e := loadOBS(b)
	const size = 1 << 30
	be := newTestBackend(b, e, "bench")
	admin := e.admin(b)
	ctx := context.Background()
	plainKey := be.Root() + "plain.bin"

	b.Run("backend-write", func(b *testing.B) {
		b.SetBytes(size)
		for range b.N {
			w, err := be.Create(ctx, "kbr.bin")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(w, storagetest.Stream("bench", size)); err != nil {
				b.Fatal(err)
			}
			if err := w.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("backend-read", func(b *testing.B) {
		b.SetBytes(size)
		for range b.N {
			rc, err := be.Open(ctx, "kbr.bin")
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, rc); err != nil || n != size {
				b.Fatal(n, err)
			}
			rc.Close()
		}
	})
	b.Run("minio-go-write", func(b *testing.B) {
		b.SetBytes(size)
		for range b.N {
			if _, err := admin.PutObject(ctx, e.Bucket, plainKey, storagetest.Stream("bench", size), size, minio.PutObjectOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("minio-go-read", func(b *testing.B) {
		b.SetBytes(size)
		for range b.N {
			obj, err := admin.GetObject(ctx, e.Bucket, plainKey, minio.GetObjectOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, obj); err != nil || n != size {
				b.Fatal(n, err)
			}
			obj.Close()
		}
	})
	b.Run("generator-only", func(b *testing.B) { // the test data's own cost
		b.SetBytes(size)
		for range b.N {
			io.Copy(io.Discard, storagetest.Stream("bench", size))
		}
	})
}
