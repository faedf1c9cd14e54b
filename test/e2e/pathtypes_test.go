package e2e

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"

	"github.com/kbr-project/kbr/internal/secret"
	"github.com/kbr-project/kbr/internal/secretscan"
	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/storage"
)

// pathType is one backup target the round trip runs on.
type pathType struct {
	name    string
	target  storage.Target
	secrets []string // values that must never appear in logs or histories
}

// pathTypes lists every path type with its real server from the stack.
func pathTypes(t *testing.T, env testenv.Env) []pathType {
	t.Helper()
	id := randID()
	hostPort := func(key string) (string, int) {
		host, port, err := net.SplitHostPort(need(t, env, key))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		n, _ := strconv.Atoi(port)
		return host, n
	}
	out := []pathType{
		{name: "LocalDir", target: storage.Target{Type: "LocalDir", Path: filepath.Join(t.TempDir(), "backups")}},
	}
	hdfs := storage.Target{NameNodes: []string{need(t, env, "KBR_HDFS_NAMENODE")}, User: need(t, env, "KBR_HDFS_USER"),
		Path: need(t, env, "KBR_HDFS_HOME") + "/e2e-" + id}
	local, remote := hdfs, hdfs
	local.Type, local.NameService, local.Path = "LocalHDFS", "hacluster", local.Path+"-local"
	remote.Type, remote.NameService = "RemoteHDFS", "standby"
	out = append(out, pathType{name: "LocalHDFS", target: local}, pathType{name: "RemoteHDFS", target: remote})

	// The kernel here has no NFS client, so NFS runs in existing-mount mode
	// (KBR_NFS_MOUNT_ERROR in stack.env says why); with a server mode the
	// stack gives a mount command instead.
	nfs := storage.Target{Type: "NFS", Path: "e2e-" + id}
	if env.Vars["KBR_NFS_MODE"] == "server" {
		nfs.Server, nfs.SharePath = need(t, env, "KBR_NFS_SERVER"), need(t, env, "KBR_NFS_SHARE")
		nfs.MountPoint, nfs.MountCommand = need(t, env, "KBR_NFS_MOUNT_POINT"), need(t, env, "KBR_NFS_MOUNT_COMMAND")
	} else {
		nfs.ExistingMount, nfs.MountPoint = true, need(t, env, "KBR_NFS_EXISTING_DIR")
	}
	out = append(out, pathType{name: "NFS", target: nfs})

	// CIFS on both Samba servers of the stack: the default one, and the one
	// with server signing = mandatory (every message signed both ways).
	cifsPass := need(t, env, "KBR_CIFS_PASSWORD_FILE")
	for _, c := range []struct{ name, prefix string }{{"CIFS", "KBR_CIFS_"}, {"CIFS-signed", "KBR_CIFS_SIGNED_"}} {
		host, port := hostPort(c.prefix + "ADDR")
		out = append(out, pathType{name: c.name, secrets: []string{fileSecret(t, cifsPass)}, target: storage.Target{
			Type: "CIFS", Server: host, Port: port, User: need(t, env, "KBR_CIFS_USER"), Password: secret.Ref{File: cifsPass},
			Share: need(t, env, c.prefix+"SHARE"), Path: "e2e-" + id}})
	}

	host, port := hostPort("KBR_SFTP_ADDR")
	sftpPass := need(t, env, "KBR_SFTP_PASSWORD_FILE")
	out = append(out, pathType{name: "SFTP", secrets: []string{fileSecret(t, sftpPass)}, target: storage.Target{
		Type: "SFTP", Server: host, Port: port, User: need(t, env, "KBR_SFTP_USER"), Password: secret.Ref{File: sftpPass},
		KnownHostKey: need(t, env, "KBR_SFTP_KNOWN_HOST"), Path: need(t, env, "KBR_SFTP_ROOT") + "/e2e-" + id}})

	obsSecret := need(t, env, "KBR_OBS_SECRET_KEY_FILE")
	out = append(out, pathType{name: "OBS", secrets: []string{fileSecret(t, obsSecret)}, target: storage.Target{
		Type: "OBS", Endpoint: need(t, env, "KBR_OBS_ENDPOINT"), Bucket: need(t, env, "KBR_OBS_BUCKET"),
		Region: env.Vars["KBR_OBS_REGION"], PathStyle: true, Path: "e2e-" + id,
		AccessKey: secret.Ref{File: need(t, env, "KBR_OBS_ACCESS_KEY_FILE")}, SecretKey: secret.Ref{File: obsSecret}}})
	return out
}

// need returns a stack.env value or fails the test.
func need(t *testing.T, env testenv.Env, key string) string {
	t.Helper()
	v := env.Vars[key]
	if v == "" {
		t.Fatalf("%s missing from deploy/local/stack.env: run `make stack-up`", key)
	}
	return v
}

// fileSecret reads a secret the stack wrote to a file.
func fileSecret(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(string(b), "\r\n")
}

// assertNoSecrets scans the server and worker logs (the round trip runs
// its worker at debug level) and the histories of the given workflows for
// every secret value: every payload of every event decoded
// (secretscan.History), not protojson, which shows payloads in base64.
func assertNoSecrets(t *testing.T, secrets []string, workflowIDs ...string) {
	t.Helper()
	for _, s := range secrets {
		if len(s) < 4 {
			t.Fatalf("test secret %q too short to scan for", s)
		}
	}
	logs, err := os.ReadFile(h.logs.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), "level=DEBUG") {
		t.Errorf("the kbr logs hold no debug line: the scan would miss what only debug logging writes")
	}
	c := temporalClient(t)
	for _, id := range workflowIDs {
		hist := &historypb.History{}
		it := c.GetWorkflowHistory(context.Background(), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			hist.Events = append(hist.Events, ev)
		}
		if len(hist.Events) == 0 {
			t.Fatalf("history of %s is empty", id)
		}
		for _, f := range secretscan.History(hist, secrets) {
			t.Errorf("history of %s: %s", id, f)
		}
	}
	for _, f := range secretscan.Text(logs, secrets) {
		t.Errorf("kbr server/worker log: %s", f)
	}
}
