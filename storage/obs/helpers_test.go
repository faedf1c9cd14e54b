package obs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/kbr-project/kbr/internal/secret"
	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/storage"
)

// obsEnv is the MinIO of the local stack (deploy/services/minio.sh).
type obsEnv struct {
	Endpoint, VHostEndpoint, Bucket, Region string
	AccessKeyFile, SecretKeyFile            string
	Stop, Start                             string
}

func loadOBS(t testing.TB) obsEnv {
	t.Helper()
	env := testenv.Load(t)
	e := obsEnv{
		Endpoint:      env.Vars["KBR_OBS_ENDPOINT"],
		VHostEndpoint: env.Vars["KBR_OBS_VHOST_ENDPOINT"],
		Bucket:        env.Vars["KBR_OBS_BUCKET"],
		Region:        env.Vars["KBR_OBS_REGION"],
		AccessKeyFile: env.Vars["KBR_OBS_ACCESS_KEY_FILE"],
		SecretKeyFile: env.Vars["KBR_OBS_SECRET_KEY_FILE"],
		Stop:          env.Vars["KBR_OBS_STOP"],
		Start:         env.Vars["KBR_OBS_START"],
	}
	if e.Endpoint == "" || e.Bucket == "" || e.AccessKeyFile == "" || e.SecretKeyFile == "" || e.Stop == "" || e.Start == "" {
		t.Fatalf("obs: %s has no KBR_OBS_* keys (MinIO is not part of the running stack); run `make stack-up`", testenv.EnvFile)
	}
	if !minioAnswers(e.Endpoint) {
		t.Fatalf("obs: MinIO at %s does not answer (stopped?); run `make stack-up`", e.Endpoint)
	}
	return e
}

func minioAnswers(endpoint string) bool {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(endpoint + "/minio/health/ready")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func randName(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// runPrefix groups the keys of one test process; every test cleans up its own.
var runPrefix = "kbr-test-" + time.Now().UTC().Format("20060102-150405") + "-" + randName(3)

func (e obsEnv) target(path string) storage.Target {
	return storage.Target{
		Type:      Type,
		Endpoint:  e.Endpoint,
		Bucket:    e.Bucket,
		Region:    e.Region,
		AccessKey: secret.Ref{File: e.AccessKeyFile},
		SecretKey: secret.Ref{File: e.SecretKeyFile},
		PathStyle: true,
		Path:      path,
	}
}

// admin is a plain minio-go client with the stack's root keys, for checks
// behind the backend's back.
func (e obsEnv) admin(t testing.TB) *minio.Client {
	t.Helper()
	u, err := url.Parse(e.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(readFile(t, e.AccessKeyFile), readFile(t, e.SecretKeyFile), ""),
		Secure:       u.Scheme == "https",
		Region:       e.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readFile(t testing.TB, f string) string {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(string(b), "\r\n")
}

// newTestBackend opens a backend on a fresh prefix under runPrefix/group and
// removes every object and incomplete upload under it when t ends.
func newTestBackend(t testing.TB, e obsEnv, group string) *Backend {
	t.Helper()
	tgt := e.target(runPrefix + "/" + group + "/" + randName(6))
	b, err := New(context.Background(), tgt)
	if err != nil {
		t.Fatalf("New(%s): %v", tgt, err)
	}
	t.Cleanup(func() { cleanPrefix(t, e, b.Root()) })
	return b
}

// cleanPrefix removes the objects and incomplete uploads under prefix.
func cleanPrefix(t testing.TB, e obsEnv, prefix string) {
	if !strings.HasPrefix(prefix, runPrefix+"/") {
		t.Errorf("refusing to clean %q outside %s", prefix, runPrefix)
		return
	}
	if !minioAnswers(e.Endpoint) {
		return // a failed server-stop check; nothing to clean through
	}
	c := e.admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	objs := c.ListObjects(ctx, e.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true})
	for res := range c.RemoveObjects(ctx, e.Bucket, objs, minio.RemoveObjectsOptions{}) {
		if res.Err != nil {
			t.Logf("clean %s: %v", res.ObjectName, res.Err)
		}
	}
	for u := range c.ListIncompleteUploads(ctx, e.Bucket, prefix, true) {
		if u.Err == nil {
			c.RemoveIncompleteUpload(ctx, e.Bucket, u.Key)
		}
	}
}

// incompleteUploads lists the multipart uploads in progress for key.
func incompleteUploads(t testing.TB, e obsEnv, key string) []string {
	t.Helper()
	var ids []string
	for u := range e.admin(t).ListIncompleteUploads(context.Background(), e.Bucket, key, true) {
		if u.Err != nil {
			t.Fatalf("list incomplete uploads of %s: %v", key, u.Err)
		}
		if u.Key == key {
			ids = append(ids, u.UploadID)
		}
	}
	return ids
}

// runCmd runs one of the stack's KEY=command strings (plain fields, no quoting).
func runCmd(t testing.TB, command string) {
	t.Helper()
	f := strings.Fields(command)
	out, err := exec.Command(f[0], f[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
}

// hostRecorder remembers the Host and path of every request.
type hostRecorder struct {
	rt   http.RoundTripper
	mu   sync.Mutex
	seen []string // "host path"
}

func (h *hostRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	h.mu.Lock()
	h.seen = append(h.seen, host+" "+r.URL.Path)
	h.mu.Unlock()
	return h.rt.RoundTrip(r)
}

func (h *hostRecorder) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.seen...)
}
