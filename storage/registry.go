package storage

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// PathType is one MRS path type a Registry knows: its name as targets
// spell it (matched without regard to case), the check of its parameters
// and the function that opens a backend for it.
type PathType struct {
	Name string
	// Validate checks a target's parameters without touching the network
	// or disk; nil when the path type has none to check but the path.
	Validate Validator
	// Open opens a backend for a target that passed Validate.
	Open Factory
}

// Factory opens a backend for a target.
type Factory func(ctx context.Context, t Target) (Backend, error)

// ParamError names the target parameter that is wrong, as it is written in
// a backup config ("target.server"); callers nest it under their own field.
type ParamError struct{ Param, Msg string }

func (e *ParamError) Error() string { return e.Param + ": " + e.Msg }

// Validator checks a target's parameters without touching the network or
// disk; it returns a *ParamError naming the parameter.
type Validator func(t Target) error

// Registry maps path types to their backends. It is a value built once by
// the binary (storage/all.Registry links every backend) and handed to
// whatever opens targets, so that a package that only names targets (the
// workflows) links no storage client. A Registry is immutable and safe for
// concurrent use.
type Registry struct {
	types map[string]PathType // by lower-case name
}

// NewRegistry returns a registry of the path types given; a later one of
// the same name replaces an earlier one.
func NewRegistry(types ...PathType) *Registry {
	r := &Registry{types: make(map[string]PathType, len(types))}
	for _, pt := range types {
		r.types[strings.ToLower(pt.Name)] = pt
	}
	return r
}

// With returns a registry of r's path types and the ones given.
func (r *Registry) With(types ...PathType) *Registry {
	all := make([]PathType, 0, len(r.types)+len(types))
	for _, pt := range r.types {
		all = append(all, pt)
	}
	return NewRegistry(append(all, types...)...)
}

// Types lists the path types, lower case and sorted (as error messages
// name them).
func (r *Registry) Types() []string {
	if r == nil {
		return nil
	}
	out := make([]string, 0, len(r.types))
	// The keys are sorted below: the order of the map's iteration never
	// shows (workflows validate targets through it).
	//workflowcheck:ignore
	for k := range r.types {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Lookup returns the path type named (in any case).
func (r *Registry) Lookup(name string) (PathType, bool) {
	if r == nil {
		return PathType{}, false
	}
	pt, ok := r.types[strings.ToLower(name)]
	return pt, ok
}

// Validate runs the path type's parameter check, if it has one; an
// unknown path type fails with a *ParamError for target.type.
func (r *Registry) Validate(t Target) error {
	pt, ok := r.Lookup(t.Type)
	if !ok {
		return &ParamError{Param: "target.type", Msg: fmt.Sprintf("unknown path type %q (known: %s)", t.Type, strings.Join(r.Types(), ", "))}
	}
	if pt.Validate == nil {
		return nil
	}
	return pt.Validate(t)
}

// Open returns the backend for t.
func (r *Registry) Open(ctx context.Context, t Target) (Backend, error) {
	if r == nil {
		return nil, Permanent(fmt.Errorf("%s: this process has no storage registry (storage/all.Registry) to open targets with", t))
	}
	pt, ok := r.Lookup(t.Type)
	if !ok || pt.Open == nil {
		return nil, Permanent(fmt.Errorf("target.type: unknown path type %q (known: %s)", t.Type, strings.Join(r.Types(), ", ")))
	}
	return pt.Open(ctx, t)
}
