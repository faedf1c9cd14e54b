package schemareg

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/sr"
)

// Restore paths.
const (
	// PathImport: the registry took IMPORT mode; ids and versions are kept.
	PathImport = "import"
	// PathRegister: the schemas were registered again, with the ids and
	// versions the registry gave them.
	PathRegister = "register"
)

// RestoreResult is what Restore did.
type RestoreResult struct {
	Path string `json:"path"`
	// Why says why IMPORT mode was not used.
	Why        string `json:"why,omitempty"`
	Subjects   int    `json:"subjects"`
	Versions   int    `json:"versions"`
	Imported   int    `json:"imported,omitempty"`   // with their backed-up id and version
	Registered int    `json:"registered,omitempty"` // with a new id
	Existing   int    `json:"existing,omitempty"`   // found in the registry already (a retry)
	Deleted    int    `json:"deleted,omitempty"`    // soft-deleted again
	// Settings counts the compatibility levels and modes set.
	Settings int `json:"settings"`
	// Changed counts the ids that differ from the backed-up ones.
	Changed  int      `json:"changed"`
	Warnings []string `json:"warnings,omitempty"`
	// IDs maps every backed-up id to the registry's.
	IDs IDMap `json:"-"`
}

// Restore writes a plan into the registry. Where the registry takes IMPORT
// mode (Confluent, Karapace, Redpanda, Apicurio 3) it registers each version
// with its backed-up id and version, then sets the mode back; where it does
// not (Apicurio 2 has no mode API), or an id is taken, it registers the
// version with whatever id the registry gives, after its references, whose
// versions it maps to the registry's. Compatibility checks are off for a
// subject while its history is registered, then the backed-up levels and
// modes are set. Every version is looked up first, so a retried restore
// repeats nothing and finds the same ids. onStep, if set, is told each
// version done.
func Restore(ctx context.Context, cl *sr.Client, p *Plan, onStep func(done int)) (*RestoreResult, error) {
	res := &RestoreResult{Path: PathRegister, Subjects: len(p.Subjects), Versions: len(p.Steps), IDs: IDMap{}}
	hasModes, before, err := enterImport(ctx, cl, res)
	if err != nil {
		return nil, err
	}
	x := &executor{cl: cl, res: res, versions: map[key]int{}, subject: map[string]string{}, relaxed: map[string]bool{},
		deferred: map[key]bool{}, deferredSubject: map[string]bool{}}
	for _, st := range p.Steps {
		x.subject[st.From] = st.Subject
	}
	var deleted [][2]any
	var later []Step // in IMPORT mode: ids taken, or after one that was
	done := 0
	for _, st := range p.Steps {
		v, deferred, err := x.step(ctx, st)
		if err != nil {
			if res.Path == PathImport {
				_ = setMode(ctx, cl, "", before) // leave the registry writable; a retry imports again
			}
			return nil, err
		}
		if deferred {
			later = append(later, st)
			continue
		}
		if st.Deleted {
			deleted = append(deleted, [2]any{st.Subject, v})
		}
		done++
		if onStep != nil {
			onStep(done)
		}
	}
	if len(later) > 0 {
		// New ids are given out in a writable registry, after every
		// version that keeps its id, so none takes a backed-up id.
		if err := setMode(ctx, cl, "", modeName(sr.ModeReadWrite)); err != nil {
			return nil, err
		}
		for _, st := range later {
			s, err := x.schema(st)
			if err != nil {
				return nil, err
			}
			id, v, err := x.register(ctx, st, s)
			if err != nil {
				return nil, err
			}
			x.keep(st, id, v)
			x.res.Warnings = appendMax(x.res.Warnings, fmt.Sprintf("%s version %d: not imported with id %d and version %d: registered as id %d version %d", st.Subject, st.Version, st.ID, st.Version, id, v))
			if st.Deleted {
				deleted = append(deleted, [2]any{st.Subject, v})
			}
			done++
			if onStep != nil {
				onStep(done)
			}
		}
	}
	for _, d := range deleted {
		subject, version := d[0].(string), d[1].(int)
		if err := cl.DeleteSchema(ctx, subject, version, sr.SoftDelete); err != nil && !IsClientError(err) {
			return nil, wrap(err, "schema registry: soft-delete %s version %d", subject, version)
		}
		res.Deleted++
	}
	// Compatibility: the backed-up levels; subjects relaxed for the
	// registration without a level of their own go back to the global one.
	set := map[string]bool{}
	for _, s := range p.Compatibility {
		var l sr.CompatibilityLevel
		if err := l.UnmarshalText([]byte(s.Value)); err != nil {
			return nil, fmt.Errorf("schemas export: compatibility of %q: %w", s.Subject, err)
		}
		if err := setCompat(ctx, cl, s.Subject, l); err != nil {
			return nil, wrap(err, "schema registry: set compatibility %s of %s", s.Value, subjectName(s.Subject))
		}
		set[s.Subject] = true
		res.Settings++
	}
	for subject := range x.relaxed {
		if set[subject] {
			continue
		}
		if r := cl.ResetCompatibility(ctx, subject)[0]; r.Err != nil && !IsNotFound(r.Err) {
			return nil, wrap(r.Err, "schema registry: reset compatibility of %s", subject)
		}
	}
	// Modes, the global one last: back from IMPORT to what was backed up.
	if hasModes {
		global := before
		for _, m := range p.Modes {
			if m.Subject == "" {
				global = m.Value
				continue
			}
			if err := setMode(ctx, cl, m.Subject, m.Value); err != nil {
				return nil, err
			}
			res.Settings++
		}
		if global == modeName(sr.ModeImport) {
			global = modeName(sr.ModeReadWrite)
		}
		if err := setMode(ctx, cl, "", global); err != nil {
			return nil, err
		}
	} else if len(p.Modes) > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the registry has no mode API: %d backed-up modes not set", len(p.Modes)))
	}
	res.Changed = res.IDs.Changed()
	return res, nil
}

// enterImport sets the registry's global mode to IMPORT when it can. It
// reports whether the registry has modes at all and the mode it had.
func enterImport(ctx context.Context, cl *sr.Client, res *RestoreResult) (hasModes bool, before string, err error) {
	gm := cl.Mode(ctx)[0]
	switch {
	case IsNotFound(gm.Err):
		res.Why = "the registry has no mode API, so no IMPORT mode"
		return false, "", nil
	case gm.Err != nil:
		return false, "", wrap(gm.Err, "schema registry: mode")
	}
	before = modeName(gm.Mode)
	if gm.Mode == sr.ModeImport {
		res.Path = PathImport // left so by an attempt that failed
		return true, modeName(sr.ModeReadWrite), nil
	}
	r := cl.SetMode(ctx, sr.ModeImport)[0]
	switch {
	case r.Err == nil:
		res.Path = PathImport
	case IsClientError(r.Err):
		res.Why = "the registry refused IMPORT mode: " + describe(r.Err)
	default:
		return true, before, wrap(r.Err, "schema registry: set IMPORT mode")
	}
	return true, before, nil
}

func setMode(ctx context.Context, cl *sr.Client, subject, mode string) error {
	var m sr.Mode
	if err := m.UnmarshalText([]byte(mode)); err != nil || mode == "" {
		return fmt.Errorf("schemas export: mode %q of %s", mode, subjectName(subject))
	}
	if r := cl.SetMode(sr.WithParams(ctx, sr.Force), m, subject)[0]; r.Err != nil {
		return wrap(r.Err, "schema registry: set mode %s of %s", mode, subjectName(subject))
	}
	return nil
}

// setCompat sets a level. Apicurio keeps NONE as the absence of its
// compatibility rule and answers 404 to setting it where there is none:
// NONE is then what the subject (or registry) has already.
func setCompat(ctx context.Context, cl *sr.Client, subject string, l sr.CompatibilityLevel) error {
	r := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: l}, subject)[0]
	if r.Err == nil || !IsNotFound(r.Err) || l != sr.CompatNone {
		return r.Err
	}
	if c := cl.Compatibility(ctx, subject)[0]; c.Err == nil && c.Level == sr.CompatNone {
		return nil
	}
	return r.Err
}

func subjectName(s string) string {
	if s == "" {
		return "the registry"
	}
	return "subject " + s
}

type executor struct {
	cl       *sr.Client
	res      *RestoreResult
	versions map[key]int       // backed-up (subject, version) -> the registry's version
	subject  map[string]string // backed-up subject -> target subject
	relaxed  map[string]bool   // subjects whose compatibility was set to NONE
	// deferred are the versions IMPORT mode could not take with their id
	// (or that need one that it could not): registered after the rest.
	deferred        map[key]bool
	deferredSubject map[string]bool
}

// schema is a step's schema with its references in the target's terms.
func (x *executor) schema(st Step) (sr.Schema, error) {
	var t sr.SchemaType
	if err := t.UnmarshalText([]byte(st.Type)); err != nil {
		return sr.Schema{}, fmt.Errorf("schemas export: %s version %d: %w", st.From, st.Version, err)
	}
	s := sr.Schema{Schema: st.Schema, Type: t}
	for _, r := range st.References {
		v, ok := x.versions[key{r.Subject, r.Version}]
		if !ok {
			return s, fmt.Errorf("%s version %d: its reference %s version %d is not restored yet", st.From, st.Version, r.Subject, r.Version)
		}
		to := x.subject[r.Subject]
		if to == "" {
			to = r.Subject
		}
		s.References = append(s.References, sr.SchemaReference{Name: r.Name, Subject: to, Version: v})
	}
	return s, nil
}

// step restores one version and returns its version in the registry, or
// defers it (IMPORT mode: its id or version is taken, or it needs a
// deferred one).
func (x *executor) step(ctx context.Context, st Step) (version int, deferred bool, err error) {
	if x.res.Path == PathImport && x.blocked(st) {
		x.postpone(st)
		return 0, true, nil
	}
	s, err := x.schema(st)
	if err != nil {
		return 0, false, err
	}
	id, version, found, err := lookup(ctx, x.cl, st.Subject, s)
	if err != nil {
		return 0, false, err
	}
	switch {
	case found:
		x.res.Existing++
	case x.res.Path == PathImport:
		got, err := x.cl.RegisterSchema(ctx, st.Subject, s, int(st.ID), st.Version)
		if IsClientError(err) {
			x.postpone(st)
			return 0, true, nil
		}
		if err != nil {
			return 0, false, wrap(err, "schema registry: import %s version %d with id %d", st.Subject, st.Version, st.ID)
		}
		id, version = int32(got), st.Version
		x.res.Imported++
	default:
		if id, version, err = x.register(ctx, st, s); err != nil {
			return 0, false, err
		}
	}
	x.keep(st, id, version)
	return version, false, nil
}

func (x *executor) blocked(st Step) bool {
	if x.deferredSubject[st.From] {
		return true
	}
	for _, r := range st.References {
		if x.deferred[key{r.Subject, r.Version}] {
			return true
		}
	}
	return false
}

func (x *executor) postpone(st Step) {
	x.deferred[key{st.From, st.Version}] = true
	x.deferredSubject[st.From] = true
}

// keep records where a version went.
func (x *executor) keep(st Step, id int32, version int) {
	x.versions[key{st.From, st.Version}] = version
	if prev, ok := x.res.IDs[st.ID]; ok && prev != id {
		x.res.Warnings = appendMax(x.res.Warnings, fmt.Sprintf("id %d is %d for an earlier version and %d for %s version %d: records carrying it are rewritten to %d", st.ID, prev, id, st.Subject, version, prev))
	} else if !ok {
		x.res.IDs[st.ID] = id
	}
}

// register registers a version with a new id, compatibility checks off for
// its subject (its history was accepted once already).
func (x *executor) register(ctx context.Context, st Step, s sr.Schema) (int32, int, error) {
	relax := func() error {
		if x.relaxed[st.Subject] {
			return nil
		}
		if err := setCompat(ctx, x.cl, st.Subject, sr.CompatNone); err != nil {
			return err
		}
		x.relaxed[st.Subject] = true
		return nil
	}
	// A subject that is not there yet (Apicurio: 404) needs no relaxing
	// for its first version, which nothing is checked against.
	if err := relax(); err != nil && !IsNotFound(err) {
		return 0, 0, wrap(err, "schema registry: set compatibility NONE on %s while its versions are registered", st.Subject)
	}
	if _, err := x.cl.RegisterSchema(ctx, st.Subject, s, -1, -1); err != nil {
		return 0, 0, wrap(err, "schema registry: register %s version %d", st.Subject, st.Version)
	}
	if err := relax(); err != nil {
		return 0, 0, wrap(err, "schema registry: set compatibility NONE on %s while its versions are registered", st.Subject)
	}
	id, version, found, err := lookup(ctx, x.cl, st.Subject, s)
	if err == nil && !found {
		err = fmt.Errorf("schema registry: %s version %d registered, but not found by lookup", st.Subject, st.Version)
	}
	if err != nil {
		return 0, 0, err
	}
	x.res.Registered++
	return id, version, nil
}

// lookup finds a schema under a subject, soft-deleted versions too.
func lookup(ctx context.Context, cl *sr.Client, subject string, s sr.Schema) (id int32, version int, found bool, err error) {
	ss, err := cl.LookupSchema(sr.WithParams(ctx, sr.ShowDeleted), subject, s)
	switch {
	case IsNotFound(err):
		return 0, 0, false, nil
	case err != nil:
		return 0, 0, false, wrap(err, "schema registry: look up %s", subject)
	}
	return int32(ss.ID), ss.Version, true, nil
}

// Resolve finds, without writing, the registry's id of every version of a
// restored plan: the map Restore returned, for a worker that did not run
// it. A version not in the registry is an error.
func Resolve(ctx context.Context, cl *sr.Client, p *Plan) (IDMap, error) {
	x := &executor{cl: cl, res: &RestoreResult{IDs: IDMap{}}, versions: map[key]int{}, subject: map[string]string{}}
	for _, st := range p.Steps {
		x.subject[st.From] = st.Subject
	}
	for _, st := range p.Steps {
		s, err := x.schema(st)
		if err != nil {
			return nil, err
		}
		id, version, found, err := lookup(ctx, cl, st.Subject, s)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("schema registry: %s version %d (id %d) is not in the registry: the schemas were not restored", st.Subject, st.Version, st.ID)
		}
		x.keep(st, id, version)
	}
	return x.res.IDs, nil
}

func appendMax(ws []string, w string) []string {
	if len(ws) < 20 {
		return append(ws, w)
	}
	return ws
}
