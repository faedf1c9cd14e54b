package schemareg

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// Conn is how to reach a registry. Secrets are resolved by the caller.
type Conn struct {
	URL      string
	TLS      *tls.Config // nil: the system's roots for https
	Username string      // basic auth, with Password
	Password string
	Token    string        // bearer token
	Timeout  time.Duration // per request (default 10s)
}

// NewClient is a registry client on conn. Requests time out after
// conn.Timeout, so an unreachable registry is found in bounded time.
func NewClient(c Conn) (*sr.Client, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = c.TLS
	tr.ResponseHeaderTimeout = timeout
	opts := []sr.ClientOpt{sr.URLs(c.URL), sr.HTTPClient(&http.Client{Timeout: timeout, Transport: tr}), sr.UserAgent("kbr")}
	switch {
	case c.Username != "":
		opts = append(opts, sr.BasicAuth(c.Username, c.Password))
	case c.Token != "":
		opts = append(opts, sr.BearerToken(c.Token))
	}
	return sr.NewClient(opts...)
}

// IsAuth tells a refusal of kbr's credentials (401, 403): permanent.
func IsAuth(err error) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && (re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden)
}

// IsNotFound tells a 404: a subject, version or setting that is not there,
// or an endpoint the registry does not have.
func IsNotFound(err error) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// IsClientError tells a refusal of the request itself (4xx but auth):
// retrying it unchanged gives the same answer.
func IsClientError(err error) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && re.StatusCode >= 400 && re.StatusCode < 500 && !IsAuth(err)
}

// describe words a registry error for a message: the status and the
// registry's own message, never a header (credentials) or a request body.
func describe(err error) string {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		msg := strings.TrimSpace(re.Message)
		if msg == "" {
			msg = strings.TrimSpace(string(re.Raw))
		}
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		if IsAuth(err) {
			return fmt.Sprintf("HTTP %d: the registry refused kbr's credentials (%s)", re.StatusCode, msg)
		}
		return fmt.Sprintf("HTTP %d %s %s: %s", re.StatusCode, re.Method, re.URL, msg)
	}
	return err.Error()
}

// Error is a registry failure, worded by describe; Unwrap gives the cause.
type Error struct {
	What string
	Err  error
}

func (e *Error) Error() string { return e.What + ": " + describe(e.Err) }
func (e *Error) Unwrap() error { return e.Err }

func wrap(err error, format string, a ...any) error {
	if err == nil {
		return nil
	}
	return &Error{What: fmt.Sprintf(format, a...), Err: err}
}

// Ping checks the registry answers and takes kbr's credentials: the list
// of subjects is the cheapest call every registry has.
func Ping(ctx context.Context, cl *sr.Client) error {
	_, err := cl.Subjects(ctx)
	return wrap(err, "schema registry")
}

// modeNames are the modes as exports spell them.
func modeName(m sr.Mode) string { return m.String() }

func levelName(l sr.CompatibilityLevel) string { return l.String() }

// Take reads every subject of the registry and every version with its id,
// type and references (with includeDeleted, soft-deleted versions too,
// marked), and the global and per-subject compatibility and mode. A
// per-subject setting equal to the global one is left out: some registries
// (Apicurio) answer a subject's query with the global value when the
// subject has none.
func Take(ctx context.Context, cl *sr.Client, url string, includeDeleted bool, onSubject func(done int)) (*Export, error) {
	e := &Export{Format: FormatVersion, Registry: url, TakenAt: time.Now().UTC(), IncludeDeleted: includeDeleted}
	gc := cl.Compatibility(ctx)
	if err := gc[0].Err; err != nil && !IsNotFound(err) {
		return nil, wrap(err, "schema registry: global compatibility")
	} else if err == nil {
		e.Compatibility = levelName(gc[0].Level)
	}
	gm := cl.Mode(ctx)
	if err := gm[0].Err; err != nil && !IsNotFound(err) {
		return nil, wrap(err, "schema registry: global mode")
	} else if err == nil {
		e.Mode = modeName(gm[0].Mode)
	}
	lctx := ctx
	if includeDeleted {
		lctx = sr.WithParams(ctx, sr.ShowDeleted)
	}
	names, err := cl.Subjects(lctx)
	if err != nil {
		return nil, wrap(err, "schema registry: list subjects")
	}
	sort.Strings(names)
	e.Subjects = make([]Subject, len(names))
	var (
		mu    sync.Mutex
		first error
		done  int
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 8)
	)
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s, err := takeSubject(ctx, cl, name, includeDeleted, e)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
			}
			e.Subjects[i] = s
			done++
			if onSubject != nil {
				onSubject(done)
			}
		}()
		mu.Lock()
		stop := first != nil
		mu.Unlock()
		if stop {
			break
		}
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	sortExport(e)
	return e, nil
}

func takeSubject(ctx context.Context, cl *sr.Client, name string, includeDeleted bool, e *Export) (Subject, error) {
	s := Subject{Name: name}
	live, err := cl.SubjectVersions(ctx, name)
	if err != nil && !(includeDeleted && IsNotFound(err)) { // a subject whose versions are all soft-deleted
		return s, wrap(err, "schema registry: versions of %s", name)
	}
	versions := live
	if includeDeleted {
		if versions, err = cl.SubjectVersions(sr.WithParams(ctx, sr.ShowDeleted), name); err != nil {
			return s, wrap(err, "schema registry: versions of %s (deleted too)", name)
		}
	}
	isLive := map[int]bool{}
	for _, v := range live {
		isLive[v] = true
	}
	sort.Ints(versions)
	vctx := sr.WithParams(ctx, sr.ShowDeleted)
	for _, v := range versions {
		ss, err := cl.SchemaByVersion(vctx, name, v)
		if err != nil {
			return s, wrap(err, "schema registry: %s version %d", name, v)
		}
		ver := Version{Version: ss.Version, ID: int32(ss.ID), Type: ss.Type.String(), Schema: ss.Schema.Schema, Deleted: !isLive[v]}
		if ver.Version == 0 {
			ver.Version = v
		}
		for _, r := range ss.References {
			ver.References = append(ver.References, Reference{Name: r.Name, Subject: r.Subject, Version: r.Version})
		}
		s.Versions = append(s.Versions, ver)
	}
	// Settings set on the subject itself (no defaultToGlobal): a registry
	// answers 404 for none, or (Apicurio) the global value.
	if c := cl.Compatibility(ctx, name)[0]; c.Err == nil {
		if l := levelName(c.Level); l != e.Compatibility {
			s.Compatibility = l
		}
	} else if !IsNotFound(c.Err) {
		return s, wrap(c.Err, "schema registry: compatibility of %s", name)
	}
	if e.Mode != "" {
		if m := cl.Mode(ctx, name)[0]; m.Err == nil {
			if n := modeName(m.Mode); n != e.Mode {
				s.Mode = n
			}
		} else if !IsNotFound(m.Err) {
			return s, wrap(m.Err, "schema registry: mode of %s", name)
		}
	}
	return s, nil
}
