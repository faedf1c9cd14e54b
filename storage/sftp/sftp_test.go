package sftp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/kbr-project/kbr/internal/secret"
	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/all"
	kbrsftp "github.com/kbr-project/kbr/storage/sftp"
)

func writeSecret(t *testing.T, content []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// roundTrip writes and reads back one file through b.
func roundTrip(t *testing.T, b storage.Backend) {
	t.Helper()
	ctx := t.Context()
	if _, err := storage.WriteFile(ctx, b, "hello/world", strings.NewReader("hello")); err != nil {
		t.Fatalf("write through %s: %v", b, err)
	}
	rc, err := b.Open(ctx, "hello/world")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, _ := io.ReadAll(rc); string(got) != "hello" {
		t.Errorf("read %q, want hello", got)
	}
}

// TestAuthentication guards against a backend that only works with one of
// the two ways MRS targets log in: a passphrase-less private key, and a
// password (each alone, and both given).
func TestAuthentication(t *testing.T) {
	s := loadServer(t)
	dir := s.scratch(t)
	for _, tc := range []struct {
		name          string
		key, password bool
	}{
		{"private key", true, false},
		{"password", false, true},
		{"key and password", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := s.target(dir + "/" + strings.ReplaceAll(tc.name, " ", "-"))
			tg.PrivateKey, tg.Password = secret.Ref{}, secret.Ref{}
			if tc.key {
				tg.PrivateKey = secret.Ref{File: s.keyFile}
			}
			if tc.password {
				tg.Password = secret.Ref{File: s.passwordFile}
			}
			if err := all.Registry().Validate(tg); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			b, err := all.Registry().Open(t.Context(), tg)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer b.Close()
			roundTrip(t, b)
		})
	}
	// The password from an environment variable, as a worker would have it.
	pw, err := secret.Ref{File: s.passwordFile}.Resolve("password")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KBR_TEST_SFTP_PASSWORD", pw)
	tg := s.target(dir + "/env")
	tg.PrivateKey, tg.Password = secret.Ref{}, secret.Ref{Env: "KBR_TEST_SFTP_PASSWORD"}
	b, err := all.Registry().Open(t.Context(), tg)
	if err != nil {
		t.Fatalf("Open with the password from the environment: %v", err)
	}
	b.Close()
}

// TestWrongKey guards against an unknown client key being reported as
// anything but a permanent authentication failure naming the target.
func TestWrongKey(t *testing.T) {
	s := loadServer(t)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "not authorized")
	if err != nil {
		t.Fatal(err)
	}
	tg := s.target(s.scratch(t))
	tg.PrivateKey = secret.Ref{File: writeSecret(t, pem.EncodeToMemory(block))}
	_, err = all.Registry().Open(t.Context(), tg)
	if err == nil || !storage.IsPermanent(err) || !strings.Contains(err.Error(), "authentication failed") || !strings.Contains(err.Error(), tg.String()) {
		t.Errorf("Open with an unauthorized key = %v; want a permanent authentication failure naming %s", err, tg)
	}
}

// TestPassphraseKey guards against a confusing parse error (or a hang
// waiting for input) when the key is protected by a passphrase.
func TestPassphraseKey(t *testing.T) {
	s := loadServer(t)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	tg := s.target(s.scratch(t))
	tg.PrivateKey = secret.Ref{File: writeSecret(t, pem.EncodeToMemory(block))}
	_, err = all.Registry().Open(t.Context(), tg)
	if err == nil || !storage.IsPermanent(err) || !strings.Contains(err.Error(), "passphrase") {
		t.Errorf("Open with a passphrase-protected key = %v; want a permanent error about the passphrase", err)
	}
}

// TestHostKeyRefused guards against the one mistake an SFTP client must
// never make: trusting whatever host key it is shown. No key configured, a
// changed key, and a key of another type must all be refused, permanently,
// with a message that says so.
func TestHostKeyRefused(t *testing.T) {
	s := loadServer(t)
	dir := s.scratch(t)
	otherEd, _, _ := ed25519.GenerateKey(rand.Reader)
	otherEdKey, _ := ssh.NewPublicKey(otherEd)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecKey, _ := ssh.NewPublicKey(&ec.PublicKey)
	line := func(k ssh.PublicKey) string {
		return "[" + s.host + "]:12222 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
	}
	for _, tc := range []struct{ name, known, want string }{
		{"unknown (none configured)", "", "which is empty: the server offers ssh-ed25519"},
		{"changed", line(otherEdKey), "the target expects ssh-ed25519 " + ssh.FingerprintSHA256(otherEdKey)},
		{"changed, other key type", line(ecKey), "the server has no ecdsa-sha2-nistp256 key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := s.target(dir)
			tg.KnownHostKey = tc.known
			b, err := kbrsftp.New(t.Context(), tg)
			if err == nil {
				b.Close()
				t.Fatalf("New with known_host_key %q succeeded; want the host key refused", tc.known)
			}
			msg := err.Error()
			if !storage.IsPermanent(err) {
				t.Errorf("error is not permanent: %v", err)
			}
			if want := "host key of " + s.host + " does not match target.known_host_key"; !strings.Contains(msg, want) {
				t.Errorf("error %q lacks %q", msg, want)
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q lacks %q", msg, tc.want)
			}
		})
	}
	// The right key in each accepted spelling.
	key := strings.Fields(s.knownHost)
	for _, known := range []string{s.knownHost, key[1] + " " + key[2], key[1] + " " + key[2] + " a comment", "|1|c2FsdA==|aGFzaA== " + key[1] + " " + key[2]} {
		tg := s.target(dir)
		tg.KnownHostKey = known
		b, err := kbrsftp.New(t.Context(), tg)
		if err != nil {
			t.Errorf("New with known_host_key %q: %v", known, err)
			continue
		}
		b.Close()
	}
}

// TestValidate guards against targets that pass validation and then fail
// at 3 a.m. with a less helpful error (or, worse, connect without a pinned
// host key).
func TestValidate(t *testing.T) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	pub, _ := ssh.NewPublicKey(edPub)
	known := "sftp.example.com " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	good := storage.Target{
		Type: "SFTP", Server: "sftp.example.com", User: "backup",
		Password: secret.Ref{Env: "PW"}, KnownHostKey: known, Path: "/backup/kafka",
	}
	if err := all.Registry().Validate(good); err != nil {
		t.Fatalf("Validate(good) = %v", err)
	}
	for _, tc := range []struct {
		param  string
		change func(*storage.Target)
	}{
		{"target.server", func(t *storage.Target) { t.Server = "" }},
		{"target.server", func(t *storage.Target) { t.Server = "sftp.example.com:22" }},
		{"target.port", func(t *storage.Target) { t.Port = 70000 }},
		{"target.port", func(t *storage.Target) { t.Port = -1 }},
		{"target.user", func(t *storage.Target) { t.User = "" }},
		{"target.password", func(t *storage.Target) { t.Password = secret.Ref{} }},
		{"target.password", func(t *storage.Target) { t.Password = secret.Ref{Env: "A", File: "/b"} }},
		{"target.private_key", func(t *storage.Target) { t.PrivateKey = secret.Ref{Env: "A", File: "/b"} }},
		{"target.known_host_key", func(t *storage.Target) { t.KnownHostKey = "" }},
		{"target.known_host_key", func(t *storage.Target) { t.KnownHostKey = "sftp.example.com ssh-ed25519 bm90IGEga2V5" }},
		{"target.known_host_key", func(t *storage.Target) {
			t.KnownHostKey = "@cert-authority * " + strings.Fields(known)[1] + " " + strings.Fields(known)[2]
		}},
		{"target.path", func(t *storage.Target) { t.Path = "" }},
	} {
		tg := good
		tc.change(&tg)
		err := all.Registry().Validate(tg)
		var pe *storage.ParamError
		if !errors.As(err, &pe) || pe.Param != tc.param {
			t.Errorf("Validate(%+v) = %v; want a ParamError for %s", tg, err, tc.param)
		}
	}
	for _, change := range []func(*storage.Target){
		func(t *storage.Target) { t.Server = "::1" },
		func(t *storage.Target) { t.Server = "10.0.0.1"; t.Port = 2222 },
		func(t *storage.Target) {
			t.Password = secret.Ref{}
			t.PrivateKey = secret.Ref{File: "/etc/kbr/id_ed25519"}
		},
		func(t *storage.Target) { t.KnownHostKey = strings.SplitN(known, " ", 2)[1] },
	} {
		tg := good
		change(&tg)
		if err := all.Registry().Validate(tg); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", tg, err)
		}
	}
}

// TestOpenRefusesBadTarget guards against Open reaching the network with a
// target that validation would refuse.
func TestOpenRefusesBadTarget(t *testing.T) {
	_, err := all.Registry().Open(context.Background(), storage.Target{Type: "sftp", Server: "127.0.0.1", Path: "/x"})
	var pe *storage.ParamError
	if !errors.As(err, &pe) || !storage.IsPermanent(err) {
		t.Errorf("Open of a target without user = %v; want a permanent ParamError", err)
	}
}
