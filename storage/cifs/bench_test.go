package cifs_test

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/cifs"
)

// benchSize is the file size of the benchmarks: KBR_CIFS_BENCH_MIB MiB, 256
// by default.
func benchSize() int64 {
	if n, err := strconv.Atoi(os.Getenv("KBR_CIFS_BENCH_MIB")); err == nil && n > 0 {
		return int64(n) << 20
	}
	return 256 << 20
}

// benchTargets are the two stack servers, and the default one with
// target.signing required.
func benchTargets(b *testing.B) map[string]storage.Target {
	s := loadServer(b)
	signed := loadSignedServer(b)
	def := s.target(s.scratch(b))
	req := def
	req.Signing = cifs.SigningRequired
	return map[string]storage.Target{"default": def, "mandatory": signed.target(signed.scratch(b)), "required": req}
}

// dialects runs fn with sessions on SMB 2.1 (kbr's choice) and on SMB
// 3.1.1 (the server's).
func dialects(b *testing.B, fn func(b *testing.B)) {
	for _, d := range []struct {
		name  string
		smb21 bool
	}{{"smb2.1", true}, {"smb3.1.1", false}} {
		b.Run(d.name, func(b *testing.B) {
			old := cifs.PreferSMB21(d.smb21)
			defer cifs.PreferSMB21(old)
			fn(b)
		})
	}
}

// cpuSeconds is the CPU time this process has used (user and system).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkWrite and BenchmarkRead measure the backend alone (no hashing,
// no other work), 256 KiB calls as kbr's data path makes them, on the
// default server, the mandatory-signing one, and the default one with
// target.signing required.
func BenchmarkWrite(b *testing.B) {
	for name, tg := range benchTargets(b) {
		b.Run(name, func(b *testing.B) {
			dialects(b, func(b *testing.B) {
				be, err := cifs.New(context.Background(), tg)
				if err != nil {
					b.Fatal(err)
				}
				defer be.Close()
				size := benchSize()
				buf := make([]byte, 256<<10)
				rand.Read(buf)
				b.SetBytes(size)
				var commit time.Duration
				cpu0 := cpuSeconds()
				for i := 0; i < b.N; i++ {
					w, err := be.Create(context.Background(), "w.bin")
					if err != nil {
						b.Fatal(err)
					}
					for n := int64(0); n < size; n += int64(len(buf)) {
						if _, err := w.Write(buf); err != nil {
							b.Fatal(err)
						}
					}
					t0 := time.Now()
					if err := w.Commit(); err != nil {
						b.Fatal(err)
					}
					commit += time.Since(t0)
				}
				// Commit flushes the file to the server's disk (Samba's strict
				// sync): the part of the time that is the disk's, not SMB's.
				b.ReportMetric(commit.Seconds()/float64(b.N), "commit-s/op")
				b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
			})
		})
	}
}

func BenchmarkRead(b *testing.B) {
	for name, tg := range benchTargets(b) {
		b.Run(name, func(b *testing.B) {
			dialects(b, func(b *testing.B) {
				be, err := cifs.New(context.Background(), tg)
				if err != nil {
					b.Fatal(err)
				}
				defer be.Close()
				size := benchSize()
				if _, err := storage.WriteFile(context.Background(), be, "r.bin", io.LimitReader(rand.Reader, size)); err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, 256<<10)
				b.SetBytes(size)
				b.ResetTimer()
				cpu0 := cpuSeconds()
				for i := 0; i < b.N; i++ {
					rc, err := be.Open(context.Background(), "r.bin")
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{rc}, buf); err != nil {
						b.Fatal(err)
					}
					rc.Close()
				}
				b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
			})
		})
	}
}
