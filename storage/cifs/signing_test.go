package cifs_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/cifs"
)

// smbSession is one session as Samba's smbstatus --json reports it.
type smbSession struct {
	Dialect string `json:"session_dialect"`
	Signing struct {
		Cipher string `json:"cipher"`
		Degree string `json:"degree"`
	} `json:"signing"`
}

// sessions lists the server's sessions by id.
func sessions(t *testing.T, s server) map[string]smbSession {
	t.Helper()
	out, err := exec.Command("smbstatus", "-s", s.conf, "--json").Output()
	if err != nil {
		t.Fatalf("smbstatus -s %s: %v", s.conf, err)
	}
	var st struct {
		Sessions map[string]smbSession `json:"sessions"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("smbstatus --json: %v", err)
	}
	return st.Sessions
}

// TestSigningAsTheServerRequires guards against the backend signing where
// nobody asks for it (every message, as go-smb2 v1.1.0 did: half of
// smbclient's speed) and against not signing where the server or the
// target requires it. Samba's own account of each session kbr opens
// (smbstatus) says whether it is signed and how.
func TestSigningAsTheServerRequires(t *testing.T) {
	def, signed := loadServer(t), loadSignedServer(t)
	for _, c := range []struct {
		name    string
		s       server
		signing string
		// How much of the session Samba reports signed: "partial" is the
		// tree connect alone (which go-smb2 always signs), "full" every
		// message; SMB 2.1 signs with HMAC-SHA256.
		want string
	}{
		{"auto on the default server", def, "", "partial"},
		{"auto on the mandatory server", signed, cifs.SigningAuto, "full"},
		{"required on the default server", def, cifs.SigningRequired, "full"},
		{"required on the mandatory server", signed, cifs.SigningRequired, "full"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := sessions(t, c.s)
			tg := c.s.target(c.s.scratch(t))
			tg.Signing = c.signing
			b, err := cifs.New(t.Context(), tg)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			// Big enough for the data sessions to open as well.
			data := bytes.Repeat([]byte("signed? "), 512<<10)
			if _, err := storage.WriteFile(t.Context(), b, "f", bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, b, "f"); !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes, want %d", len(got), len(data))
			}
			n := 0
			for id, ss := range sessions(t, c.s) {
				if _, old := before[id]; old {
					continue
				}
				n++
				if ss.Signing.Degree != c.want || ss.Signing.Cipher != "HMAC-SHA256" {
					t.Errorf("session %s (%s): signing %s, degree %s; want HMAC-SHA256, %s", id, ss.Dialect, ss.Signing.Cipher, ss.Signing.Degree, c.want)
				}
				if ss.Dialect != "SMB2_10" {
					t.Errorf("session %s speaks %s, want SMB2_10 (kbr prefers SMB 2.1)", id, ss.Dialect)
				}
			}
			if n < 2 {
				t.Errorf("found %d new session(s) on the server, want the main one and a data session at least", n)
			}
		})
	}
}
