package hostops

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestLogDirs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, props string
		want        []string
	}{
		{"log.dirs wins", "log.dir=/x\nlog.dirs=/a, /b ,/c\n", []string{"/a", "/b", "/c"}},
		{"log.dir", "# c\nlog.dir = /only\n", []string{"/only"}},
		{"colon and continuation", "log.dirs: /a,\\\n   /b\n", []string{"/a", "/b"}},
		{"default", "broker.id=1\n", []string{DefaultLogDir}},
		{"commented out", "#log.dirs=/a\n!log.dirs=/b\nlog.dir=/c", []string{"/c"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "server.properties")
			write(t, p, c.props)
			got, err := LogDirs(p)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
	if _, err := LogDirs(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing server.properties gave no error")
	}
}

const metaSample = "#\n#Sun Nov 22 06:54:00 UTC 2026\nbroker.id=1\nversion=0\ncluster.id=0Qftv9yBTAmf2iDPSlIk7g\n"

// TestSetClusterID guards the seed's fix: only cluster.id changes, the
// original is kept once, and a second run is a no-op.
func TestSetClusterID(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, MetaFile)
	write(t, path, metaSample)

	fix, err := SetClusterID(dir, "kVSgfurUQFGGpHMTBqBPiw")
	if err != nil {
		t.Fatal(err)
	}
	if fix.Status != FixFixed || fix.Before != "0Qftv9yBTAmf2iDPSlIk7g" || fix.Original != path+OrigSuffix {
		t.Fatalf("fix = %+v", fix)
	}
	got, _ := os.ReadFile(path)
	want := strings.Replace(metaSample, "0Qftv9yBTAmf2iDPSlIk7g", "kVSgfurUQFGGpHMTBqBPiw", 1)
	if string(got) != want {
		t.Errorf("meta.properties = %q, want %q", got, want)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want 0640", st.Mode().Perm())
	}
	orig, _ := os.ReadFile(path + OrigSuffix)
	if string(orig) != metaSample {
		t.Errorf("original = %q", orig)
	}

	// Again with the same id: nothing changes.
	fix, err = SetClusterID(dir, "kVSgfurUQFGGpHMTBqBPiw")
	if err != nil || fix.Status != FixCorrect {
		t.Fatalf("second run: %+v, %v", fix, err)
	}
	// A third id: the kept original is still the first one.
	if _, err := SetClusterID(dir, "third"); err != nil {
		t.Fatal(err)
	}
	orig, _ = os.ReadFile(path + OrigSuffix)
	if string(orig) != metaSample {
		t.Errorf("original overwritten: %q", orig)
	}
	if id, _ := ReadClusterID(dir); id != "third" {
		t.Errorf("cluster.id = %q, want third", id)
	}
	// No temp files left behind.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("dir holds %d files, want 2", len(ents))
	}
}

func TestSetClusterIDEdgeCases(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if fix, err := SetClusterID(dir, "abc"); err != nil || fix.Status != FixAbsent {
		t.Errorf("no meta.properties: %+v, %v", fix, err)
	}
	write(t, filepath.Join(dir, MetaFile), "version=0\nbroker.id=2")
	if _, err := SetClusterID(dir, "abc"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, MetaFile))
	if string(got) != "version=0\nbroker.id=2\ncluster.id=abc\n" {
		t.Errorf("appended: %q", got)
	}
	if _, err := SetClusterID(dir, "a\nb"); err == nil {
		t.Error("a cluster id with a newline was accepted")
	}
}

func TestRunCommand(t *testing.T) {
	t.Parallel()
	out, err := RunCommand(context.Background(), "echo hi; echo there >&2", 5*time.Second)
	if err != nil || out != "hi\nthere\n" {
		t.Errorf("got %q, %v", out, err)
	}
	_, err = RunCommand(context.Background(), "echo broken; exit 3", 5*time.Second)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 3 || !strings.Contains(ce.Error(), "broken") {
		t.Errorf("failing command: %v", err)
	}
	start := time.Now()
	_, err = RunCommand(context.Background(), "sleep 30", 300*time.Millisecond)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("timeout: %v after %s", err, time.Since(start))
	}
}

// listenerEnv makes the test binary itself a stand-in broker process: it
// listens on the port given and sleeps (see TestListenerProcess).
const listenerEnv = "KBR_HOSTOPS_TEST_LISTEN"

// TestListenerProcess is not a test: run with listenerEnv set, it is the
// process TestServiceStopStart starts and stops.
func TestListenerProcess(t *testing.T) {
	port := os.Getenv(listenerEnv)
	if port == "" {
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		os.Exit(1)
	}
	defer l.Close()
	time.Sleep(10 * time.Minute)
	os.Exit(0)
}

// TestServiceStopStart drives Stop and Start against a real listener
// started and stopped by shell commands, as a broker's would be.
func TestServiceStopStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pidf := filepath.Join(dir, "pid")
	svc := Service{
		StartCommand: listenerEnv + "=" + strconv.Itoa(port) + " setsid " + self + " -test.run=^TestListenerProcess$ >/dev/null 2>&1 & echo $! > " + pidf,
		StopCommand:  "kill $(cat " + pidf + ")",
		Addr:         addr, StopTimeout: 10 * time.Second, StartTimeout: 10 * time.Second,
	}
	t.Cleanup(func() { _, _ = RunCommand(context.Background(), svc.StopCommand, time.Second) })
	ctx := context.Background()
	st, err := svc.Stop(ctx)
	if err != nil || !st.AlreadyStopped {
		t.Fatalf("stop of a stopped broker: %+v, %v", st, err)
	}
	if _, err := svc.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	if r, err := svc.Start(ctx); err != nil || !r.AlreadyRunning {
		t.Fatalf("second start: %+v, %v", r, err)
	}
	if pid := ListenerPID(port); pid == 0 {
		t.Error("ListenerPID found no listener")
	}
	st, err = svc.Stop(ctx)
	if err != nil || st.AlreadyStopped || st.PID == 0 {
		t.Fatalf("stop: %+v, %v", st, err)
	}
	if PortAnswers(addr) || ProcessAlive(st.PID) {
		t.Error("still running after Stop")
	}
}

func TestFreeDiskAndVersion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fd := FreeDisk([]string{dir, filepath.Join(dir, "missing")})
	if fd[0].Total == 0 || fd[0].Error != "" || fd[1].Error == "" {
		t.Errorf("FreeDisk = %+v", fd)
	}
	for _, n := range []string{"kafka-clients-3.9.1.jar", "kafka_2.13-3.9.1.jar", "kafka_2.13-3.9.1-sources.jar"} {
		write(t, filepath.Join(dir, n), "")
	}
	if v := KafkaVersionFromLibs(dir); v != "3.9.1" {
		t.Errorf("version = %q, want 3.9.1", v)
	}
}
