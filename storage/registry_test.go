package storage

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestRegistry guards against path types matched by case (configs write
// "localdir" as often as "LocalDir"), an unknown type that is not named in
// the error with the known ones, and a process without a registry that
// fails without saying why.
func TestRegistry(t *testing.T) {
	opened := ""
	r := NewRegistry(
		PathType{Name: "LocalDir", Open: func(_ context.Context, t Target) (Backend, error) { opened = t.Type; return nil, nil }},
		PathType{Name: "CIFS", Validate: func(t Target) error {
			if t.Server == "" {
				return &ParamError{Param: "target.server", Msg: "required"}
			}
			return nil
		}},
	)
	if got := strings.Join(r.Types(), ","); got != "cifs,localdir" {
		t.Errorf("Types() = %s, want cifs,localdir", got)
	}
	if _, err := r.Open(context.Background(), Target{Type: "localDIR", Path: "/x"}); err != nil || opened != "localDIR" {
		t.Errorf("Open(localDIR) = %v (opened %q), want the LocalDir opener", err, opened)
	}
	var pe *ParamError
	if err := r.Validate(Target{Type: "cifs"}); !errors.As(err, &pe) || pe.Param != "target.server" {
		t.Errorf("Validate(cifs without server) = %v, want a ParamError for target.server", err)
	}
	if err := r.Validate(Target{Type: "Tape"}); !errors.As(err, &pe) || pe.Param != "target.type" || !strings.Contains(err.Error(), "cifs, localdir") {
		t.Errorf("Validate(Tape) = %v, want target.type naming the known types", err)
	}
	if _, err := r.Open(context.Background(), Target{Type: "Tape"}); err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), `unknown path type "Tape"`) {
		t.Errorf("Open(Tape) = %v, want a permanent unknown path type", err)
	}
	if got := r.With(PathType{Name: "OBS"}).Types(); len(got) != 3 || len(r.Types()) != 2 {
		t.Errorf("With(OBS) = %v and left r with %v; want 3 types, r unchanged", got, r.Types())
	}
	var none *Registry
	if _, err := none.Open(context.Background(), Target{Type: "LocalDir", Path: "/x"}); err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "no storage registry") {
		t.Errorf("Open on a nil registry = %v, want a permanent error saying there is none", err)
	}
}
