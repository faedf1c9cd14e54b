package cifs_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/kbr-project/kbr/internal/secret"
	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/all"
	"github.com/kbr-project/kbr/storage/cifs"
)

// TestValidate guards against targets that pass validation and then fail
// at 3 a.m. with a less helpful error.
func TestValidate(t *testing.T) {
	good := storage.Target{
		Type: "CIFS", Server: "fileserver.example.com", User: `CORP\backup`,
		Password: secret.Ref{Env: "PW"}, Share: "backups", Path: "kafka/prod",
	}
	if err := all.Registry().Validate(good); err != nil {
		t.Fatalf("Validate(good) = %v", err)
	}
	for _, tc := range []struct {
		param  string
		change func(*storage.Target)
	}{
		{"target.server", func(t *storage.Target) { t.Server = "" }},
		{"target.server", func(t *storage.Target) { t.Server = `\\fileserver\backups` }},
		{"target.server", func(t *storage.Target) { t.Server = "fileserver:445" }},
		{"target.port", func(t *storage.Target) { t.Port = 65536 }},
		{"target.user", func(t *storage.Target) { t.User = "" }},
		{"target.password", func(t *storage.Target) { t.Password = secret.Ref{} }},
		{"target.password", func(t *storage.Target) { t.Password = secret.Ref{Env: "A", File: "/b"} }},
		{"target.share", func(t *storage.Target) { t.Share = "" }},
		{"target.share", func(t *storage.Target) { t.Share = "backups/kafka" }},
		{"target.path", func(t *storage.Target) { t.Path = "" }},
		{"target.path", func(t *storage.Target) { t.Path = `kafka\..\..\other` }},
		{"target.path", func(t *storage.Target) { t.Path = "kafka:prod" }},
		{"target.signing", func(t *storage.Target) { t.Signing = "always" }},
		{"target.signing", func(t *storage.Target) { t.Signing = "mandatory" }},
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
		func(t *storage.Target) { t.Server = "10.1.2.3"; t.Port = 1445 },
		func(t *storage.Target) { t.Server = "fe80::1" },
		func(t *storage.Target) { t.Path = "/" },
		func(t *storage.Target) { t.Path = `\kafka\prod` },
		func(t *storage.Target) { t.User = "backup" },
		func(t *storage.Target) { t.Signing = "auto" },
		func(t *storage.Target) { t.Signing = "required" },
		func(t *storage.Target) { t.Signing = "Required" },
	} {
		tg := good
		change(&tg)
		if err := all.Registry().Validate(tg); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", tg, err)
		}
	}
}

// TestMissingShare guards against a mistyped share name being retried as
// if the server were down.
func TestMissingShare(t *testing.T) {
	s := loadServer(t)
	tg := s.target("x")
	tg.Share = "no-such-share"
	_, err := all.Registry().Open(t.Context(), tg)
	if err == nil || !storage.IsPermanent(err) || !strings.Contains(err.Error(), `no share "no-such-share"`) {
		t.Errorf("Open of a missing share = %v; want a permanent error naming the share", err)
	}
}

// TestSharedSession guards against the one SMB session being unsafe for
// concurrent use: many goroutines stat, list, write and read at once on
// one backend (run with -race).
func TestSharedSession(t *testing.T) {
	s := loadServer(t)
	b, err := cifs.New(t.Context(), s.target(s.scratch(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("s/%s%02d", strings.Repeat("x", i%5), i)
			data := strings.Repeat(name, 20000+i)
			if _, err := storage.WriteFile(ctx, b, name, strings.NewReader(data)); err != nil {
				errs <- err
				return
			}
			if _, err := b.List(ctx, "s/"); err != nil {
				errs <- err
				return
			}
			rc, err := b.Open(ctx, name)
			if err != nil {
				errs <- err
				return
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || string(got) != data {
				errs <- errors.Join(err, errors.New(name+": read back other bytes"))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestNamesTheServerRefuses guards against names a share cannot hold
// (Windows forbids : * ? " < > |) being retried as if the server were down.
func TestNamesTheServerRefuses(t *testing.T) {
	s := loadServer(t)
	b, err := cifs.New(t.Context(), s.target(s.scratch(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, name := range []string{"a|b", "topic:0", `x"y`} {
		_, err := storage.WriteFile(t.Context(), b, name, strings.NewReader("x"))
		if !errors.Is(err, storage.ErrBadName) || !storage.IsPermanent(err) {
			t.Errorf("write %q = %v; want a permanent ErrBadName", name, err)
		}
	}
}
