package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// kbrProcs is the kbr server (no worker) and the separate kbr worker.
type kbrProcs struct {
	bin     string
	dir     string
	addr    string
	server  *proc
	worker  *proc
	workers int
	cliCPU  float64 // CPU seconds of every kbr CLI command run so far
}

// buildKbr builds ./cmd/kbr, once more if the first try fails (a build
// cache shared with concurrent builds sometimes loses a file under it).
func buildKbr(ctx context.Context, root, out string) error {
	var err error
	for try := 0; try < 2; try++ {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/kbr")
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err = cmd.Run(); err == nil || ctx.Err() != nil {
			return err
		}
		logf("go build failed (%v); trying once more", err)
	}
	return err
}

func startKbr(ctx context.Context, bin, dir string) (*kbrProcs, error) {
	k := &kbrProcs{bin: bin, dir: dir}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		srv, err := startProc("kbr server", bin, []string{"server", "--no-worker",
			"--data-dir", filepath.Join(dir, "server-data"), "--port", strconv.Itoa(port), "--ui-port", "-1",
			"--log-level", "warn"}, dir, filepath.Join(dir, fmt.Sprintf("server-%d.log", attempt)))
		if err != nil {
			return nil, err
		}
		if err := srv.waitLog(ctx, "Temporal frontend", 3*time.Minute); err != nil {
			srv.stop(10 * time.Second)
			lastErr = err
			if strings.Contains(err.Error(), "not available") || strings.Contains(err.Error(), "address already in use") {
				continue // someone took the port in between: pick another
			}
			return nil, err
		}
		k.server, k.addr = srv, "127.0.0.1:"+strconv.Itoa(port)
		break
	}
	if k.server == nil {
		return nil, lastErr
	}
	if err := k.startWorker(ctx); err != nil {
		k.stop()
		return nil, err
	}
	return k, nil
}

func (k *kbrProcs) startWorker(ctx context.Context) error {
	k.workers++
	w, err := startProc("kbr worker", k.bin, []string{"worker", "--address", k.addr, "--log-level", "warn"},
		k.dir, filepath.Join(k.dir, fmt.Sprintf("worker-%d.log", k.workers)))
	if err != nil {
		return err
	}
	k.worker = w
	return w.waitLog(ctx, "kbr worker: polling", 2*time.Minute)
}

// restartWorker gives the next phase a fresh worker process, so its peak
// RSS is its own and not what an earlier phase left in the Go heap.
func (k *kbrProcs) restartWorker(ctx context.Context) error {
	k.worker.stop(30 * time.Second)
	return k.startWorker(ctx)
}

func (k *kbrProcs) stop() {
	if k == nil {
		return
	}
	k.worker.stop(30 * time.Second)
	k.server.stop(30 * time.Second)
}

// alive checks that neither process died under the bench.
func (k *kbrProcs) alive() error {
	for _, p := range []*proc{k.server, k.worker} {
		if p.exited() {
			b, _ := os.ReadFile(p.log)
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, tail(b, 1500))
		}
	}
	return nil
}

// run runs a kbr CLI command with --json against the bench's server.
func (k *kbrProcs) run(ctx context.Context, logName string, args ...string) ([]byte, time.Duration, error) {
	args = append(args, "--address", k.addr, "--json")
	cmd := exec.CommandContext(ctx, k.bin, args...)
	cmd.Dir = k.dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	dur := time.Since(start)
	if ps := cmd.ProcessState; ps != nil {
		k.cliCPU += (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	_ = os.WriteFile(filepath.Join(k.dir, logName+".log"),
		[]byte("$ kbr "+strings.Join(args, " ")+"\n--- stdout\n"+stdout.String()+"--- stderr\n"+stderr.String()), 0o644)
	if err != nil {
		if aerr := k.alive(); aerr != nil {
			return stdout.Bytes(), dur, fmt.Errorf("kbr %s: %v (and %v)", args[0], err, aerr)
		}
		return stdout.Bytes(), dur, fmt.Errorf("kbr %s %s: %v\nstdout: %s\nstderr: %s", args[0], args[1],
			err, tail(stdout.Bytes(), 1500), tail(stderr.Bytes(), 1500))
	}
	return stdout.Bytes(), dur, nil
}

// cluster is what a config needs to reach a Kafka cluster.
type cluster struct {
	name      string
	bootstrap []string
	zkConnect string // empty for KRaft
	zkChroot  string
}

func (c cluster) yaml() string {
	q := make([]string, len(c.bootstrap))
	for i, s := range c.bootstrap {
		q[i] = strconv.Quote(s)
	}
	s := fmt.Sprintf("cluster:\n  name: %s\n  bootstrap_servers: [%s]\n", c.name, strings.Join(q, ", "))
	if c.zkConnect != "" {
		s += fmt.Sprintf("  zookeeper:\n    connect: [%q]\n    chroot: %q\n", c.zkConnect, c.zkChroot)
	}
	return s
}

func backupYAML(c cluster, task, topic, targetDir string, parallelism int, compression string) string {
	return c.yaml() + fmt.Sprintf(`task: %s
data_sources: [topicdata]
topics:
  include: [%q]
target:
  type: LocalDir
  path: %q
options:
  parallelism: %d
  compression: %s
  min_free_bytes: 1GiB
`, task, regexp.QuoteMeta(topic), targetDir, parallelism, compression)
}

// incrementalYAML is backupYAML with policy: incremental (zstd).
func incrementalYAML(c cluster, task, topic, targetDir string, parallelism int) string {
	return backupYAML(c, task, topic, targetDir, parallelism, "zstd") + "policy: incremental\n"
}

func restoreYAML(c cluster, targetDir, task, srcTopic, dstTopic string, parallelism int) string {
	return c.yaml() + fmt.Sprintf(`source:
  target:
    type: LocalDir
    path: %q
  recovery_point: latest
  task: %s
topics: [%q]
rename: [%q]
skip_groups: true
options:
  parallelism: %d
`, targetDir, task, srcTopic, srcTopic+":"+dstTopic, parallelism)
}

type backupOutput struct {
	WorkflowID string `json:"workflow_id"`
	Status     string `json:"status"`
	Error      string `json:"error"`
	Result     struct {
		RecoveryPoint  string   `json:"recovery_point"`
		TaskDir        string   `json:"task_dir"`
		Kind           string   `json:"kind"` // full | incremental
		PolicyReason   string   `json:"policy_reason"`
		FullPartitions []string `json:"full_partitions"`
		Totals         struct {
			Files        int   `json:"files"`
			Bytes        int64 `json:"bytes"`
			Records      int64 `json:"records"`
			PayloadBytes int64 `json:"payload_bytes"`
			Partitions   int   `json:"partitions"`
		} `json:"totals"`
	} `json:"result"`
}

type restoreOutput struct {
	WorkflowID string `json:"workflow_id"`
	Status     string `json:"status"`
	Error      string `json:"error"`
	Result     struct {
		RecoveryPoint string `json:"recovery_point"`
		Records       int64  `json:"records"`
		RawBatches    int64  `json:"raw_batches"`
		Rebuilt       int64  `json:"rebuilt_batches"`
		Resent        int64  `json:"resent_batches"`
		Topics        []struct {
			Source  string `json:"source"`
			Target  string `json:"target"`
			Created bool   `json:"created"`
		} `json:"topics"`
	} `json:"result"`
}

// backupRun runs `kbr backup run` and returns the parsed result.
func (k *kbrProcs) backup(ctx context.Context, name, yaml string) (*backupOutput, time.Duration, error) {
	cfg := filepath.Join(k.dir, name+".yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		return nil, 0, err
	}
	out, dur, err := k.run(ctx, name, "backup", "run", "-f", cfg)
	if err != nil {
		return nil, dur, err
	}
	var res backupOutput
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, dur, fmt.Errorf("kbr backup run --json: %v: %s", err, tail(out, 500))
	}
	if res.Status != "succeeded" {
		return &res, dur, fmt.Errorf("backup %s: status %q: %s", res.WorkflowID, res.Status, res.Error)
	}
	return &res, dur, nil
}

func (k *kbrProcs) restore(ctx context.Context, name, yaml string) (*restoreOutput, time.Duration, error) {
	cfg := filepath.Join(k.dir, name+".yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		return nil, 0, err
	}
	out, dur, err := k.run(ctx, name, "restore", "run", "-f", cfg)
	if err != nil {
		return nil, dur, err
	}
	var res restoreOutput
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, dur, fmt.Errorf("kbr restore run --json: %v: %s", err, tail(out, 500))
	}
	if res.Status != "succeeded" {
		return &res, dur, fmt.Errorf("restore %s: status %q: %s", res.WorkflowID, res.Status, res.Error)
	}
	return &res, dur, nil
}
