// Command storagebench measures every kbr storage backend (LocalDir, NFS,
// LocalHDFS, CIFS, SFTP, OBS) against the server's own client on the real
// local test stack (deploy/stack.sh up), in the same run:
//
//	go run ./bench/storagebench [-size 1GiB] [-runs 3] [-only LocalDir,SFTP,...] [-cpuprofile DIR]
//
// For each path type and run it writes a file of -size through the kbr
// backend and through the native client, then reads both back (the kbr side
// to io.Discard while hashing with SHA-256 and checking the hash, the native
// side to /dev/null), alternating which side goes first from run to run, and
// deletes both files. It prints medians and the median of the per-run
// kbr/native ratios, and writes everything to bench/results/storage-latest.json.
//
// The native references:
//
//	LocalDir, NFS  cp (then `sync FILE`, since kbr fsyncs on Commit) / cat > /dev/null
//	LocalHDFS      java FsShell -put -f / -cat > /dev/null (JVM start-up included; timed apart)
//	CIFS           smbclient -A authfile -c 'put ...' / 'get ... /dev/null'
//	SFTP           sftp -b batch 'put -f ...' / 'get ... /dev/null' (OpenSSH, key auth)
//	OBS            minio-go PutObject with the size known / GetObject, in this process
//	               (there is no S3 CLI on these machines)
//
// kbr's side calls the backend the way kbr's data path does: 256 KiB Write
// calls (backupset's bufio.Writer) and 256 KiB Read calls (the restore's
// bufio.Reader); -writeto reads with io.Copy instead, which uses a backend
// reader's WriteTo where it has one.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/storage/all"
)

// registry opens the kbr side of every path type.
var registry = all.Registry()

// allTypes is the order the path types run in. CIFS-signed is CIFS on the
// stack's second Samba, which requires signing (server signing =
// mandatory): kbr and smbclient both sign every message there.
var allTypes = []string{"LocalDir", "NFS", "LocalHDFS", "CIFS", "CIFS-signed", "SFTP", "OBS"}

type options struct {
	size       int64
	runs       int
	only       []string
	cpuprofile string
	out        string
	source     string
	ioBuf      int
	writeTo    bool
	noStackUp  bool
	tmp        string
}

func main() {
	var o options
	var sizeStr, onlyStr, ioBufStr string
	flag.StringVar(&sizeStr, "size", "1GiB", "file size (B, KiB, MiB, GiB, KB, MB, GB)")
	flag.IntVar(&o.runs, "runs", 3, "paired runs per path type (median reported)")
	flag.StringVar(&onlyStr, "only", "", "comma-separated path types to run (default all: "+strings.Join(allTypes, ",")+")")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "directory for CPU profiles of the kbr side (<type>-<write|read>-run<N>.pprof)")
	flag.StringVar(&o.out, "out", "bench/results/storage-latest.json", "JSON output, relative to the repository root")
	flag.StringVar(&o.source, "source", "auto", "what the kbr write reads: auto (the native side's temp file for LocalDir/NFS, the generator elsewhere), file, gen")
	flag.StringVar(&ioBufStr, "iobuf", "256KiB", "size of the kbr side's Write and Read calls")
	flag.BoolVar(&o.writeTo, "writeto", false, "read the kbr side with io.Copy (a backend reader's WriteTo) instead of fixed-size Read calls")
	flag.BoolVar(&o.noStackUp, "no-stack-up", false, "do not run deploy/stack.sh up first")
	flag.StringVar(&o.tmp, "tmp", os.TempDir(), "directory for the source file and the LocalDir target")
	flag.Parse()
	var err error
	if o.size, err = parseSize(sizeStr); err != nil || o.size <= 0 {
		fatalf("-size %q: %v", sizeStr, err)
	}
	n, err := parseSize(ioBufStr)
	if err != nil || n <= 0 || n > 64<<20 {
		fatalf("-iobuf %q: want 1B..64MiB", ioBufStr)
	}
	o.ioBuf = int(n)
	if o.runs < 1 {
		fatalf("-runs must be at least 1")
	}
	if o.source != "auto" && o.source != "file" && o.source != "gen" {
		fatalf("-source: auto, file or gen")
	}
	if onlyStr != "" {
		for _, s := range strings.Split(onlyStr, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if strings.EqualFold(s, "HDFS") || strings.EqualFold(s, "RemoteHDFS") {
				s = "LocalHDFS"
			}
			i := slices.IndexFunc(allTypes, func(t string) bool { return strings.EqualFold(t, s) })
			if i < 0 {
				fatalf("-only: unknown path type %q (known: %s)", s, strings.Join(allTypes, ","))
			}
			if !slices.Contains(o.only, allTypes[i]) {
				o.only = append(o.only, allTypes[i])
			}
		}
	} else {
		o.only = allTypes
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "storagebench: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// result is one path type's figures.
type result struct {
	Type   string `json:"type"`
	Target string `json:"target"`
	Native string `json:"native"`
	Note   string `json:"note,omitempty"`
	Error  string `json:"error,omitempty"`
	// Retries counts runs that failed once (a server restarted by another
	// user of the machine, say) and were run again.
	Retries int `json:"retries,omitempty"`

	Source string `json:"kbr_write_source"` // file or gen

	// Medians over the runs, MB/s = 10^6 bytes/s.
	KbrWriteMBps    float64 `json:"kbr_write_mbps"`
	NativeWriteMBps float64 `json:"native_write_mbps"`
	WriteRatio      float64 `json:"write_ratio"` // median of the per-run kbr/native ratios
	KbrReadMBps     float64 `json:"kbr_read_mbps"`
	NativeReadMBps  float64 `json:"native_read_mbps"`
	ReadRatio       float64 `json:"read_ratio"`
	// The same ratios with the native client's fixed start-up cost (JVM,
	// SSH or SMB session) taken out of each native figure.
	WriteRatioNoStartup float64 `json:"write_ratio_without_native_startup,omitempty"`
	ReadRatioNoStartup  float64 `json:"read_ratio_without_native_startup,omitempty"`
	// The read ratio with the time kbr's side spent in SHA-256 taken out
	// (timed around every hash Write): what the backend itself reads at.
	ReadRatioNoHash float64 `json:"read_ratio_without_kbr_sha256"`
	// The same for writes, which kbr hashes as its data path does.
	WriteRatioNoHash   float64 `json:"write_ratio_without_kbr_sha256"`
	WriteRatioAdjusted float64 `json:"write_ratio_without_startup_and_sha256"`
	KbrReadHashMBps    float64 `json:"kbr_read_sha256_mbps"`
	// Both taken out: native without its start-up over kbr without SHA-256.
	ReadRatioAdjusted   float64 `json:"read_ratio_without_startup_and_sha256"`
	KbrPeakRSSAddedMiB  float64 `json:"kbr_peak_rss_added_mib"` // max over the kbr writes and reads
	KbrOpenSeconds      float64 `json:"kbr_open_seconds"`       // Registry.Open (connect, log in, mkdir), not in the figures
	NativeStartupSecond float64 `json:"native_startup_seconds"` // median, included in the native figures

	Runs []runResult `json:"runs"`
}

type runResult struct {
	Run        int    `json:"run"`
	First      string `json:"first"` // kbr or native: which side went first in this run
	LoadBefore string `json:"loadavg_before"`

	KbrWriteSeconds     float64 `json:"kbr_write_seconds"`
	NativeWriteSeconds  float64 `json:"native_write_seconds"`
	KbrReadSeconds      float64 `json:"kbr_read_seconds"`
	KbrReadHashSeconds  float64 `json:"kbr_read_sha256_seconds"`  // part of kbr_read_seconds
	KbrWriteHashSeconds float64 `json:"kbr_write_sha256_seconds"` // part of kbr_write_seconds
	NativeReadSeconds   float64 `json:"native_read_seconds"`
	// Parts of a native figure where it has several (cp, then sync).
	NativeWriteDetail map[string]float64 `json:"native_write_detail_seconds,omitempty"`
	NativeStartup     float64            `json:"native_startup_seconds,omitempty"`

	KbrWriteRSSAddedMiB float64 `json:"kbr_write_peak_rss_added_mib"`
	KbrReadRSSAddedMiB  float64 `json:"kbr_read_peak_rss_added_mib"`
	KbrWriteCPUSeconds  float64 `json:"kbr_write_process_cpu_seconds"`
	KbrReadCPUSeconds   float64 `json:"kbr_read_process_cpu_seconds"`

	WriteRatio       float64  `json:"write_ratio"`
	ReadRatio        float64  `json:"read_ratio"`
	ReadRatioNoHash  float64  `json:"read_ratio_without_kbr_sha256"`
	WriteRatioNoHash float64  `json:"write_ratio_without_kbr_sha256"`
	Profiles         []string `json:"profiles,omitempty"`
}

type report struct {
	Tool      string    `json:"tool"`
	Command   string    `json:"command"`
	Started   time.Time `json:"started"`
	Seconds   float64   `json:"seconds"`
	Host      hostInfo  `json:"host"`
	SizeBytes int64     `json:"size_bytes"`
	Runs      int       `json:"runs"`
	IOBuf     int       `json:"kbr_io_call_bytes"`
	ReadMode  string    `json:"kbr_read_mode"`
	Source    string    `json:"source_flag"`
	// In-memory ceilings of the kbr side's own work, on this machine now.
	GeneratorMBps float64  `json:"generator_mbps"`
	SHA256MBps    float64  `json:"sha256_mbps"`
	Notes         []string `json:"notes"`
	Results       []result `json:"results"`
}

type hostInfo struct {
	CPUs       int    `json:"cpus"`
	GoVersion  string `json:"go_version"`
	LoadBefore string `json:"loadavg_before"`
	LoadAfter  string `json:"loadavg_after"`
	Commit     string `json:"git_commit,omitempty"`
}

func run(ctx context.Context, o options) error {
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	if err := os.Chdir(root); err != nil {
		return err
	}
	if !o.noStackUp {
		if err := stackUp(ctx); err != nil {
			return err
		}
	}
	envPath := filepath.Join(root, testenv.EnvFile)
	env, err := testenv.LoadFile(envPath)
	if err != nil {
		return fmt.Errorf("%v; run `deploy/stack.sh up` first", err)
	}
	rep := report{
		Tool:      "bench/storagebench",
		Command:   "go run ./bench/storagebench " + strings.Join(os.Args[1:], " "),
		Started:   time.Now().UTC(),
		SizeBytes: o.size,
		Runs:      o.runs,
		IOBuf:     o.ioBuf,
		ReadMode:  map[bool]string{false: "Read calls of kbr_io_call_bytes", true: "io.Copy (WriterTo)"}[o.writeTo],
		Source:    o.source,
		Host: hostInfo{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadBefore: loadavg(),
			Commit: gitCommit()},
	}

	id := fmt.Sprintf("%s-%s", time.Now().UTC().Format("20060102T150405"), randHex(3))
	work, err := os.MkdirTemp(o.tmp, "storagebench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := checkFree(work, o.size*3); err != nil {
		return err
	}

	// The source file both sides write from (and the hash every read checks).
	src := filepath.Join(work, "src.bin")
	logf("generating %s source file %s", fmtSize(o.size), src)
	want, err := writeSource(src, o.size)
	if err != nil {
		return err
	}
	rep.GeneratorMBps, rep.SHA256MBps = ceilings(min(o.size, 256<<20))
	logf("in-memory ceilings: generator %.0f MB/s, SHA-256 %.0f MB/s", rep.GeneratorMBps, rep.SHA256MBps)

	b := &bench{o: o, env: env, envPath: envPath, id: id, work: work, src: src, want: want}
	for _, typ := range o.only {
		if ctx.Err() != nil {
			break
		}
		r := b.runType(ctx, typ)
		rep.Results = append(rep.Results, r)
		if r.Error != "" {
			logf("%s: ERROR: %s", typ, r.Error)
		}
	}
	rep.Host.LoadAfter = loadavg()
	rep.Seconds = time.Since(rep.Started).Seconds()
	rep.Notes = notes(o, rep.Results)

	printTable(os.Stdout, rep)
	out := o.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(out, append(data, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", out)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, r := range rep.Results {
		if r.Error != "" {
			return errors.New("some path types failed (see above)")
		}
	}
	return nil
}

func notes(o options, rs []result) []string {
	n := []string{
		"MB/s are 10^6 bytes per second of wall time; figures are medians over the runs, ratios the median of the per-run kbr/native ratios (both sides measured back to back in the same run, the first side alternating).",
		"kbr figures include Create..Commit (fsync and rename where the backend does them) and Open..Close; the backend is opened (connected) once per path type outside the timing (kbr_open_seconds).",
		"Native figures are the whole client invocation as an operator runs it, start-up included (native_startup_seconds is a no-op invocation of the same client; *_without_native_startup takes it out).",
		"kbr hashes every byte it writes and reads with SHA-256, as its data path does (and checks the hash); the native client only copies. The second line of a row takes the time spent in SHA-256 (timed around each hash call) out of the kbr figures, and the native start-up out of the native ones. Every file just written is still in the page cache, on every server (they all run on this machine).",
		"CIFS-signed is the stack's second Samba, with server signing = mandatory: kbr (target.signing auto) and smbclient both sign every message there; CIFS is the default Samba, where neither signs.",
		"LocalHDFS stands for both HDFS path types: LocalHDFS and RemoteHDFS are the same backend (storage/hdfs) with the NameNodes given; one run covers both.",
		"NFS runs in existing-mount mode: the kernel here has no NFS client (KBR_NFS_MOUNT_ERROR), so the mount point is a bind mount of the export on the local disk and NFS measures the same as LocalDir plus the mount check.",
		"OBS native is minio-go itself (PutObject with the size known: its default part size and 4 threads; GetObject) in this process, since there is no S3 CLI on these machines.",
		"Peak RSS added: the largest VmRSS (sampled every 2 ms, and VmHWM after resetting it) during a kbr write or read, minus VmRSS just before it after a GC.",
	}
	return n
}

// printTable prints the summary.
func printTable(w io.Writer, rep report) {
	fmt.Fprintf(w, "\nkbr storage backends vs native clients: %s file, %d run(s), kbr I/O calls of %s (%s)\n",
		fmtSize(rep.SizeBytes), rep.Runs, fmtSize(int64(rep.IOBuf)), rep.ReadMode)
	fmt.Fprintf(w, "host: %d CPUs, load %s -> %s; in-memory ceilings: generator %.0f MB/s, SHA-256 %.0f MB/s\n\n",
		rep.Host.CPUs, rep.Host.LoadBefore, rep.Host.LoadAfter, rep.GeneratorMBps, rep.SHA256MBps)
	fmt.Fprintf(w, "%-11s %10s %10s %6s  %10s %10s %6s  %8s  %s\n",
		"path type", "kbr wr", "native wr", "ratio", "kbr rd", "native rd", "ratio", "kbr RSS+", "native client (start-up s) / kbr source")
	fmt.Fprintf(w, "%-11s %10s %10s %6s  %10s %10s %6s  %8s\n", "", "MB/s", "MB/s", "", "MB/s", "MB/s", "", "MiB")
	for _, r := range rep.Results {
		if r.Error != "" && len(r.Runs) == 0 {
			fmt.Fprintf(w, "%-11s ERROR: %s\n", r.Type, r.Error)
			continue
		}
		flag := func(x float64) string {
			if x > 0 && x < 0.8 {
				return "*"
			}
			return " "
		}
		fmt.Fprintf(w, "%-11s %10.0f %10.0f %5.2f%s  %10.0f %10.0f %5.2f%s  %8.1f  %s (%.2f) / %s\n",
			r.Type, r.KbrWriteMBps, r.NativeWriteMBps, r.WriteRatio, flag(r.WriteRatio),
			r.KbrReadMBps, r.NativeReadMBps, r.ReadRatio, flag(r.ReadRatio),
			r.KbrPeakRSSAddedMiB, r.Native, r.NativeStartupSecond, r.Source)
		if r.NativeStartupSecond > 0 {
			fmt.Fprintf(w, "%-11s %10s %10s %5.2f   %10s %10s %5.2f   %8s  ratios without the native start-up and kbr's SHA-256\n",
				"", "", "", r.WriteRatioAdjusted, "", "", r.ReadRatioAdjusted, "")
		} else {
			fmt.Fprintf(w, "%-11s %10s %10s %5.2f   %10s %10s %5.2f   %8s  ratios without kbr's SHA-256\n",
				"", "", "", r.WriteRatioNoHash, "", "", r.ReadRatioNoHash, "")
		}
		if r.Error != "" {
			fmt.Fprintf(w, "%-11s ERROR: %s\n", "", r.Error)
		}
	}
	fmt.Fprintf(w, "\n* below the 0.8 target\n")
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suf string
		mul int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}}
	mul := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suf) {
			s, mul = strings.TrimSpace(strings.TrimSuffix(s, u.suf)), u.mul
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	return int64(n * float64(mul)), nil
}

func fmtSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func checkFree(dir string, need int64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return err
	}
	if free := int64(st.Bavail) * st.Bsize; free < need {
		return fmt.Errorf("%s has %s free, the bench needs %s", dir, fmtSize(free), fmtSize(need))
	}
	return nil
}

// writeSource writes size generated bytes to path and returns their SHA-256.
func writeSource(path string, size int64) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(io.MultiWriter(f, h), onlyReader{newStream(size)}, buf); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// stackUp runs deploy/stack.sh up, once more after a failure (another user
// of the machine may be starting or stopping the same stack), and shows the
// end of its output when it fails.
func stackUp(ctx context.Context) error {
	var err error
	for try := 1; try <= 2; try++ {
		logf("deploy/stack.sh up")
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, "deploy/stack.sh", "up")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err = cmd.Run(); err == nil {
			return nil
		}
		tail := out.String()
		if len(tail) > 3000 {
			tail = "..." + tail[len(tail)-3000:]
		}
		err = fmt.Errorf("deploy/stack.sh up: %w\n%s", err, strings.TrimSpace(tail))
		if ctx.Err() != nil {
			break
		}
		logf("%v\n(trying once more in 10s)", err)
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
		}
	}
	return err
}
