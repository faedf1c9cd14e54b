package hdfs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gohdfs "github.com/colinmarc/hdfs/v2"

	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/storage"
)

// hdfsEnv is the stack's HDFS as deploy/services/hdfs.sh describes it in stack.env.
type hdfsEnv struct {
	NameNode  string // 127.0.0.1:18020
	User      string // unprivileged user owning Home
	Home      string // /user/kbr
	Superuser string
	Classpath string // Hadoop jars + conf: java -cp ... org.apache.hadoop.fs.FsShell
	ConfDir   string // HADOOP_CONF_DIR of the stack's HDFS
	Stop      string // stops the NameNode; returns when it is gone
	Start     string // starts the NameNode; returns when it is ready
}

// loadHDFS fails the test (never skips) when the stack or its HDFS is not up.
func loadHDFS(t testing.TB) hdfsEnv {
	t.Helper()
	env := testenv.Load(t)
	v := env.Vars
	e := hdfsEnv{
		NameNode:  v["KBR_HDFS_NAMENODE"],
		User:      v["KBR_HDFS_USER"],
		Home:      v["KBR_HDFS_HOME"],
		Superuser: v["KBR_HDFS_SUPERUSER"],
		Classpath: v["KBR_HDFS_CLASSPATH"],
		ConfDir:   v["KBR_HDFS_CONF_DIR"],
		Stop:      v["KBR_HDFS_STOP"],
		Start:     v["KBR_HDFS_START"],
	}
	if e.NameNode == "" || e.User == "" || e.Home == "" || e.Classpath == "" || e.Stop == "" || e.Start == "" {
		t.Fatalf("stack.env has no HDFS (KBR_HDFS_NAMENODE, KBR_HDFS_USER, KBR_HDFS_HOME, KBR_HDFS_CLASSPATH, KBR_HDFS_STOP, KBR_HDFS_START): " +
			"the stack was started without deploy/services/hdfs.sh; run `make stack-up`")
	}
	c, err := net.DialTimeout("tcp", e.NameNode, 2*time.Second)
	if err != nil {
		t.Fatalf("the HDFS NameNode at %s does not answer (%v); run `make stack-up`", e.NameNode, err)
	}
	c.Close()
	return e
}

// run executes a KBR_HDFS_STOP/START style command ("path arg arg").
func run(t testing.TB, command string) {
	t.Helper()
	f := strings.Fields(command)
	out, err := exec.Command(f[0], f[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
}

// hadoop runs a Hadoop tool class (FsShell, DFSAdmin) as user and returns its stdout.
func (e hdfsEnv) hadoop(t testing.TB, user string, stdout *os.File, args ...string) string {
	t.Helper()
	cmd := e.hadoopCmd(user, args...)
	var out strings.Builder
	if stdout != nil {
		cmd.Stdout = stdout
	} else {
		cmd.Stdout = &out
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out.String()
}

func (e hdfsEnv) hadoopCmd(user string, args ...string) *exec.Cmd {
	full := append([]string{"-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", e.Classpath}, args...)
	cmd := exec.Command("java", full...)
	cmd.Env = append(os.Environ(), "HADOOP_USER_NAME="+user)
	return cmd
}

// fsShell runs `hdfs dfs ARGS` as the unprivileged user.
func (e hdfsEnv) fsShell(t testing.TB, args ...string) string {
	t.Helper()
	return e.hadoop(t, e.User, nil, append([]string{"org.apache.hadoop.fs.FsShell"}, args...)...)
}

// dfsAdmin runs `hdfs dfsadmin ARGS` as the superuser.
func (e hdfsEnv) dfsAdmin(t testing.TB, args ...string) string {
	t.Helper()
	return e.hadoop(t, e.Superuser, nil, append([]string{"org.apache.hadoop.hdfs.tools.DFSAdmin"}, args...)...)
}

// The roots of one test process are siblings under runDir.
var (
	runDir  = fmt.Sprintf("kbr-test/run-%s-%s", time.Now().UTC().Format("20060102T150405"), randHex(3))
	rootSeq atomic.Int64
)

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// freshRoot returns an HDFS directory for one test under the user's home,
// removed when the test ends.
func (e hdfsEnv) freshRoot(t testing.TB) string {
	t.Helper()
	name := unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	root := fmt.Sprintf("%s/%s/%03d-%s", e.Home, runDir, rootSeq.Add(1), name)
	t.Cleanup(func() { e.removeAll(t, root) })
	return root
}

// removeAll deletes an HDFS tree with a client of its own (not the backend
// under test, which the test may have closed or broken).
func (e hdfsEnv) removeAll(t testing.TB, p string) {
	c, err := gohdfs.NewClient(gohdfs.ClientOptions{Addresses: []string{e.NameNode}, User: e.User})
	if err != nil {
		t.Logf("cleanup of %s: %v", p, err)
		return
	}
	defer c.Close()
	if err := c.RemoveAll(p); err != nil {
		t.Logf("cleanup of %s: %v", p, err)
	}
}

// target is a RemoteHDFS target on the stack's NameNode.
func (e hdfsEnv) target(root string) storage.Target {
	return storage.Target{Type: "RemoteHDFS", NameNodes: []string{e.NameNode}, User: e.User, Path: root}
}

// newBackend opens a backend on a fresh root and closes it when the test ends.
func (e hdfsEnv) newBackend(t testing.TB) *Backend {
	t.Helper()
	return e.openBackend(t, e.target(e.freshRoot(t)), defaultOptions())
}

func (e hdfsEnv) openBackend(t testing.TB, tgt storage.Target, o options) *Backend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := open(ctx, tgt, o)
	if err != nil {
		t.Fatalf("open %s: %v", tgt, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// deadAddr is a loopback address nothing listens on: connections are refused.
func deadAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}
