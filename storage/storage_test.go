package storage

import (
	"strings"
	"testing"

	"github.com/kbr-project/kbr/internal/secret"
)

// TestTargetString guards against log lines that do not say which server,
// port and share a target is, and against secrets in them.
func TestTargetString(t *testing.T) {
	for _, tc := range []struct {
		t    Target
		want string
	}{
		{Target{Type: "CIFS", Server: "nas1", Port: 1445, User: `CORP\kbr`, Share: "kafka", Path: "prod", Password: secret.Ref{Env: "PW"}},
			`CIFS:CORP\kbr@nas1:1445/kafka:prod`},
		{Target{Type: "CIFS", Server: "nas1", User: "kbr", Share: "kafka", Path: "prod"}, "CIFS:kbr@nas1/kafka:prod"},
		{Target{Type: "CIFS", Server: "fe80::1", Port: 445, User: "kbr", Share: "kafka", Path: "/"}, "CIFS:kbr@[fe80::1]:445/kafka:/"},
		{Target{Type: "SFTP", Server: "sftp1", Port: 2222, User: "kbr", Path: "/srv/backup"}, "SFTP:kbr@sftp1:2222:/srv/backup"},
		{Target{Type: "SFTP", Server: "sftp1", User: "kbr", Path: "/srv/backup"}, "SFTP:kbr@sftp1:/srv/backup"},
		{Target{Type: "NFS", Server: "nas1", SharePath: "/export/kafka", Path: "prod"}, "NFS:nas1:/export/kafka:prod"},
		{Target{Type: "LocalDir", Path: "/var/backups"}, "LocalDir:/var/backups"},
	} {
		got := tc.t.String()
		if got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
		if strings.Contains(got, "PW") {
			t.Errorf("String() = %q shows the secret reference", got)
		}
	}
}

// TestPartialNames guards against two writes of one name sharing a
// temporary file, and against listings that show (or prunes that miss)
// temporary files.
func TestPartialNames(t *testing.T) {
	a, b := PartialName("x/seg"), PartialName("x/seg")
	if a == b {
		t.Errorf("PartialName twice = %q both times", a)
	}
	for _, n := range []string{a, b, "x/seg.kbr-partial", "seg.kbr-partial-0123abcd"} {
		if !IsPartial(n) {
			t.Errorf("IsPartial(%q) = false", n)
		}
	}
	for _, n := range []string{"x/seg", "x.kbr-partial-/seg", "seg.kbr-partial-", "seg.kbr-partial-xyz", "seg.kbr-partialx", "a.kbr-partial/b"} {
		if IsPartial(n) {
			t.Errorf("IsPartial(%q) = true", n)
		}
	}
}
