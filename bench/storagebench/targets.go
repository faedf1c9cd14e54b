package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/kbr-project/kbr/internal/secret"
	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/storage"
)

// native is the server's own client, used as the reference.
type native interface {
	// describe names the client as the table shows it.
	describe() string
	// startup times a no-op invocation (JVM, SSH or SMB session set-up);
	// 0 when the client has no such fixed cost worth measuring.
	startup(ctx context.Context) (time.Duration, error)
	// put writes the local file src as name (relative to the target root)
	// and returns the parts of the time it took when it has several.
	put(ctx context.Context, src, name string) (map[string]float64, error)
	// get reads name to /dev/null.
	get(ctx context.Context, name string) error
	// removeRoot removes the target root and everything in it (kbr's
	// Delete removes the files first).
	removeRoot(ctx context.Context) error
}

// pathSetup is one path type: the kbr target and its native reference.
type pathSetup struct {
	target storage.Target
	native native
	// rootFS is set where the target root is a local directory.
	rootFS string
	// addrs are the servers' TCP addresses, waited for after a failure.
	addrs []string
	// fromFile: the kbr write reads the source file (not the generator)
	// in -source auto mode.
	fromFile bool
	note     string
}

// setup builds the target of typ from stack.env the way
// test/e2e/pathtypes_test.go does, with a root of its own.
func (b *bench) setup(typ string) (*pathSetup, error) {
	env := b.env
	need := func(key string) (string, error) {
		if v := env.Vars[key]; v != "" {
			return v, nil
		}
		return "", fmt.Errorf("%s missing from %s: run `deploy/stack.sh up`", key, testenv.EnvFile)
	}
	var errs []error
	must := func(key string) string {
		v, err := need(key)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	hostPort := func(key string) (string, int) {
		v := must(key)
		host, port, err := net.SplitHostPort(v)
		if err != nil && v != "" {
			errs = append(errs, fmt.Errorf("%s: %v", key, err))
		}
		n, _ := strconv.Atoi(port)
		return host, n
	}
	dir := "storagebench-" + b.id
	var s *pathSetup
	switch typ {
	case "LocalDir":
		root := filepath.Join(b.work, "localdir")
		s = &pathSetup{target: storage.Target{Type: "LocalDir", Path: root}, rootFS: root, fromFile: true,
			native: &fsNative{root: root}}
	case "NFS":
		// The kernel here has no NFS client, so NFS runs in existing-mount
		// mode (KBR_NFS_MOUNT_ERROR in stack.env says why); with a server
		// mode the stack gives a mount command instead.
		t := storage.Target{Type: "NFS", Path: dir}
		mp := ""
		if env.Vars["KBR_NFS_MODE"] == "server" {
			t.Server, t.SharePath = must("KBR_NFS_SERVER"), must("KBR_NFS_SHARE")
			t.MountPoint, t.MountCommand = must("KBR_NFS_MOUNT_POINT"), must("KBR_NFS_MOUNT_COMMAND")
			mp = t.MountPoint
		} else {
			t.ExistingMount, t.MountPoint = true, must("KBR_NFS_EXISTING_DIR")
			mp = t.MountPoint
		}
		root := filepath.Join(mp, dir)
		s = &pathSetup{target: t, rootFS: root, fromFile: true, native: &fsNative{root: root},
			note: "mode " + env.Vars["KBR_NFS_MODE"]}
	case "LocalHDFS":
		root := must("KBR_HDFS_HOME") + "/" + dir
		t := storage.Target{Type: "LocalHDFS", NameService: "hacluster", NameNodes: []string{must("KBR_HDFS_NAMENODE")},
			User: must("KBR_HDFS_USER"), Path: root}
		s = &pathSetup{target: t, addrs: []string{must("KBR_HDFS_NAMENODE"), env.Vars["KBR_HDFS_DATANODE"]}, native: &hdfsNative{classpath: must("KBR_HDFS_CLASSPATH"), nameNode: must("KBR_HDFS_NAMENODE"),
			user: must("KBR_HDFS_USER"), root: root}}
	case "CIFS", "CIFS-signed":
		prefix := "KBR_CIFS_"
		if typ == "CIFS-signed" {
			prefix = "KBR_CIFS_SIGNED_"
		}
		host, port := hostPort(prefix + "ADDR")
		pass := must("KBR_CIFS_PASSWORD_FILE")
		t := storage.Target{Type: "CIFS", Server: host, Port: port, User: must("KBR_CIFS_USER"),
			Password: secret.Ref{File: pass}, Share: must(prefix + "SHARE"), Path: dir}
		s = &pathSetup{target: t, addrs: []string{must(prefix + "ADDR")}, native: &smbNative{work: b.work, host: host, port: port, share: t.Share,
			user: t.User, passFile: pass, root: dir, shareDir: env.Vars[prefix+"SHARE_DIR"]}}
		if typ == "CIFS-signed" {
			s.note = "server signing = mandatory"
		}
	case "SFTP":
		host, port := hostPort("KBR_SFTP_ADDR")
		key := must("KBR_SFTP_KEY_FILE")
		root := must("KBR_SFTP_ROOT") + "/" + dir
		// Key authentication on both sides (the native client is given the same key).
		t := storage.Target{Type: "SFTP", Server: host, Port: port, User: must("KBR_SFTP_USER"),
			PrivateKey: secret.Ref{File: key}, KnownHostKey: must("KBR_SFTP_KNOWN_HOST"), Path: root}
		s = &pathSetup{target: t, addrs: []string{must("KBR_SFTP_ADDR")}, native: &sftpNative{work: b.work, host: host, port: port, user: t.User,
			keyFile: key, knownHost: t.KnownHostKey, root: root}}
	case "OBS":
		t := storage.Target{Type: "OBS", Endpoint: must("KBR_OBS_ENDPOINT"), Bucket: must("KBR_OBS_BUCKET"),
			Region: env.Vars["KBR_OBS_REGION"], PathStyle: true, Path: dir,
			AccessKey: secret.Ref{File: must("KBR_OBS_ACCESS_KEY_FILE")}, SecretKey: secret.Ref{File: must("KBR_OBS_SECRET_KEY_FILE")}}
		if len(errs) > 0 {
			break
		}
		n, err := newMinioNative(t)
		if err != nil {
			return nil, err
		}
		u, _ := url.Parse(t.Endpoint)
		s = &pathSetup{target: t, addrs: []string{u.Host}, native: n}
	default:
		return nil, fmt.Errorf("unknown path type %q", typ)
	}
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return s, nil
}

// runCmd runs a client and returns its error with the end of its output.
func runCmd(cmd *exec.Cmd) error {
	var out bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &out
	}
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		s := out.String()
		if len(s) > 2000 {
			s = "..." + s[len(s)-2000:]
		}
		return fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(s))
	}
	return nil
}

// devNull opens /dev/null for a client's standard output.
func devNull() *os.File {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		panic(err)
	}
	return f
}

// ---------------------------------------------------------------------------
// LocalDir, NFS: cp and cat

type fsNative struct{ root string }

func (n *fsNative) describe() string { return "cp+sync / cat" }

func (n *fsNative) startup(ctx context.Context) (time.Duration, error) { return 0, nil }

// put copies with cp, then fsyncs the copy with `sync FILE`: kbr's Commit
// fsyncs (and renames), and a cp alone would leave the data in the page
// cache. The two parts are reported apart.
func (n *fsNative) put(ctx context.Context, src, name string) (map[string]float64, error) {
	dst := filepath.Join(n.root, filepath.FromSlash(name))
	t0 := time.Now()
	if err := runCmd(exec.CommandContext(ctx, "cp", src, dst)); err != nil {
		return nil, err
	}
	t1 := time.Now()
	if err := runCmd(exec.CommandContext(ctx, "sync", dst)); err != nil {
		return nil, err
	}
	return map[string]float64{"cp": t1.Sub(t0).Seconds(), "sync": time.Since(t1).Seconds()}, nil
}

func (n *fsNative) get(ctx context.Context, name string) error {
	cmd := exec.CommandContext(ctx, "cat", filepath.Join(n.root, filepath.FromSlash(name)))
	cmd.Stdout = devNull()
	defer cmd.Stdout.(*os.File).Close()
	return runCmd(cmd)
}

func (n *fsNative) removeRoot(ctx context.Context) error { return os.RemoveAll(n.root) }

// ---------------------------------------------------------------------------
// HDFS: Hadoop's FsShell (what `hdfs dfs` runs) in a JVM

type hdfsNative struct {
	classpath, nameNode, user, root string
}

func (n *hdfsNative) describe() string { return "FsShell -put/-cat" }

func (n *hdfsNative) cmd(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"-Xmx512m", "-Djava.net.preferIPv4Stack=true", "-cp", n.classpath,
		"org.apache.hadoop.fs.FsShell", "-D", "fs.defaultFS=hdfs://" + n.nameNode}, args...)
	cmd := exec.CommandContext(ctx, "java", full...)
	cmd.Env = append(os.Environ(), "HADOOP_USER_NAME="+n.user)
	return cmd
}

// startup: a JVM that asks the NameNode one question (-test -d root).
func (n *hdfsNative) startup(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	err := runCmd(n.cmd(ctx, "-test", "-d", n.root))
	return time.Since(t0), err
}

// put: -put -f writes <name>._COPYING_ and renames it, like kbr's partial file.
func (n *hdfsNative) put(ctx context.Context, src, name string) (map[string]float64, error) {
	return nil, runCmd(n.cmd(ctx, "-put", "-f", src, path.Join(n.root, name)))
}

func (n *hdfsNative) get(ctx context.Context, name string) error {
	cmd := n.cmd(ctx, "-cat", path.Join(n.root, name))
	cmd.Stdout = devNull()
	defer cmd.Stdout.(*os.File).Close()
	return runCmd(cmd)
}

func (n *hdfsNative) removeRoot(ctx context.Context) error {
	return runCmd(n.cmd(ctx, "-rm", "-r", "-f", "-skipTrash", n.root))
}

// ---------------------------------------------------------------------------
// CIFS: smbclient

type smbNative struct {
	work, host, share, user, passFile, root string
	port                                    int
	// shareDir is the share's directory on this machine (the stack's
	// servers run here): a put is followed by `sync FILE` there, the flush
	// to disk that kbr's Commit asks the server for (smbclient has none).
	shareDir string
}

func (n *smbNative) describe() string {
	if n.shareDir != "" {
		return "smbclient put (+sync)/get"
	}
	return "smbclient put/get"
}

// authFile writes the credentials to a 0600 file for -A, so the password
// never appears on a command line.
func (n *smbNative) authFile() (string, error) {
	// Written anew for every call: the stack's scripts may set a new
	// password when they restart the server.
	pw, err := secret.Ref{File: n.passFile}.Resolve("KBR_CIFS_PASSWORD_FILE")
	if err != nil {
		return "", err
	}
	p := filepath.Join(n.work, "smbclient.auth")
	if err := os.WriteFile(p, []byte(fmt.Sprintf("username = %s\npassword = %s\n", n.user, pw)), 0o600); err != nil {
		return "", err
	}
	return p, nil
}

func (n *smbNative) run(ctx context.Context, commands string) error {
	auth, err := n.authFile()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "smbclient", "//"+n.host+"/"+n.share, "-p", strconv.Itoa(n.port), "-A", auth, "-c", commands)
	return runCmd(cmd)
}

func (n *smbNative) remote(name string) string {
	return strings.ReplaceAll(n.root+"/"+name, "/", `\`)
}

func (n *smbNative) startup(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	err := n.run(ctx, "pwd")
	return time.Since(t0), err
}

func (n *smbNative) put(ctx context.Context, src, name string) (map[string]float64, error) {
	t0 := time.Now()
	if err := n.run(ctx, fmt.Sprintf(`put "%s" "%s"`, src, n.remote(name))); err != nil {
		return nil, err
	}
	if n.shareDir == "" {
		return nil, nil
	}
	t1 := time.Now()
	if err := runCmd(exec.CommandContext(ctx, "sync", filepath.Join(n.shareDir, n.root, filepath.FromSlash(name)))); err != nil {
		return nil, err
	}
	return map[string]float64{"put": t1.Sub(t0).Seconds(), "sync": time.Since(t1).Seconds()}, nil
}

func (n *smbNative) get(ctx context.Context, name string) error {
	return n.run(ctx, fmt.Sprintf(`get "%s" /dev/null`, n.remote(name)))
}

func (n *smbNative) removeRoot(ctx context.Context) error {
	return n.run(ctx, fmt.Sprintf(`deltree "%s"`, strings.ReplaceAll(n.root, "/", `\`)))
}

// ---------------------------------------------------------------------------
// SFTP: OpenSSH's sftp in batch mode

type sftpNative struct {
	work, host, user, keyFile, knownHost, root string
	port                                       int
	known                                      string
	cipher                                     string
}

func (n *sftpNative) describe() string {
	if n.cipher != "" {
		return "sftp put -f/get (" + n.cipher + ")"
	}
	return "sftp put -f/get"
}

func (n *sftpNative) run(ctx context.Context, verbose bool, batch ...string) (string, error) {
	if n.known == "" {
		n.known = filepath.Join(n.work, "sftp_known_hosts")
		if err := os.WriteFile(n.known, []byte(n.knownHost+"\n"), 0o600); err != nil {
			return "", err
		}
	}
	bf, err := os.CreateTemp(n.work, "sftp-batch-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(bf.Name())
	bf.WriteString(strings.Join(batch, "\n") + "\n")
	bf.Close()
	args := []string{"-b", bf.Name(), "-P", strconv.Itoa(n.port), "-i", n.keyFile,
		"-o", "UserKnownHostsFile=" + n.known, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"}
	if verbose {
		args = append(args, "-v")
	}
	args = append(args, n.user+"@"+n.host)
	cmd := exec.CommandContext(ctx, "sftp", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		s := out.String()
		if len(s) > 2000 {
			s = "..." + s[len(s)-2000:]
		}
		return s, fmt.Errorf("sftp %s: %v\n%s", strings.Join(batch, "; "), err, strings.TrimSpace(s))
	}
	return out.String(), nil
}

var cipherRE = regexp.MustCompile(`kex: client->server cipher: (\S+)`)

// startup: one session that only asks for the working directory. A -v run
// before it notes the negotiated cipher.
func (n *sftpNative) startup(ctx context.Context) (time.Duration, error) {
	if n.cipher == "" {
		if out, err := n.run(ctx, true, "pwd"); err == nil {
			if m := cipherRE.FindStringSubmatch(out); m != nil {
				n.cipher = m[1]
			}
		}
	}
	t0 := time.Now()
	_, err := n.run(ctx, false, "pwd")
	return time.Since(t0), err
}

// put -f fsyncs the file on the server (fsync@openssh.com), as kbr's Commit does.
func (n *sftpNative) put(ctx context.Context, src, name string) (map[string]float64, error) {
	_, err := n.run(ctx, false, fmt.Sprintf(`put -f "%s" "%s"`, src, n.root+"/"+name))
	return nil, err
}

func (n *sftpNative) get(ctx context.Context, name string) error {
	_, err := n.run(ctx, false, fmt.Sprintf(`get "%s" /dev/null`, n.root+"/"+name))
	return err
}

func (n *sftpNative) removeRoot(ctx context.Context) error {
	// "-" lets the batch go on when there is nothing to remove.
	_, err := n.run(ctx, false, fmt.Sprintf(`-rm "%s/*"`, n.root), fmt.Sprintf(`rmdir "%s"`, n.root))
	return err
}

// ---------------------------------------------------------------------------
// OBS: plain minio-go in this process

type minioNative struct {
	c              *minio.Client
	bucket, prefix string
}

func newMinioNative(t storage.Target) (*minioNative, error) {
	u, err := url.Parse(t.Endpoint)
	if err != nil {
		return nil, err
	}
	ak, err := t.AccessKey.Resolve("KBR_OBS_ACCESS_KEY_FILE")
	if err != nil {
		return nil, err
	}
	sk, err := t.SecretKey.Resolve("KBR_OBS_SECRET_KEY_FILE")
	if err != nil {
		return nil, err
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(ak, sk, ""),
		Secure:       u.Scheme == "https",
		Region:       t.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, err
	}
	return &minioNative{c: c, bucket: t.Bucket, prefix: strings.Trim(t.Path, "/") + "/"}, nil
}

func (n *minioNative) describe() string { return "minio-go Put/GetObject" }

func (n *minioNative) startup(ctx context.Context) (time.Duration, error) { return 0, nil }

func (n *minioNative) put(ctx context.Context, src, name string) (map[string]float64, error) {
	f, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	_, err = n.c.PutObject(ctx, n.bucket, n.prefix+name, f, st.Size(), minio.PutObjectOptions{ContentType: "application/octet-stream"})
	return nil, err
}

func (n *minioNative) get(ctx context.Context, name string) error {
	obj, err := n.c.GetObject(ctx, n.bucket, n.prefix+name, minio.GetObjectOptions{})
	if err != nil {
		return err
	}
	defer obj.Close()
	_, err = io.CopyBuffer(onlyWriter{io.Discard}, onlyReader{obj}, make([]byte, 256<<10))
	return err
}

// removeRoot removes every object and incomplete upload under the prefix.
func (n *minioNative) removeRoot(ctx context.Context) error {
	for oi := range n.c.ListObjects(ctx, n.bucket, minio.ListObjectsOptions{Prefix: n.prefix, Recursive: true}) {
		if oi.Err != nil {
			return oi.Err
		}
		if err := n.c.RemoveObject(ctx, n.bucket, oi.Key, minio.RemoveObjectOptions{}); err != nil {
			return err
		}
	}
	for u := range n.c.ListIncompleteUploads(ctx, n.bucket, n.prefix, true) {
		if u.Err != nil {
			return u.Err
		}
		if err := n.c.RemoveIncompleteUpload(ctx, n.bucket, u.Key); err != nil {
			return err
		}
	}
	return nil
}
