// Command bench measures kbr's backup and restore throughput against the
// real test stack and compares it with what franz-go (and kcat) do on the
// same data on the same machine. It prints figures; it never asserts on time.
//
//	make bench                                 # full run, 1 GiB topic
//	make bench BENCH_FLAGS='-size 256MiB'      # quick run
//	go run ./bench -h                          # every flag
//	KBR_CPUPROFILE=bench/results/cpu make bench   # also profile kdata in-process
//
// One run: ensures the stack is up (deploy/stack.sh up), builds kbr, starts
// `kbr server --no-worker` and a separate `kbr worker` on free ports, makes
// sure the source topic exists on the ZooKeeper-mode cluster (reused across
// runs when its record counts match; -fresh recreates it), then measures,
// each on the same records:
//
//   - franz-go consume of the whole topic (kgo, ConsumePartitions, read_committed)
//   - kcat -C -e -q -o beginning of the whole topic to /dev/null (reference)
//   - kbr backup run (LocalDir, data_sources [topicdata]) at each -parallelism
//   - franz-go idempotent produce of the same records into a new KRaft topic,
//     with kbr's restore producer settings (linger 5ms, 64MiB buffer, no compression)
//   - kbr restore run of the backup into the KRaft cluster, renamed, at each
//     -restore-parallelism
//   - policy: incremental (incremental.go): a full run of a fresh task, an
//     incremental with nothing new, and one after appending 1% new records,
//     each as a fraction of the full's time
//   - orchestration (orchestration.go): backup and restore of -orch-partitions
//     one-record partitions on an in-memory kfake cluster, per partition and
//     against Temporal's history limits
//
// Throughput is payload MB/s (10^6 bytes of key+value+header keys and values,
// the same numerator for every reader) and records/s. The worker's peak RSS
// is read from /proc/<pid>/status (VmHWM, reset before each kbr phase).
// Figures go to stdout and to bench/results/latest.json. Restored topics are
// deleted and the processes it started are stopped; the stack keeps running.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/sdk/client"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/kclient"
	"github.com/kbr-project/kbr/internal/kdata"
	"github.com/kbr-project/kbr/storage/localdir"
)

// Phase is one measurement.
type Phase struct {
	Name          string     `json:"name"`
	Tool          string     `json:"tool"` // franz-go, kcat, kbr, kbr-inproc
	Op            string     `json:"op"`   // consume, backup, produce, restore, verify, load
	Parallelism   int        `json:"parallelism,omitempty"`
	Rep           int        `json:"rep"`
	Seconds       float64    `json:"seconds"`
	Records       int64      `json:"records"`
	PayloadBytes  int64      `json:"payload_bytes"`
	MBps          float64    `json:"mb_per_s"`
	RecordsPerS   float64    `json:"records_per_s"`
	FileBytes     int64      `json:"file_bytes,omitempty"`
	ReaderCPU     float64    `json:"cpu_s"` // the process doing the work: bench (franz-go), kcat, or the kbr worker
	ServerCPU     float64    `json:"server_cpu_s,omitempty"`
	BrokerCPU     float64    `json:"broker_cpu_s"`
	BusyBefore    float64    `json:"busy_cores_before"` // cores in use just before the phase, the bench idle
	HostCPU       float64    `json:"host_cpu_s"`        // every process on the machine
	OtherCPU      float64    `json:"other_cpu_s"`       // host minus the worker/server/brokers/bench/kcat: outside load
	WorkerPeakRSS int64      `json:"worker_peak_rss_bytes,omitempty"`
	GoHeapPeak    int64      `json:"go_heap_peak_bytes,omitempty"` // in-process phases: peak Go heap above the bench's own
	Breakdown     *Breakdown `json:"breakdown,omitempty"`          // kbr phases: from the Temporal history
	Orchestration *OrchStats `json:"orchestration,omitempty"`      // the orchestration group (orchestration.go)
	Disturbed     bool       `json:"disturbed,omitempty"`          // other work took more than -max-other of the CPUs during it
	Error         string     `json:"error,omitempty"`
	Notes         []string   `json:"notes,omitempty"`
}

// Ratio is a headline figure against its target.
type Ratio struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Target string  `json:"target,omitempty"`
	Met    *bool   `json:"met,omitempty"`
}

// Results is bench/results/latest.json.
type Results struct {
	StartedAt  time.Time         `json:"started_at"`
	Seconds    float64           `json:"seconds"`
	Command    []string          `json:"command"`
	Host       map[string]any    `json:"host"`
	Git        map[string]any    `json:"git"`
	Setup      map[string]any    `json:"setup"`
	Phases     []*Phase          `json:"phases"`
	Summary    []*Phase          `json:"summary"` // median over reps, by name
	Ratios     []Ratio           `json:"ratios"`
	Profiles   map[string]string `json:"profiles,omitempty"`
	Warnings   []string          `json:"warnings,omitempty"`
	ResultFile string            `json:"-"`
}

type bench struct {
	root, tmp     string
	runID         string
	env           map[string]string
	zk, kraft     cluster
	zkCl          *kgo.Client
	zkAdm         *kadm.Client
	kraftCl       *kgo.Client
	kraftAdm      *kadm.Client
	zkPIDs        []int
	kraftPIDs     []int
	kbr           *kbrProcs
	tc            client.Client
	data          *dataset
	topic         string
	topicID       [16]byte
	starts        []int64
	ends          []int64
	res           *Results
	mu            sync.Mutex
	ownTopics     []string // on KRaft, deleted at the end
	freshWorker   bool
	extraNone     bool
	quietCPU      float64
	quietWait     time.Duration
	lastBusy      float64 // cores busy just before the current phase
	ctx           context.Context
	only          map[string]bool // nil: every group
	maxOther      float64
	retries       int
	samples       map[string]int
	bufferedBytes int // producer MaxBufferedBytes of the franz-go produce // per summary row: measurements the median is taken over
	topicOnDisk   int64
	flagFresh     bool
	partitions    int
	rf            int
	srcComp       string
	partRecs      [][]int32 // per partition, its records' indexes in data.recs (incremental group)
	// srcTS and srcNoTS digest the source topic (topicDigests), once.
	srcTS, srcNoTS digests
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[bench %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 256 {
			return nil, fmt.Errorf("%q: want numbers 1..256 separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func sizeLabel(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return strconv.FormatInt(n, 10)
}

func main() { os.Exit(run()) }

func run() int {
	var (
		sizeS      = flag.String("size", "1GiB", "payload size of the source topic (key+value+headers), e.g. 256MiB, 1GiB")
		fresh      = flag.Bool("fresh", false, "delete and re-produce the source topic even when it already holds the expected records")
		partitions = flag.Int("partitions", 12, "partitions of the source topic")
		rf         = flag.Int("rf", 1, "replication factor of the source topic (1 keeps the 2-core stack from measuring replication)")
		parS       = flag.String("parallelism", "4,12", "kbr backup options.parallelism values to measure (the first is the headline)")
		rparS      = flag.String("restore-parallelism", "4,12", "kbr restore options.parallelism values to measure (the first is the headline)")
		srcComp    = flag.String("src-compression", "none", "producer compression of the source topic: none, lz4, zstd, snappy")
		partBytes  = flag.String("raw-fetch-partition-bytes", "8MiB", "franz-go consumer FetchMaxPartitionBytes (kbr's export fetches 8MiB per partition)")
		withKcat   = flag.Bool("kcat", true, "measure kcat consume for reference")
		quietCPU   = flag.Float64("quiet-cpu", 0.6, "before each phase, wait until the machine uses at most this many cores while the bench idles (the stack alone uses ~0.2)")
		quietWait  = flag.Duration("quiet-wait", 3*time.Minute, "how long to wait for a quiet machine before each phase (0: do not wait)")
		maxOther   = flag.Float64("max-other", 0.15, "a measurement during which other work used more than this share of the CPUs is flagged disturbed and measured again")
		retries    = flag.Int("retries", 2, "how many times to measure a disturbed phase again")
		bufBytes   = flag.String("producer-buffered-bytes", "64MiB", "kgo MaxBufferedBytes of the franz-go produce (the in-process restore uses activities.RestorePartition's own setting)")
		only       = flag.String("only", "", "run only these measurement groups, comma-separated: consume, floor, kcat, backup, produce, restore, overhead, incremental, orchestration (restore needs backup; default: all)")
		freshW     = flag.Bool("fresh-worker", true, "start a new kbr worker process before every kbr phase, so each peak RSS is that phase's own")
		extraNone  = flag.Bool("backup-none", true, "also measure the headline backup with options.compression: zstd (what compressing again costs)")
		reps       = flag.Int("reps", 3, "repeat every measurement this many times (the summary takes the median)")
		warm       = flag.Bool("warm", true, "read the source topic once before measuring, so every reader finds it in the page cache")
		overhead   = flag.Bool("overhead", true, "measure kbr's fixed cost on a tiny topic (1000 records) first")
		keep       = flag.Bool("keep", false, "keep the temp dir (kbr binary, configs, logs, backups)")
		cpuprof    = flag.String("cpuprofile", os.Getenv("KBR_CPUPROFILE"), "also run kdata export/restore in-process under a CPU profile written to <file>.export.pprof and <file>.restore.pprof (env KBR_CPUPROFILE)")
		out        = flag.String("out", "bench/results/latest.json", "where to write the figures (relative to the repo root)")
		rootFlag   = flag.String("root", "", "kbr checkout (default: found from the working directory)")
		timeout    = flag.Duration("timeout", 3*time.Hour, "give up after this long")
	)
	flag.Parse()
	size, err := config.ParseByteSize(*sizeS)
	if err != nil || size < 1<<20 {
		fmt.Fprintf(os.Stderr, "bench: -size %s: want at least 1MiB (%v)\n", *sizeS, err)
		return 2
	}
	pars, err := parseInts(*parS)
	if err != nil || len(pars) == 0 {
		fmt.Fprintf(os.Stderr, "bench: -parallelism: %v\n", err)
		return 2
	}
	rpars, err := parseInts(*rparS)
	if err != nil || len(rpars) == 0 {
		fmt.Fprintf(os.Stderr, "bench: -restore-parallelism: %v\n", err)
		return 2
	}
	if _, err := compressionCodec(*srcComp); err != nil {
		fmt.Fprintf(os.Stderr, "bench: -src-compression: %v\n", err)
		return 2
	}
	pb, err := config.ParseByteSize(*partBytes)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: -raw-fetch-partition-bytes: %v\n", err)
		return 2
	}
	bb, err := config.ParseByteSize(*bufBytes)
	if err != nil || bb < 1<<20 {
		fmt.Fprintf(os.Stderr, "bench: -producer-buffered-bytes %s: want at least 1MiB\n", *bufBytes)
		return 2
	}
	if *partitions < 1 || *partitions > 1000 || *rf < 1 || *reps < 1 {
		fmt.Fprintln(os.Stderr, "bench: -partitions, -rf and -reps must be positive")
		return 2
	}
	root := *rootFlag
	if root == "" {
		if root, err = repoRoot("."); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 2
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	b := &bench{samples: map[string]int{}, bufferedBytes: int(bb), root: root, runID: strconv.FormatInt(time.Now().Unix(), 36), flagFresh: *fresh, freshWorker: *freshW, extraNone: *extraNone, quietCPU: *quietCPU, quietWait: *quietWait, maxOther: *maxOther, retries: *retries, partitions: *partitions, rf: *rf}
	b.res = &Results{StartedAt: time.Now().UTC(), Command: os.Args, Profiles: map[string]string{}}
	outPath := *out
	if !filepath.IsAbs(outPath) {
		outPath = filepath.Join(root, outPath)
	}
	b.res.ResultFile = outPath

	b.ctx = ctx
	if *only != "" {
		b.only = map[string]bool{}
		for _, g := range strings.Split(*only, ",") {
			g = strings.TrimSpace(g)
			switch g {
			case "consume", "floor", "kcat", "backup", "produce", "restore", "overhead", "incremental", "orchestration":
				b.only[g] = true
			default:
				fmt.Fprintf(os.Stderr, "bench: -only %s: unknown group %q\n", *only, g)
				return 2
			}
		}
		if b.only["restore"] {
			b.only["backup"] = true
		}
	}
	err = b.main(ctx, int64(size), pars, rpars, *srcComp, int32(pb), *withKcat, *extraNone, *reps, *warm, *overhead, *cpuprof)
	b.cleanup(*keep)
	b.res.Seconds = time.Since(b.res.StartedAt).Seconds()
	b.summarize(pars, rpars)
	b.print()
	if werr := b.write(); werr != nil {
		logf("write results: %v", werr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: FAILED:", err)
		return 1
	}
	return 0
}

func (b *bench) want(group string) bool { return b.only == nil || b.only[group] }

func (b *bench) warn(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	logf("WARNING: %s", msg)
	b.mu.Lock()
	b.res.Warnings = append(b.res.Warnings, msg)
	b.mu.Unlock()
}

func (b *bench) main(ctx context.Context, size int64, pars, rpars []int, srcComp string, partBytes int32,
	withKcat, extraNone bool, reps int, warm, overhead bool, cpuprof string) error {
	// 1. The stack, its addresses, kbr.
	logf("deploy/stack.sh up")
	if err := stackUp(ctx, b.root); err != nil {
		return fmt.Errorf("deploy/stack.sh up: %w", err)
	}
	env, err := readStackEnv(filepath.Join(b.root, "deploy", "local", "stack.env"))
	if err != nil {
		return fmt.Errorf("stack env: %w", err)
	}
	b.env = env
	need := func(k string) string {
		if env[k] == "" {
			err = fmt.Errorf("deploy/local/stack.env has no %s", k)
		}
		return env[k]
	}
	b.zk = cluster{name: "bench-zk", bootstrap: strings.Split(need("KBR_ZKMODE_BOOTSTRAP"), ","),
		zkConnect: need("KBR_ZK_CONNECT"), zkChroot: need("KBR_ZK_CHROOT")}
	b.kraft = cluster{name: "bench-kraft", bootstrap: strings.Split(need("KBR_KRAFT_BOOTSTRAP"), ",")}
	if err != nil {
		return err
	}
	pids := stackPIDs(ctx, b.root)
	for name, pid := range pids {
		switch {
		case strings.HasPrefix(name, "zk") && name != "zk":
			b.zkPIDs = append(b.zkPIDs, pid)
		case strings.HasPrefix(name, "kraft"):
			b.kraftPIDs = append(b.kraftPIDs, pid)
		}
	}
	if _, err := exec.LookPath("kcat"); err != nil && withKcat {
		b.warn("kcat not installed (make bench installs it with apt-get); kcat consume skipped")
		withKcat = false
	}
	b.tmp, err = os.MkdirTemp("", "kbr-bench-")
	if err != nil {
		return err
	}
	logf("temp dir %s", b.tmp)
	b.hostInfo(env)

	logf("go build -o %s/kbr ./cmd/kbr", b.tmp)
	kbrBin := filepath.Join(b.tmp, "kbr")
	if err := buildKbr(ctx, b.root, kbrBin); err != nil {
		return fmt.Errorf("build kbr: %w", err)
	}

	if b.zkCl, b.zkAdm, err = newAdmin(b.zk.bootstrap); err != nil {
		return err
	}
	if b.kraftCl, b.kraftAdm, err = newAdmin(b.kraft.bootstrap); err != nil {
		return err
	}
	if stale, err := deletePrefixed(ctx, b.kraftAdm, "kbr-bench-"); err != nil {
		b.warn("deleting leftovers of an earlier run on the KRaft cluster: %v", err)
	} else if len(stale) > 0 {
		logf("deleted %d leftover topics of an earlier run on the KRaft cluster: %v", len(stale), stale)
	}

	// 2. The records and the source topic (not for the orchestration group alone).
	needSrc := cpuprof != ""
	for _, g := range []string{"consume", "floor", "kcat", "backup", "produce", "restore", "incremental"} {
		needSrc = needSrc || b.want(g)
	}
	if needSrc {
		logf("generating %s of records in memory", sizeLabel(size))
		t0 := time.Now()
		b.data = generate(size, b.partitions, 0x6b6272)
		logf("generated %d records, %d payload bytes in %s", len(b.data.recs), b.data.payload, time.Since(t0).Round(time.Millisecond))
		b.topic = fmt.Sprintf("kbr-bench-src-%s-p%d-rf%d-%s", sizeLabel(size), b.partitions, b.rf, srcComp)
		b.srcComp = srcComp
		if err := b.ensureSource(ctx, srcComp); err != nil {
			return err
		}
		b.res.Setup = map[string]any{
			"source_cluster":          "ZooKeeper-mode Kafka " + env["KBR_ZKMODE_VERSION"] + " (3 brokers) " + env["KBR_ZKMODE_BOOTSTRAP"],
			"target_cluster":          "KRaft Kafka " + env["KBR_KRAFT_VERSION"] + " (1 broker) " + env["KBR_KRAFT_BOOTSTRAP"],
			"source_topic":            b.topic,
			"partitions":              b.partitions,
			"replication_factor":      b.rf,
			"replication_note":        "RF " + strconv.Itoa(b.rf) + " for the benchmark (production topics usually have RF 3)",
			"records":                 len(b.data.recs),
			"payload_bytes":           b.data.payload,
			"payload_definition":      "key + value + header keys + header values; MB = 10^6 bytes",
			"avg_record_payload":      float64(b.data.payload) / float64(len(b.data.recs)),
			"source_compression":      srcComp,
			"kbr_backup_options":      map[string]any{"parallelism": pars, "segment_bytes": "64MiB (default)", "compression": "none (default; zstd measured once)", "fetch_max_bytes": "16MiB (default)", "unit_bytes": "1GiB (default)", "min_free_bytes": "1GiB"},
			"kbr_restore_options":     map[string]any{"parallelism": rpars, "producer_compression": "keep (default)"},
			"franz_go_consumer":       map[string]any{"fetch_max_partition_bytes": partBytes, "isolation": "read_committed", "clients": 1},
			"franz_go_producer":       fmt.Sprintf("idempotent, acks=all, manual partitioner, linger 5ms, MaxBufferedBytes %s, batch max = topic max.message.bytes, no compression (kbr's restore settings), 1 client", config.ByteSize(b.bufferedBytes)),
			"page_cache":              "the source topic is read once before measuring (-warm) so every reader finds it cached",
			"kbr_numbers_are":         "wall time of the kbr CLI command, workflow steps included (preflight, cut, manifest / verify, create topics)",
			"warm_read_before_phases": warm,
		}
	}

	// 3. kbr server and worker.
	logf("starting kbr server --no-worker and kbr worker")
	if b.kbr, err = startKbr(ctx, kbrBin, b.tmp); err != nil {
		return err
	}
	logf("kbr server at %s (pid %d), worker pid %d", b.kbr.addr, b.kbr.server.pid(), b.kbr.worker.pid())
	if b.tc, err = dialTemporal(ctx, b.kbr.addr); err != nil {
		b.warn("no Temporal client for the history breakdown: %v", err)
	}
	backupDir := filepath.Join(b.tmp, "backups")

	if overhead && b.want("overhead") {
		if err := b.overhead(ctx, backupDir); err != nil {
			return err
		}
	}
	if warm && needSrc {
		logf("warm read of %s (not measured)", b.topic)
		if _, err := rawConsume(ctx, b.zk.bootstrap, b.topic, b.starts, b.ends, partBytes); err != nil {
			return fmt.Errorf("warm read: %w", err)
		}
	}

	// 4. The measurements.
	for rep := 1; rep <= reps; rep++ {
		if b.want("consume") {
			if err := b.undisturbed(func() error { return b.consumeRaw(ctx, rep, partBytes) }); err != nil {
				return err
			}
		}
		if b.want("floor") {
			if err := b.undisturbed(func() error { return b.consumeToFile(ctx, rep, partBytes) }); err != nil {
				return err
			}
		}
		if withKcat && b.want("kcat") {
			if err := b.undisturbed(func() error { return b.consumeKcat(ctx, rep) }); err != nil {
				return err
			}
		}
		for _, p := range pars {
			if !b.want("backup") {
				break
			}
			if err := b.undisturbed(func() error { return b.backupKbr(ctx, rep, p, "none", backupDir) }); err != nil {
				return err
			}
		}
		if extraNone && b.want("backup") {
			if err := b.undisturbed(func() error { return b.backupKbr(ctx, rep, pars[0], "zstd", backupDir) }); err != nil {
				return err
			}
		}
		if b.want("produce") {
			if err := b.undisturbed(func() error { return b.produceRaw(ctx, rep) }); err != nil {
				return err
			}
		}
		for _, p := range rpars {
			if !b.want("restore") {
				break
			}
			if err := b.undisturbed(func() error { return b.restoreKbr(ctx, rep, p, pars[0], backupDir) }); err != nil {
				return err
			}
		}
		if b.want("incremental") {
			if err := b.incremental(ctx, rep, pars[0]); err != nil {
				return err
			}
		}
	}
	if cpuprof != "" {
		if !filepath.IsAbs(cpuprof) {
			cpuprof = filepath.Join(b.root, cpuprof)
		}
		if err := os.MkdirAll(filepath.Dir(cpuprof), 0o755); err != nil {
			return err
		}
		if err := b.inproc(ctx, pars[0], rpars[0], cpuprof); err != nil {
			return err
		}
	}
	if b.want("orchestration") {
		if err := b.orchestration(ctx, pars[0], rpars[0]); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) hostInfo(env map[string]string) {
	mem := ""
	if m, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.TrimSpace(strings.SplitN(string(m), "\n", 2)[0])
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	b.res.Host = map[string]any{"cpus": runtime.NumCPU(), "mem": mem, "go": runtime.Version(),
		"kernel": strings.TrimSpace(string(kernel)), "kafka_zk_mode": env["KBR_ZKMODE_VERSION"], "kafka_kraft": env["KBR_KRAFT_VERSION"]}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.res.Host["loadavg_at_start"] = strings.TrimSpace(string(load))
	}
	git := map[string]any{}
	if o, err := exec.Command("git", "-C", b.root, "rev-parse", "HEAD").Output(); err == nil {
		git["commit"] = strings.TrimSpace(string(o))
	}
	if o, err := exec.Command("git", "-C", b.root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil {
		git["dirty"] = len(strings.TrimSpace(string(o))) > 0
	}
	b.res.Git = git
}

// ensureSource reuses the source topic when it holds the generated records
// per partition, else (re)creates it and produces them. The incremental
// group appends records and then deletes as many from the head, so a reused
// topic may start past offset 0; one that holds more (an interrupted
// incremental group's appends) is trimmed back the same way.
func (b *bench) ensureSource(ctx context.Context, srcComp string) error {
	counts, starts, err := topicCounts(ctx, b.zkAdm, b.topic)
	if err != nil {
		return fmt.Errorf("source topic %s: %w", b.topic, err)
	}
	reuse := counts != nil && !b.flagFresh && len(counts) == b.partitions
	for p := 0; reuse && p < len(counts); p++ {
		reuse = counts[p] >= b.data.perPart[p]
	}
	if reuse && sum(counts) > int64(len(b.data.recs)) {
		logf("source topic %s holds %d records more than generated (an interrupted incremental group's appends): deleting as many from the head", b.topic, sum(counts)-int64(len(b.data.recs)))
		if err := b.trimSource(ctx); err != nil {
			return fmt.Errorf("source topic %s: %w", b.topic, err)
		}
		if counts, starts, err = topicCounts(ctx, b.zkAdm, b.topic); err != nil {
			return err
		}
	}
	if reuse {
		logf("source topic %s exists with the expected %d records: reused (-fresh recreates it)", b.topic, len(b.data.recs))
	} else {
		if counts != nil {
			logf("source topic %s: recreating (fresh=%v, %d records found, %d expected)", b.topic, b.flagFresh, sum(counts), len(b.data.recs))
			if err := deleteTopics(ctx, b.zkAdm, b.topic); err != nil {
				return err
			}
		}
		if err := createTopic(ctx, b.zkAdm, b.topic, int32(b.partitions), int16(b.rf),
			map[string]*string{"retention.ms": kadm.StringPtr("-1")}); err != nil {
			return err
		}
		codec, _ := compressionCodec(srcComp)
		ph := &Phase{Name: "initial load (franz-go produce, ZK-mode)", Tool: "franz-go", Op: "load", Rep: 0,
			Records: int64(len(b.data.recs)), PayloadBytes: b.data.payload}
		logf("producing %d records (%.0f MB) into %s", len(b.data.recs), float64(b.data.payload)/1e6, b.topic)
		err := b.measure(ph, b.zkPIDs, false, func(ph *Phase) error {
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.zk.bootstrap...), kgo.ClientID("kbr-bench-load"),
				kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(10*time.Millisecond),
				kgo.MaxBufferedBytes(256<<20), kgo.MaxBufferedRecords(1<<20),
				kgo.ProducerBatchCompression(codec), kgo.RecordDeliveryTimeout(5*time.Minute))
			if err != nil {
				return err
			}
			defer cl.Close()
			return produceAll(ctx, cl, b.data, b.topic, b.data.recs)
		})
		if err != nil {
			return fmt.Errorf("produce %s: %w", b.topic, err)
		}
		if counts, starts, err = topicCounts(ctx, b.zkAdm, b.topic); err != nil {
			return err
		}
		for p := range counts {
			if counts[p] != b.data.perPart[p] || starts[p] != 0 {
				return fmt.Errorf("source topic %s[%d]: %d records after producing, want %d", b.topic, p, counts[p], b.data.perPart[p])
			}
		}
	}
	b.starts = starts
	b.ends = make([]int64, len(counts))
	for p := range counts {
		b.ends[p] = starts[p] + counts[p]
	}
	td, err := b.zkAdm.ListTopics(ctx, b.topic)
	if err != nil {
		return err
	}
	b.topicID = td[b.topic].ID
	if sizes := b.logDirSize(ctx); sizes > 0 {
		logf("source topic on disk: %.0f MB (one replica)", float64(sizes)/1e6)
		b.topicOnDisk = sizes
	}
	return nil
}

func (b *bench) logDirSize(ctx context.Context) int64 {
	dirs, err := b.zkAdm.DescribeAllLogDirs(ctx, kadm.TopicsSet{b.topic: {}})
	if err != nil {
		return 0
	}
	per := map[int32]int64{}
	dirs.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if p.Topic == b.topic {
				per[p.Partition] = max(per[p.Partition], p.Size)
			}
		})
	})
	var s int64
	for _, v := range per {
		s += v
	}
	return s
}

// measure times fn and collects CPU and the kbr worker's peak RSS.
func (b *bench) measure(ph *Phase, brokers []int, kbrPhase bool, fn func(ph *Phase) error) error {
	if kbrPhase && b.kbr != nil && b.freshWorker {
		if err := b.kbr.restartWorker(context.Background()); err != nil {
			return fmt.Errorf("restart kbr worker: %w", err)
		}
		b.pause() // let its start-up finish
	}
	ph.BusyBefore = b.lastBusy
	var wpid, spid int
	if kbrPhase && b.kbr != nil {
		wpid, spid = b.kbr.worker.pid(), b.kbr.server.pid()
		if err := resetPeakRSS(wpid); err != nil {
			ph.Notes = append(ph.Notes, "could not reset VmHWM: "+err.Error())
		}
	}
	w0, s0, b0, self0, h0 := procCPU(wpid), procCPU(spid), sumCPU(brokers), selfCPU(), hostBusyCPU()
	var cli0 float64
	if b.kbr != nil {
		cli0 = b.kbr.cliCPU
	}
	var (
		maxRSS int64
		wg     sync.WaitGroup
	)
	stop := make(chan struct{})
	heap0 := goHeap()
	var maxHeap int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if wpid != 0 {
				maxRSS = max(maxRSS, procStatusBytes(wpid, "VmRSS"))
			} else {
				maxHeap = max(maxHeap, goHeap())
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	start := time.Now()
	err := fn(ph)
	if ph.Seconds == 0 {
		ph.Seconds = time.Since(start).Seconds()
	}
	close(stop)
	wg.Wait()
	ph.HostCPU = hostBusyCPU() - h0
	selfUsed := selfCPU() - self0
	known := selfUsed
	if ph.ReaderCPU == 0 {
		if wpid != 0 {
			ph.ReaderCPU = procCPU(wpid) - w0
			known += ph.ReaderCPU
		} else {
			ph.ReaderCPU = selfUsed
		}
	} else {
		known += ph.ReaderCPU // kcat
	}
	if spid != 0 {
		ph.ServerCPU = procCPU(spid) - s0
	}
	ph.BrokerCPU = sumCPU(brokers) - b0
	known += ph.ServerCPU + ph.BrokerCPU
	if b.kbr != nil {
		known += b.kbr.cliCPU - cli0 // the kbr CLI command is part of the phase, not outside load
	}
	ph.OtherCPU = max(0, ph.HostCPU-known)
	if wpid != 0 {
		ph.WorkerPeakRSS = max(procStatusBytes(wpid, "VmHWM"), maxRSS)
	} else if ph.Tool != "kcat" {
		ph.GoHeapPeak = max(0, maxHeap-heap0)
	}
	if ph.Seconds > 0 {
		ph.MBps = float64(ph.PayloadBytes) / 1e6 / ph.Seconds
		ph.RecordsPerS = float64(ph.Records) / ph.Seconds
	}
	if err != nil {
		ph.Error = err.Error()
	}
	b.mu.Lock()
	b.res.Phases = append(b.res.Phases, ph)
	b.mu.Unlock()
	if err == nil {
		line := fmt.Sprintf("%-34s %7.2fs  %8.1f MB/s  %9.0f rec/s  cpu %.1fs", ph.Name, ph.Seconds, ph.MBps, ph.RecordsPerS, ph.ReaderCPU)
		if ph.WorkerPeakRSS > 0 {
			line += fmt.Sprintf("  worker peak RSS %.0f MiB", float64(ph.WorkerPeakRSS)/(1<<20))
		}
		logf("%s", line)
	}
	return err
}

// goHeap is the bytes of live and not yet swept heap objects, without stopping the world.
func goHeap() int64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(sample[0].Value.Uint64())
}

func (b *bench) checkCount(ph *Phase, what string, records, payload int64) {
	if records != int64(len(b.data.recs)) {
		ph.Notes = append(ph.Notes, fmt.Sprintf("%s: %d records, want %d", what, records, len(b.data.recs)))
		b.warn("%s: %s: %d records, want %d", ph.Name, what, records, len(b.data.recs))
	}
	if payload >= 0 && payload != b.data.payload {
		ph.Notes = append(ph.Notes, fmt.Sprintf("%s: %d payload bytes, want %d", what, payload, b.data.payload))
		b.warn("%s: %s: %d payload bytes, want %d", ph.Name, what, payload, b.data.payload)
	}
}

// undisturbed runs a measurement again (up to -retries times) when other
// work on the machine took more than -max-other of its CPUs meanwhile; the
// disturbed samples stay in the JSON, flagged, and out of the summary.
func (b *bench) undisturbed(fn func() error) error {
	for try := 0; ; try++ {
		n := len(b.res.Phases)
		if err := fn(); err != nil {
			return err
		}
		if len(b.res.Phases) == n {
			return nil
		}
		ph := b.res.Phases[len(b.res.Phases)-1]
		share := ph.OtherCPU / (ph.Seconds * float64(runtime.NumCPU()))
		if ph.Seconds <= 0 || share <= b.maxOther {
			return nil
		}
		ph.Disturbed = true
		if try >= b.retries {
			b.warn("%s (rep %d): other work used %.0f%% of the CPUs during it and %d retries did not help: kept, flagged disturbed", ph.Name, ph.Rep, share*100, b.retries)
			return nil
		}
		logf("%s: other work used %.0f%% of the CPUs meanwhile (-max-other %.0f%%): measuring again", ph.Name, share*100, b.maxOther*100)
	}
}

// pause lets the brokers settle between phases and, on a shared machine,
// waits (up to -quiet-wait) until other work leaves the CPUs alone.
func (b *bench) pause() {
	sleep := func(d time.Duration) bool {
		select {
		case <-b.ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	if !sleep(time.Second) {
		return
	}
	deadline := time.Now().Add(b.quietWait)
	waited := false
	for {
		h0 := hostBusyCPU()
		if !sleep(time.Second) {
			return
		}
		busy := hostBusyCPU() - h0
		b.lastBusy = busy
		if busy <= b.quietCPU || b.quietWait <= 0 {
			if waited {
				logf("machine quiet again (%.2f cores busy)", busy)
			}
			return
		}
		if time.Now().After(deadline) {
			b.warn("the machine stayed busy (%.2f cores in use while the bench idled, threshold %.2f): the next figure is disturbed", busy, b.quietCPU)
			return
		}
		if !waited {
			logf("waiting for the machine to calm down: %.2f cores busy while the bench idles (threshold %.2f, -quiet-wait %s)", busy, b.quietCPU, b.quietWait)
			waited = true
		}
	}
}

func (b *bench) consumeRaw(ctx context.Context, rep int, partBytes int32) error {
	b.pause()
	ph := &Phase{Name: "franz-go consume", Tool: "franz-go", Op: "consume", Rep: rep,
		Records: int64(len(b.data.recs)), PayloadBytes: b.data.payload}
	return b.measure(ph, b.zkPIDs, false, func(ph *Phase) error {
		ws := &wireStats{}
		c, err := rawConsume(ctx, b.zk.bootstrap, b.topic, b.starts, b.ends, partBytes, ws.hook())
		if err == nil {
			b.checkCount(ph, "consumed", c.records, c.payload)
			ph.Notes = append(ph.Notes, ws.String())
		}
		return err
	})
}

// floorName is the second reference: what any backup must do at least.
const floorName = "franz-go consume + file + SHA-256"

// consumeToFile is a plain franz-go consumer that writes every record it
// fetched (key, value, header keys and values) to a file in the backup
// target's directory, hashing it with SHA-256 on the way, and syncs it:
// the floor of any backup's work on this machine.
func (b *bench) consumeToFile(ctx context.Context, rep int, partBytes int32) error {
	b.pause()
	ph := &Phase{Name: floorName, Tool: "franz-go", Op: "consume", Rep: rep,
		Records: int64(len(b.data.recs)), PayloadBytes: b.data.payload,
		Notes: []string{"one kgo client, read_committed; bufio 1 MiB to a LocalDir file with SHA-256, fsync at the end"}}
	dir := filepath.Join(b.tmp, "floor")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return b.measure(ph, b.zkPIDs, false, func(ph *Phase) error {
		name := filepath.Join(dir, fmt.Sprintf("rep-%d.bin", rep))
		defer os.Remove(name)
		f, err := os.Create(name)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
		var werr error
		each := func(r *kgo.Record) {
			if werr != nil {
				return
			}
			_, werr = w.Write(r.Key)
			if werr == nil {
				_, werr = w.Write(r.Value)
			}
			for _, hd := range r.Headers {
				if werr == nil {
					_, werr = w.WriteString(hd.Key)
				}
				if werr == nil {
					_, werr = w.Write(hd.Value)
				}
			}
		}
		c, err := rawConsumeEach(ctx, b.zk.bootstrap, b.topic, b.starts, b.ends, partBytes, each)
		if err == nil {
			err = werr
		}
		if err == nil {
			err = w.Flush()
		}
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			return err
		}
		b.checkCount(ph, "consumed", c.records, c.payload)
		ph.Notes = append(ph.Notes, "sha256 "+hex.EncodeToString(h.Sum(nil))[:16]+"…")
		return nil
	})
}

func (b *bench) consumeKcat(ctx context.Context, rep int) error {
	b.pause()
	ph := &Phase{Name: "kcat consume", Tool: "kcat", Op: "consume", Rep: rep,
		Records: int64(len(b.data.recs)), PayloadBytes: b.data.payload,
		Notes: []string{"kcat -C -e -q -o beginning, whole topic, to /dev/null (librdkafka defaults, read_committed)"}}
	return b.measure(ph, b.zkPIDs, false, func(ph *Phase) error {
		cpu, err := kcatConsume(ctx, strings.Join(b.zk.bootstrap, ","), b.topic)
		ph.ReaderCPU = cpu
		return err
	})
}

func (b *bench) backupKbr(ctx context.Context, rep, par int, compression, backupDir string) error {
	b.pause()
	task, name := fmt.Sprintf("bench-p%d", par), fmt.Sprintf("kbr backup p%d", par)
	if compression != "none" {
		task += "-" + compression
		name += " compression " + compression
	}
	ph := &Phase{Name: name, Tool: "kbr", Op: "backup", Parallelism: par, Rep: rep,
		Records: int64(len(b.data.recs)), PayloadBytes: b.data.payload}
	return b.measure(ph, b.zkPIDs, true, func(ph *Phase) error {
		res, dur, err := b.kbr.backup(ctx, fmt.Sprintf("%s-r%d", task, rep), backupYAML(b.zk, task, b.topic, backupDir, par, compression))
		ph.Seconds = dur.Seconds()
		if err != nil {
			return err
		}
		b.breakdown(ctx, ph, res.WorkflowID)
		if compression != "none" && res.Result.TaskDir != "" {
			// A diagnostic backup nothing restores: free its disk at once.
			defer os.RemoveAll(filepath.Join(backupDir, res.Result.TaskDir))
		}
		t := res.Result.Totals
		ph.FileBytes = t.Bytes
		payload := t.PayloadBytes
		if payload == 0 {
			payload = -1 // format 2 stores batches and does not count payload bytes
		}
		b.checkCount(ph, "backed up", t.Records, payload)
		ph.Notes = append(ph.Notes, fmt.Sprintf("%s: %d files, %.1f MB on disk, payload/file %.2fx", res.Result.RecoveryPoint, t.Files, float64(t.Bytes)/1e6, float64(t.PayloadBytes)/float64(max(t.Bytes, 1))))
		return nil
	})
}

func (b *bench) produceRaw(ctx context.Context, rep int) error {
	dst := fmt.Sprintf("kbr-bench-rawprod-%s-r%d", b.runID, rep)
	if err := b.createKraftTopic(ctx, dst, int32(b.partitions)); err != nil {
		return err
	}
	batchMax := maxMessageBytes(ctx, b.kraftAdm, dst)
	b.pause()
	ph := &Phase{Name: "franz-go produce", Tool: "franz-go", Op: "produce", Rep: rep,
		Records: int64(len(b.data.recs)), PayloadBytes: b.data.payload,
		Notes: []string{fmt.Sprintf("into %s on KRaft, batch max %d", dst, batchMax)}}
	ws := &wireStats{}
	err := b.measure(ph, b.kraftPIDs, false, func(ph *Phase) error {
		// kbr's client and the producer options of activities.RestorePartition.
		cl, err := kclient.New(config.Cluster{Name: b.kraft.name, BootstrapServers: b.kraft.bootstrap},
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerBatchMaxBytes(batchMax),
			kgo.MaxBufferedBytes(b.bufferedBytes),
			kgo.ProducerLinger(5*time.Millisecond),
			kgo.ProducerBatchCompression(kgo.NoCompression()),
			ws.hook(),
		)
		if err != nil {
			return err
		}
		defer cl.Close()
		if err := produceAll(ctx, cl, b.data, dst, b.data.recs); err != nil {
			return err
		}
		ph.Notes = append(ph.Notes, ws.String())
		return nil
	})
	if err != nil {
		return err
	}
	b.checkTarget(ctx, ph, dst, false)
	return b.dropKraftTopic(ctx, dst)
}

func (b *bench) restoreKbr(ctx context.Context, rep, par, fromPar int, backupDir string) error {
	dst := fmt.Sprintf("kbr-bench-restored-p%d-%s-r%d", par, b.runID, rep)
	b.mu.Lock()
	b.ownTopics = append(b.ownTopics, dst)
	b.mu.Unlock()
	b.pause()
	ph := &Phase{Name: fmt.Sprintf("kbr restore p%d", par), Tool: "kbr", Op: "restore", Parallelism: par, Rep: rep,
		Records: int64(len(b.data.recs)), PayloadBytes: b.data.payload,
		Notes: []string{fmt.Sprintf("latest recovery point of task bench-p%d into %s on KRaft", fromPar, dst)}}
	err := b.measure(ph, b.kraftPIDs, true, func(ph *Phase) error {
		res, dur, err := b.kbr.restore(ctx, fmt.Sprintf("restore-p%d-r%d", par, rep),
			restoreYAML(b.kraft, backupDir, fmt.Sprintf("bench-p%d", fromPar), b.topic, dst, par))
		ph.Seconds = dur.Seconds()
		if err != nil {
			return err
		}
		b.breakdown(ctx, ph, res.WorkflowID)
		ph.Notes = append(ph.Notes, fmt.Sprintf("%d batches produced as stored, %d rebuilt, %d sent again (retry rounds)",
			res.Result.RawBatches, res.Result.Rebuilt, res.Result.Resent))
		b.checkCount(ph, "restored (workflow result)", res.Result.Records, -1)
		return nil
	})
	if err != nil {
		return err
	}
	b.checkTarget(ctx, ph, dst, true)
	return b.dropKraftTopic(ctx, dst)
}

// breakdown reads where the run's time went from its Temporal history.
func (b *bench) breakdown(ctx context.Context, ph *Phase, workflowID string) {
	if b.tc == nil || workflowID == "" {
		return
	}
	bd, err := historyBreakdown(ctx, b.tc, workflowID)
	if err != nil {
		ph.Notes = append(ph.Notes, "no history breakdown: "+err.Error())
		return
	}
	ph.Breakdown = bd
	ph.Notes = append(ph.Notes, fmt.Sprintf("CLI %.2fs = %s\n      (CLI start, dial and result: %.2fs)", ph.Seconds, bd, ph.Seconds-bd.WorkflowS))
}

// checkTarget compares a written topic with the source: its record counts,
// then every record by a digest per partition of keys, values, headers in
// offset order, and (restores, withTS) timestamps. Outside the measured
// phase; a difference is a warning in the results.
func (b *bench) checkTarget(ctx context.Context, ph *Phase, topic string, withTS bool) {
	counts, _, err := topicCounts(ctx, b.kraftAdm, topic)
	if err != nil || counts == nil {
		b.warn("%s: cannot count %s: %v", ph.Name, topic, err)
		return
	}
	for p := range counts {
		if p >= len(b.data.perPart) || counts[p] != b.data.perPart[p] {
			b.warn("%s: %s[%d] holds %d records, the source %d", ph.Name, topic, p, counts[p], b.data.perPart[min(p, len(b.data.perPart)-1)])
			return
		}
	}
	if b.srcTS == nil {
		ts, noTS, err := topicDigests(ctx, b.zk.bootstrap, b.topic, b.starts, b.ends)
		if err != nil {
			b.warn("%s: cannot digest the source %s: %v", ph.Name, b.topic, err)
			return
		}
		for p, d := range dataDigests(b.data) {
			if noTS[p] != d {
				b.warn("source %s[%d] does not hold the generated records", b.topic, p)
			}
		}
		b.srcTS, b.srcNoTS = ts, noTS
	}
	ts, noTS, err := topicDigests(ctx, b.kraft.bootstrap, topic, make([]int64, len(counts)), counts)
	if err != nil {
		b.warn("%s: cannot digest %s: %v", ph.Name, topic, err)
		return
	}
	got, want, what := noTS, b.srcNoTS, "keys, values, headers"
	if withTS {
		got, want, what = ts, b.srcTS, "keys, values, headers, timestamps"
	}
	bad := 0
	for p := range got {
		if got[p] != want[p] {
			bad++
			b.warn("%s: %s[%d] differs from the source (%s in offset order)", ph.Name, topic, p, what)
		}
	}
	if bad == 0 {
		ph.Notes = append(ph.Notes, fmt.Sprintf("every record of %s compared with the source by digest (%s in offset order): equal", topic, what))
	}
}

func (b *bench) createKraftTopic(ctx context.Context, topic string, parts int32) error {
	b.mu.Lock()
	b.ownTopics = append(b.ownTopics, topic)
	b.mu.Unlock()
	return createTopic(ctx, b.kraftAdm, topic, parts, 1, map[string]*string{"retention.ms": kadm.StringPtr("-1")})
}

func (b *bench) dropKraftTopic(ctx context.Context, topic string) error {
	if err := deleteTopics(ctx, b.kraftAdm, topic); err != nil {
		b.warn("delete %s: %v", topic, err)
	}
	return nil
}

// overhead runs a backup and a restore of a tiny topic: kbr's fixed cost
// (workflow steps, preflight, topic creation) that every run pays.
func (b *bench) overhead(ctx context.Context, backupDir string) error {
	tiny := "kbr-bench-tiny"
	d := generate(1<<20, 1, 0x74696e79)
	counts, _, err := topicCounts(ctx, b.zkAdm, tiny)
	if err != nil {
		return err
	}
	if counts == nil || len(counts) != 1 || counts[0] != int64(len(d.recs)) {
		if counts != nil {
			if err := deleteTopics(ctx, b.zkAdm, tiny); err != nil {
				return err
			}
		}
		if err := createTopic(ctx, b.zkAdm, tiny, 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("-1")}); err != nil {
			return err
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.zk.bootstrap...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerBatchCompression(kgo.NoCompression()))
		if err != nil {
			return err
		}
		err = produceAll(ctx, cl, d, tiny, d.recs)
		cl.Close()
		if err != nil {
			return err
		}
	}
	n := int64(len(d.recs))
	ph := &Phase{Name: "kbr backup, tiny topic (fixed cost)", Tool: "kbr", Op: "overhead", Parallelism: 4,
		Records: n, PayloadBytes: d.payload, Notes: []string{"1 partition, " + strconv.Itoa(len(d.recs)) + " records: the time is mostly workflow steps"}}
	if err := b.measure(ph, b.zkPIDs, true, func(ph *Phase) error {
		res, dur, err := b.kbr.backup(ctx, "backup-tiny", backupYAML(b.zk, "bench-tiny", tiny, backupDir, 4, "zstd"))
		ph.Seconds = dur.Seconds()
		if err == nil {
			b.breakdown(ctx, ph, res.WorkflowID)
		}
		return err
	}); err != nil {
		return err
	}
	dst := "kbr-bench-tiny-restored-" + b.runID
	b.mu.Lock()
	b.ownTopics = append(b.ownTopics, dst)
	b.mu.Unlock()
	ph = &Phase{Name: "kbr restore, tiny topic (fixed cost)", Tool: "kbr", Op: "overhead", Parallelism: 4,
		Records: n, PayloadBytes: d.payload}
	if err := b.measure(ph, b.kraftPIDs, true, func(ph *Phase) error {
		res, dur, err := b.kbr.restore(ctx, "restore-tiny", restoreYAML(b.kraft, backupDir, "bench-tiny", tiny, dst, 4))
		ph.Seconds = dur.Seconds()
		if err == nil {
			b.breakdown(ctx, ph, res.WorkflowID)
		}
		return err
	}); err != nil {
		return err
	}
	return b.dropKraftTopic(ctx, dst)
}

// inproc runs kdata's export and restore in this process under CPU profiles.
func (b *bench) inproc(ctx context.Context, par, rpar int, prof string) error {
	dir := filepath.Join(b.tmp, "inproc")
	n := int64(len(b.data.recs))
	b.pause()
	exportProf := profilePath(prof, "export")
	ph := &Phase{Name: fmt.Sprintf("kdata export in-process p%d", par), Tool: "kbr-inproc", Op: "backup", Parallelism: par,
		Records: n, PayloadBytes: b.data.payload, Notes: []string{"no Temporal; CPU profile " + exportProf}}
	var (
		st kdata.ExportState
		be *localdir.Dir
	)
	count := func(ph *Phase, st kdata.ExportState) {
		var recs int64
		for i := range st.Records {
			recs += st.Records[i]
		}
		for _, ps := range st.Packs {
			ph.FileBytes += ps.File.Size
		}
		b.checkCount(ph, "exported", recs, -1)
	}
	if err := b.measure(ph, b.zkPIDs, false, func(ph *Phase) error {
		var err error
		ws := &wireStats{}
		st, be, err = inprocExport(ctx, b.zk, b.topic, b.topicID, b.starts, b.ends, dir, backupset.CompressionNone, exportProf, ws)
		if err != nil {
			return err
		}
		ph.Notes = append(ph.Notes, ws.String())
		count(ph, st)
		return nil
	}); err != nil {
		return err
	}
	b.res.Profiles["export"] = exportProf
	b.writeTop(ctx, exportProf)

	if b.extraNone {
		// The same with zstd: what compressing every chunk again costs.
		b.pause()
		zProf := profilePath(prof, "export-zstd")
		ph := &Phase{Name: fmt.Sprintf("kdata export in-process p%d compression zstd", par), Tool: "kbr-inproc", Op: "backup", Parallelism: par,
			Records: n, PayloadBytes: b.data.payload, Notes: []string{"no Temporal; CPU profile " + zProf}}
		zDir := filepath.Join(b.tmp, "inproc-zstd")
		if err := b.measure(ph, b.zkPIDs, false, func(ph *Phase) error {
			ws := &wireStats{}
			st, _, err := inprocExport(ctx, b.zk, b.topic, b.topicID, b.starts, b.ends, zDir, backupset.CompressionZstd, zProf, ws)
			if err != nil {
				return err
			}
			ph.Notes = append(ph.Notes, ws.String())
			count(ph, st)
			return nil
		}); err != nil {
			return err
		}
		os.RemoveAll(zDir)
		b.res.Profiles["export-zstd"] = zProf
		b.writeTop(ctx, zProf)
	}

	b.pause()
	ph = &Phase{Name: "kdata verify in-process (sha256 read)", Tool: "kbr-inproc", Op: "verify",
		Records: n, PayloadBytes: b.data.payload, Notes: []string{"reads every pack file through the SHA-256 check, as the restore's verify step does"}}
	if err := b.measure(ph, nil, false, func(ph *Phase) error {
		read, err := inprocVerify(ctx, be, st)
		ph.FileBytes = read
		return err
	}); err != nil {
		return err
	}

	dst := fmt.Sprintf("kbr-bench-inproc-p%d-%s", rpar, b.runID)
	if err := b.createKraftTopic(ctx, dst, int32(len(st.Next))); err != nil {
		return err
	}
	batchMax := maxMessageBytes(ctx, b.kraftAdm, dst)
	b.pause()
	restoreProf := profilePath(prof, "restore")
	ph = &Phase{Name: fmt.Sprintf("kdata restore in-process p%d", rpar), Tool: "kbr-inproc", Op: "restore", Parallelism: rpar,
		Records: n, PayloadBytes: b.data.payload, Notes: []string{"no Temporal, no verify step; CPU profile " + restoreProf}}
	if err := b.measure(ph, b.kraftPIDs, false, func(ph *Phase) error {
		ws := &wireStats{}
		total, err := inprocRestore(ctx, b.kraft, dst, batchMax, be, st, b.topic, restoreProf, ws)
		if err == nil {
			b.checkCount(ph, "restored", total, -1)
			ph.Notes = append(ph.Notes, ws.String())
		}
		return err
	}); err != nil {
		return err
	}
	b.checkTarget(ctx, ph, dst, true)
	b.res.Profiles["restore"] = restoreProf
	b.writeTop(ctx, restoreProf)
	return b.dropKraftTopic(ctx, dst)
}

// writeTop saves `go tool pprof -top` beside a profile.
func (b *bench) writeTop(ctx context.Context, prof string) {
	top := pprofTop(ctx, prof, 30)
	_ = os.WriteFile(strings.TrimSuffix(prof, ".pprof")+".top.txt", []byte(top), 0o644)
}

func (b *bench) cleanup(keep bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if b.kbr != nil {
		logf("stopping kbr worker and server")
		b.kbr.stop()
	}
	if b.kraftAdm != nil && len(b.ownTopics) > 0 {
		// Only what still exists; deleteTopics ignores the gone ones.
		if err := deleteTopics(ctx, b.kraftAdm, b.ownTopics...); err != nil {
			logf("cleanup: %v", err)
		}
	}
	if b.tc != nil {
		b.tc.Close()
	}
	if b.zkCl != nil {
		b.zkCl.Close()
	}
	if b.kraftCl != nil {
		b.kraftCl.Close()
	}
	if b.tmp != "" {
		if keep {
			logf("kept %s", b.tmp)
		} else {
			os.RemoveAll(b.tmp)
		}
	}
}

// summarize takes, per phase name, the run with the median time.
func (b *bench) summarize(pars, rpars []int) {
	byName := map[string][]*Phase{}
	var order []string
	for _, p := range b.res.Phases {
		if p.Error != "" {
			continue
		}
		if _, ok := byName[p.Name]; !ok {
			order = append(order, p.Name)
		}
		byName[p.Name] = append(byName[p.Name], p)
	}
	// Disturbed samples only when there is nothing else.
	for name, ps := range byName {
		var clean []*Phase
		for _, p := range ps {
			if !p.Disturbed {
				clean = append(clean, p)
			}
		}
		if len(clean) > 0 {
			byName[name] = clean
		}
		b.samples[name] = len(byName[name])
	}
	b.res.Summary = nil
	for _, name := range order {
		ps := byName[name]
		sort.Slice(ps, func(i, j int) bool { return ps[i].Seconds < ps[j].Seconds })
		b.res.Summary = append(b.res.Summary, ps[(len(ps)-1)/2])
	}
	get := func(name string) *Phase {
		if ps := byName[name]; len(ps) > 0 {
			return ps[(len(ps)-1)/2]
		}
		return nil
	}
	ratio := func(name string, num, den *Phase, target float64) {
		if num == nil || den == nil || den.MBps == 0 {
			return
		}
		r := Ratio{Name: name, Value: num.MBps / den.MBps}
		if target > 0 {
			met := r.Value >= target
			r.Target, r.Met = fmt.Sprintf(">= %.2f", target), &met
		}
		b.res.Ratios = append(b.res.Ratios, r)
	}
	raw, prod, floor, kc := get("franz-go consume"), get("franz-go produce"), get(floorName), get("kcat consume")
	for i, p := range pars {
		t, tf, tk := 0.0, 0.0, 0.0
		if i == 0 {
			t, tf, tk = 0.9, 0.95, 4
		}
		ratio(fmt.Sprintf("kbr backup p%d / franz-go consume", p), get(fmt.Sprintf("kbr backup p%d", p)), raw, t)
		ratio(fmt.Sprintf("kbr backup p%d / %s", p, floorName), get(fmt.Sprintf("kbr backup p%d", p)), floor, tf)
		ratio(fmt.Sprintf("kbr backup p%d / kcat consume", p), get(fmt.Sprintf("kbr backup p%d", p)), kc, tk)
	}
	ratio(floorName+" / franz-go consume (reference)", floor, raw, 0)
	for i, p := range rpars {
		t := 0.0
		if i == 0 {
			t = 0.9
		}
		ratio(fmt.Sprintf("kbr restore p%d / franz-go produce", p), get(fmt.Sprintf("kbr restore p%d", p)), prod, t)
	}
	ratio("kcat consume / franz-go consume (reference)", get("kcat consume"), raw, 0)
	ratio(fmt.Sprintf("kdata export in-process p%d / franz-go consume", pars[0]), get(fmt.Sprintf("kdata export in-process p%d", pars[0])), raw, 0)
	ratio(fmt.Sprintf("kbr backup p%d compression zstd / franz-go consume", pars[0]), get(fmt.Sprintf("kbr backup p%d compression zstd", pars[0])), raw, 0)
	ratio(fmt.Sprintf("kdata export in-process p%d compression none / franz-go consume", pars[0]), get(fmt.Sprintf("kdata export in-process p%d compression none", pars[0])), raw, 0)
	ratio(fmt.Sprintf("kdata restore in-process p%d / franz-go produce", rpars[0]), get(fmt.Sprintf("kdata restore in-process p%d", rpars[0])), prod, 0)
	ratio(fmt.Sprintf("kbr backup p%d (CLI, Temporal) / kdata export in-process", pars[0]), get(fmt.Sprintf("kbr backup p%d", pars[0])), get(fmt.Sprintf("kdata export in-process p%d", pars[0])), 0)
	ratio(fmt.Sprintf("kbr restore p%d (CLI, Temporal) / kdata restore in-process", rpars[0]), get(fmt.Sprintf("kbr restore p%d", rpars[0])), get(fmt.Sprintf("kdata restore in-process p%d", rpars[0])), 0)
	if full := get(incrName(pars[0], incrFull)); full != nil && full.Seconds > 0 {
		for _, step := range []string{incrUnchanged, incrNew} {
			if p := get(incrName(pars[0], step)); p != nil {
				r := Ratio{Name: fmt.Sprintf("kbr incremental p%d %s / full (time)", pars[0], step), Value: p.Seconds / full.Seconds}
				if step == incrUnchanged {
					met := r.Value < 0.05
					r.Target, r.Met = "< 0.05", &met
				}
				b.res.Ratios = append(b.res.Ratios, r)
			}
		}
	}
	var peak int64
	for _, p := range b.res.Phases {
		if p.Tool == "kbr" {
			peak = max(peak, p.WorkerPeakRSS)
		}
	}
	if peak > 0 {
		met := peak < 512<<20
		b.res.Ratios = append(b.res.Ratios, Ratio{Name: "kbr worker peak RSS (MiB, all kbr phases)", Value: float64(peak) / (1 << 20), Target: "< 512", Met: &met})
	}
}

func (b *bench) print() {
	w := os.Stdout
	fmt.Fprintln(w)
	fmt.Fprintln(w, "kbr benchmark")
	if s := b.res.Setup; s != nil {
		fmt.Fprintf(w, "  source: %v, topic %v, %v partitions, %v\n", s["source_cluster"], s["source_topic"], s["partitions"], s["replication_note"])
		fmt.Fprintf(w, "  target: %v\n", s["target_cluster"])
		fmt.Fprintf(w, "  data:   %v records, %.1f MB payload (%v), avg %.0f B/record, source compression %v\n",
			s["records"], float64(b.data.payload)/1e6, s["payload_definition"], s["avg_record_payload"], s["source_compression"])
		if b.topicOnDisk > 0 {
			fmt.Fprintf(w, "          %.1f MB on the brokers' disks (one replica)\n", float64(b.topicOnDisk)/1e6)
		}
	}
	if g := b.res.Git; g != nil {
		fmt.Fprintf(w, "  kbr:    commit %v, uncommitted changes %v\n", g["commit"], g["dirty"])
	}
	if h := b.res.Host; h != nil {
		fmt.Fprintf(w, "  host:   %v CPUs, %v, %v, load at start %v; the 4 brokers, ZooKeeper, kbr and the bench share these CPUs\n", h["cpus"], h["mem"], h["go"], h["loadavg_at_start"])
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "measurement\tpar\tn\tseconds\trecords\tMB/s\trecords/s\tcpu-s\tserver cpu-s\tbroker cpu-s\tother cpu-s\tworker peak RSS\tGo heap peak\t")
	for _, p := range b.res.Summary {
		par, rss, srv := "", "", ""
		if p.Parallelism > 0 {
			par = strconv.Itoa(p.Parallelism)
		}
		if p.WorkerPeakRSS > 0 {
			rss = fmt.Sprintf("%.0f MiB", float64(p.WorkerPeakRSS)/(1<<20))
		}
		if p.ServerCPU > 0 {
			srv = fmt.Sprintf("%.1f", p.ServerCPU)
		}
		heap := ""
		if p.GoHeapPeak > 0 {
			heap = fmt.Sprintf("%.0f MiB", float64(p.GoHeapPeak)/(1<<20))
		}
		name := p.Name
		if p.Disturbed {
			name += " (disturbed)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%d\t%.1f\t%.0f\t%.1f\t%s\t%.1f\t%.1f\t%s\t%s\t\n", name, par, b.samples[p.Name], p.Seconds, p.Records, p.MBps, p.RecordsPerS, p.ReaderCPU, srv, p.BrokerCPU, p.OtherCPU, rss, heap)
	}
	tw.Flush()
	fmt.Fprintln(w, "  n: measurements the row is the median of (disturbed ones left out when there are others)")
	fmt.Fprintln(w, "  cpu-s: CPU seconds of the process doing the work (the bench for franz-go, kcat, the kbr worker for kbr, the bench for in-process kdata)")
	fmt.Fprintln(w, "  other cpu-s: CPU used on the machine by everything else (ZooKeeper, other work; not the kbr CLI command) during the phase; high values mean a disturbed figure")
	fmt.Fprintln(w, "  worker peak RSS: VmHWM of the kbr worker process during the phase (a fresh worker per phase unless -fresh-worker=false); Go heap peak: heap growth of the bench process (franz-go, in-process kdata)")
	fmt.Fprintln(w, "  kbr rows are the wall time of `kbr backup|restore run`, workflow steps included; MB = 10^6 payload bytes")
	var notes []string
	for _, p := range b.res.Summary {
		for _, n := range p.Notes {
			notes = append(notes, p.Name+": "+n)
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, "  "+n)
		}
	}
	if len(b.res.Ratios) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "ratios")
		for _, r := range b.res.Ratios {
			verdict := ""
			if r.Met != nil {
				verdict = "  (target " + r.Target + ": "
				if *r.Met {
					verdict += "met)"
				} else {
					verdict += "NOT met)"
				}
			}
			prec := 2
			if r.Value < 0.1 {
				prec = 3 // the incremental fractions
			}
			fmt.Fprintf(w, "  %-62s %8.*f%s\n", r.Name, prec, r.Value, verdict)
		}
	}
	for _, p := range b.res.Phases {
		if p.Error != "" {
			fmt.Fprintf(w, "\nFAILED %s: %s\n", p.Name, p.Error)
		}
	}
	if len(b.res.Warnings) > 0 {
		fmt.Fprintln(w)
		for _, s := range b.res.Warnings {
			fmt.Fprintln(w, "warning: "+s)
		}
	}
	for _, k := range []string{"export", "export-none", "restore"} {
		if v := b.res.Profiles[k]; v != "" {
			fmt.Fprintf(w, "\nCPU profile of the in-process %s: %s (go tool pprof -top %s; summary in %s)\n", k, v, v, strings.TrimSuffix(v, ".pprof")+".top.txt")
		}
	}
	fmt.Fprintf(w, "\nfigures: %s (%.0fs in all)\n", b.res.ResultFile, b.res.Seconds)
}

func (b *bench) write() error {
	if err := os.MkdirAll(filepath.Dir(b.res.ResultFile), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(b.res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(b.res.ResultFile, append(data, '\n'), 0o644); err != nil {
		return err
	}
	// Keep a dated copy beside latest.json.
	dated := filepath.Join(filepath.Dir(b.res.ResultFile), "run-"+b.res.StartedAt.Format("20060102T150405Z")+".json")
	return os.WriteFile(dated, append(data, '\n'), 0o644)
}
