package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/api/enums/v1"
	sdkclient "go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"

	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/internal/testenv"
)

// The production topology of deploy/production, for real: PostgreSQL from
// Debian, its schema set up by Temporal's SQL tool, the Temporal server
// built from the module kbr embeds, mutual TLS on its frontend (a CA this
// test makes), and two `kbr worker` processes on it. A backup and a restore
// are each shared by both workers (their histories show activities of
// both); one worker is SIGKILLed in the middle of the backup; the restored
// topic equals the source record for record. The CLI reaches the cluster
// only with a client certificate. No password or private key reaches a log
// or a history.
func TestProductionTopology(t *testing.T) {
	env := testenv.Load(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "deploy", "production", "temporal.sh")
	// PostgreSQL runs as user postgres: its directory must be reachable.
	dir, err := os.MkdirTemp("", "kbr-prod-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"temporal.log", "workers.log"} {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				if len(b) > 6000 {
					b = b[len(b)-6000:]
				}
				t.Logf("--- tail of %s ---\n%s", f, b)
			}
		}
		os.RemoveAll(dir)
	})

	ports := freePorts(t, 11)
	pw := make([]byte, 16)
	_, _ = crand.Read(pw)
	password := "pw-" + hex.EncodeToString(pw)
	certs := makeCerts(t, filepath.Join(dir, "tls"))
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	senv := []string{
		"KBR_TEMPORAL_DB_PASSWORD=" + password,
		fmt.Sprintf("KBR_TEMPORAL_DB_PORT=%d", ports[10]),
		fmt.Sprintf("KBR_TEMPORAL_FRONTEND_PORT=%d", ports[0]),
		fmt.Sprintf("KBR_TEMPORAL_FRONTEND_HTTP_PORT=%d", ports[1]),
		fmt.Sprintf("KBR_TEMPORAL_FRONTEND_MEMBERSHIP_PORT=%d", ports[2]),
		fmt.Sprintf("KBR_TEMPORAL_HISTORY_PORT=%d", ports[3]),
		fmt.Sprintf("KBR_TEMPORAL_HISTORY_MEMBERSHIP_PORT=%d", ports[4]),
		fmt.Sprintf("KBR_TEMPORAL_MATCHING_PORT=%d", ports[5]),
		fmt.Sprintf("KBR_TEMPORAL_MATCHING_MEMBERSHIP_PORT=%d", ports[6]),
		fmt.Sprintf("KBR_TEMPORAL_WORKER_PORT=%d", ports[7]),
		fmt.Sprintf("KBR_TEMPORAL_WORKER_MEMBERSHIP_PORT=%d", ports[8]),
		fmt.Sprintf("KBR_TEMPORAL_METRICS_ADDR=127.0.0.1:%d", ports[9]),
		"KBR_TEMPORAL_LOG_LEVEL=warn",
		"KBR_TEMPORAL_TLS_CERT=" + certs.file("frontend.pem"),
		"KBR_TEMPORAL_TLS_KEY=" + certs.file("frontend-key.pem"),
		"KBR_TEMPORAL_TLS_CA=" + certs.file("ca.pem"),
		"KBR_TEMPORAL_TLS_SERVER_NAME=" + certs.serverName,
		"KBR_TEMPORAL_WORKER_CERT=" + certs.file("system-worker.pem"),
		"KBR_TEMPORAL_WORKER_KEY=" + certs.file("system-worker-key.pem"),
	}
	sh := func(args ...string) {
		t.Helper()
		cmd := exec.Command(script, args...)
		cmd.Env = append(os.Environ(), senv...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			if len(out) > 4000 {
				out = out[len(out)-4000:]
			}
			t.Fatalf("temporal.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	start := time.Now()
	sh("build")
	sh("pg-start", dir, fmt.Sprint(ports[10]))
	t.Cleanup(func() { sh("pg-stop", dir) })
	sh("schema", dir, fmt.Sprint(ports[10]))
	sh("server-start", dir)
	t.Cleanup(func() { sh("server-stop", dir) })
	t.Logf("PostgreSQL, schema and Temporal server up in %s", time.Since(start).Round(time.Second))

	tlsFlags := func(who string) []string {
		return []string{"--address", addr, "--tls-cert", certs.file(who + ".pem"), "--tls-key", certs.file(who + "-key.pem"),
			"--tls-ca", certs.file("ca.pem"), "--tls-server-name", certs.serverName}
	}
	cli := func(timeout time.Duration, args ...string) result {
		t.Helper()
		return kbrAt(t, timeout, append(args, tlsFlags("cli")...)...)
	}

	// The CLI without a client certificate is refused by the frontend.
	if r := kbrAt(t, time.Minute, "task", "list", "--address", addr, "--tls-ca", certs.file("ca.pem"), "--tls-server-name", certs.serverName); r.code != 3 {
		t.Fatalf("CLI without a client certificate: exit %d, want 3 (unreachable)\n%s", r.code, r.stderr)
	}
	if r := cli(2*time.Minute, "namespace", "create", "default"); r.code != 0 {
		t.Fatalf("kbr namespace create: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := cli(time.Minute, "namespace", "create", "default"); r.code != 0 || !strings.Contains(r.stdout, "exists") {
		t.Fatalf("kbr namespace create, again: exit %d, %q; want 0 and 'exists'", r.code, r.stdout)
	}

	logs := filepath.Join(dir, "workers.log")
	lf, err := os.Create(logs)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	startWorker := func(who string) *exec.Cmd {
		// One activity at a time each: the run's concurrent activities need both.
		args := append([]string{"worker", "--max-activities", "1", "--metrics-addr", "off", "--log-level", "warn"}, tlsFlags(who)...)
		cmd := exec.Command(h.bin, args...)
		cmd.Stdout, cmd.Stderr = lf, lf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
		return cmd
	}
	w1, w2 := startWorker("worker1"), startWorker("worker2")
	c := prodClient(t, addr, certs)

	// A topic of 8 partitions, 2 MB of random values each, exported at
	// 1 MiB/s per partition: the backup runs long enough to kill a worker.
	topic := "e2e-" + randID() + "-prod"
	kc := client(t, env.ZKModeBootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(10*time.Millisecond))
	createTopic(t, kadm.NewClient(kc), topic, 8, 3, nil)
	var rs []*kgo.Record
	for i := 0; i < 8*256; i++ {
		v := make([]byte, 8000)
		_, _ = crand.Read(v)
		rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i % 8), Key: []byte(fmt.Sprintf("k%05d", i)), Value: v,
			Headers: []kgo.RecordHeader{{Key: "n", Value: []byte(fmt.Sprint(i))}}})
	}
	produceSync(t, kc, rs...)
	want := readAll(t, env.ZKModeBootstrap, topic)
	target := filepath.Join(dir, "backups")
	cfg := writeFile(t, "backup.yaml", `
cluster: {name: zkmode-prod, bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`}
task: prod-`+randID()+`
data_sources: [topicdata]
topics: {include: ["`+topic+`"]}
target: {type: LocalDir, path: `+target+`}
options: {parallelism: 4, min_free_bytes: 1GiB, compression: none, throttle_bytes_per_second: 1MiB}
`)
	r := cli(time.Minute, "backup", "run", "-f", cfg, "--detach", "--json")
	if r.code != 0 {
		t.Fatalf("start backup: exit %d: %s", r.code, r.stderr)
	}
	var started struct {
		WorkflowID string `json:"workflow_id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &started); err != nil {
		t.Fatalf("--detach --json: %v: %s", err, r.stdout)
	}
	backupID := started.WorkflowID

	// Kill worker 1 once it has finished an activity of the backup (an
	// attempt cut short is recorded with the identity of the worker that
	// retried it) and runs another, and worker 2 runs one too.
	waitBothBusy(t, c, backupID, w1.Process.Pid, w2.Process.Pid)
	if err := w1.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_, _ = w1.Process.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := c.GetWorkflow(ctx, backupID, "").Get(ctx, nil); err != nil {
		t.Fatalf("backup %s with worker 1 killed: %v", backupID, err)
	}
	checkRanOnBoth(t, c, backupID, w1.Process.Pid, w2.Process.Pid)

	// The restore, into KRaft under another name, shared by worker 2 and a
	// new worker 1.
	w3 := startWorker("worker1")
	dst := topic + "-restored"
	rcfg := writeFile(t, "restore.yaml", `
cluster: {name: kraft-prod, bootstrap_servers: `+quoteList(env.KRaftBootstrap)+`}
source: {target: {type: LocalDir, path: `+target+`}, recovery_point: latest}
topics: [`+topic+`]
rename: ["`+topic+`:`+dst+`"]
options: {parallelism: 4}
`)
	restoreID := "restore-prod-" + randID()
	if r := cli(5*time.Minute, "restore", "run", "-f", rcfg, "--id", restoreID); r.code != 0 {
		t.Fatalf("restore: exit %d\n%s", r.code, r.stderr)
	}
	checkRanOnBoth(t, c, restoreID, w2.Process.Pid, w3.Process.Pid)
	compareTopic(t, topic, want, readAll(t, env.KRaftBootstrap, dst))

	// The agent of a broker host connects with the same TLS flags: it
	// polls its own task queue.
	ag := exec.Command(h.bin, append([]string{"agent", "--host", "prod-agent", "--server-properties", env.Broker("zk1").Properties,
		"--listener", env.Broker("zk1").Addr, "--log-level", "warn"}, tlsFlags("agent")...)...)
	ag.Stdout, ag.Stderr = lf, lf
	if err := ag.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ag.Process.Kill(); _, _ = ag.Process.Wait() })
	waitPoller(t, c, names.AgentTaskQueue("prod-agent"))

	// No secret in a log or a history.
	keyPEM, _ := os.ReadFile(certs.file("worker1-key.pem"))
	keyLine := strings.Split(string(keyPEM), "\n")[1]
	for _, f := range []string{logs, filepath.Join(dir, "temporal.log"), filepath.Join(dir, "schema.log"), filepath.Join(dir, "pgdata", "postgresql.log")} {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(password)) {
			t.Errorf("%s holds the database password", f)
		}
		if bytes.Contains(b, []byte(keyLine)) {
			t.Errorf("%s holds a private key", f)
		}
	}
	for _, id := range []string{backupID, restoreID} {
		for _, h := range histories(t, c, id) {
			if bytes.Contains(h, []byte(password)) || bytes.Contains(h, []byte(keyLine)) {
				t.Errorf("the history of %s holds a secret", id)
			}
		}
	}
}

// kbrAt runs the CLI with the given arguments only (no KBR_ADDRESS of the
// embedded test server).
func kbrAt(t *testing.T, timeout time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kbr %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("kbr %s: did not finish within %s\nstderr: %s", strings.Join(args, " "), timeout, r.stderr)
	}
	return r
}

// freePorts are n distinct ports that are free now, below 32768: Temporal
// keeps membership ports in a smallint column.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	seen := map[int]bool{}
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			t.Fatal("no free ports between 21000 and 29000")
		}
		b := make([]byte, 2)
		_, _ = crand.Read(b)
		p := 21000 + (int(b[0])<<8|int(b[1]))%8000
		if seen[p] {
			continue
		}
		seen[p] = true
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		ports = append(ports, p)
	}
	return ports
}

// testCerts is a CA and the certificates it signed, as PEM files.
type testCerts struct {
	dir        string
	serverName string
}

func (c testCerts) file(name string) string { return filepath.Join(c.dir, name) }

// makeCerts makes a CA, the frontend's certificate (for serverName and
// 127.0.0.1), and client certificates for the system worker, two kbr
// workers and the CLI.
func makeCerts(t *testing.T, dir string) testCerts {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := testCerts{dir: dir, serverName: "temporal.kbr.test"}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kbr test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(crand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	writePEM(t, c.file("ca.pem"), "CERTIFICATE", caDER, 0o644)
	issue := func(name string, serial int64, server bool) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		if server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
			tmpl.DNSNames = []string{c.serverName, "localhost"}
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(crand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, c.file(name+".pem"), "CERTIFICATE", der, 0o644)
		writePEM(t, c.file(name+"-key.pem"), "PRIVATE KEY", kder, 0o600)
	}
	issue("frontend", 2, true)
	issue("system-worker", 3, false)
	issue("worker1", 4, false)
	issue("worker2", 5, false)
	issue("cli", 6, false)
	issue("agent", 7, false)
	return c
}

func writePEM(t *testing.T, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
}

// prodClient is a Temporal client of the test's cluster, with the CLI's
// certificate.
func prodClient(t *testing.T, addr string, certs testCerts) sdkclient.Client {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certs.file("cli.pem"), certs.file("cli-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(certs.file("ca.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	c, err := sdkclient.Dial(sdkclient.Options{HostPort: addr, ConnectionOptions: sdkclient.ConnectionOptions{
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: certs.serverName, MinVersion: tls.VersionTLS12}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// workerOf says which of the pids an SDK worker identity ("pid@host@...")
// belongs to.
func workerOf(identity string, pids ...int) (int, bool) {
	for _, p := range pids {
		if strings.HasPrefix(identity, fmt.Sprintf("%d@", p)) {
			return p, true
		}
	}
	return 0, false
}

// runIDs are the executions of a run: the workflow and its children, and
// theirs, so a check holds however the run splits its work.
func runIDs(t *testing.T, c sdkclient.Client, id string) []sdkclient.WorkflowRun {
	t.Helper()
	var out []sdkclient.WorkflowRun
	queue := []string{id}
	for len(queue) > 0 {
		wid := queue[0]
		queue = queue[1:]
		out = append(out, c.GetWorkflow(context.Background(), wid, ""))
		it := c.GetWorkflowHistory(context.Background(), wid, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			if a := ev.GetChildWorkflowExecutionStartedEventAttributes(); a != nil {
				queue = append(queue, a.GetWorkflowExecution().GetWorkflowId())
			}
		}
	}
	return out
}

// waitBothBusy returns once the first worker has completed an activity of
// the run (or of its children) and runs another, and every other worker
// runs one.
func waitBothBusy(t *testing.T, c sdkclient.Client, id string, first int, others ...int) {
	t.Helper()
	pids := append([]int{first}, others...)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		busy := map[int]bool{}
		for _, run := range runIDs(t, c, id) {
			d, err := c.DescribeWorkflowExecution(context.Background(), run.GetID(), "")
			if err != nil {
				continue
			}
			for _, pa := range d.GetPendingActivities() {
				if pa.GetState() == enums.PENDING_ACTIVITY_STATE_STARTED {
					if p, ok := workerOf(pa.GetLastWorkerIdentity(), pids...); ok {
						busy[p] = true
					}
				}
			}
		}
		if len(busy) == len(pids) && ranActivities(t, c, id, pids...)[first] > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the workers never ran activities at the same time (busy: %v)", id, busy)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkRanOnBoth: each worker started at least one activity, of any type,
// of the run or its children.
func checkRanOnBoth(t *testing.T, c sdkclient.Client, id string, pids ...int) {
	t.Helper()
	ran := ranActivities(t, c, id, pids...)
	for _, p := range pids {
		if ran[p] == 0 {
			t.Errorf("%s: worker pid %d ran none of its activities (ran: %v)", id, p, ran)
		}
	}
}

// ranActivities counts, per worker, the activities of any type of the run
// and its children whose recorded attempt that worker ran.
func ranActivities(t *testing.T, c sdkclient.Client, id string, pids ...int) map[int]int {
	t.Helper()
	ran := map[int]int{}
	for _, run := range runIDs(t, c, id) {
		it := c.GetWorkflowHistory(context.Background(), run.GetID(), "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
				if p, ok := workerOf(a.GetIdentity(), pids...); ok {
					ran[p]++
				}
			}
		}
	}
	return ran
}

// histories are the raw events of every history of a run and its children.
func histories(t *testing.T, c sdkclient.Client, id string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, run := range runIDs(t, c, id) {
		it := c.GetWorkflowHistory(context.Background(), run.GetID(), "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		var b bytes.Buffer
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			// Raw protobuf: payloads' bytes as they are, not base64.
			raw, err := proto.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(raw)
		}
		out = append(out, b.Bytes())
	}
	return out
}

// waitPoller returns once an activity worker polls the task queue.
func waitPoller(t *testing.T, c sdkclient.Client, queue string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		d, err := c.DescribeTaskQueue(context.Background(), queue, enums.TASK_QUEUE_TYPE_ACTIVITY)
		if err == nil && len(d.GetPollers()) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no worker polls task queue %s (%v)", queue, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
