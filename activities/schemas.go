package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/kclient"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/internal/schemareg"
	"github.com/kbr-project/kbr/internal/schemareg/wire"
)

// registryClient is a client of the configured registry, its secrets read
// here, on the worker. field names the config block in errors.
func registryClient(field string, s *config.SchemaRegistry) (*sr.Client, error) {
	if s == nil {
		return nil, badInput("%s: required", field)
	}
	c := schemareg.Conn{URL: s.URL, Timeout: s.Timeout.D()}
	if s.TLS != nil {
		tc, err := kclient.TLSConfig(field+".tls", s.TLS)
		if err != nil {
			return nil, badInput("%v", err)
		}
		c.TLS = tc
	}
	if b := s.BasicAuth; b != nil {
		pw, err := b.Password.Resolve(field + ".basic_auth.password")
		if err != nil {
			return nil, badInput("%v", err)
		}
		c.Username, c.Password = b.Username, pw
	}
	if s.BearerToken != nil {
		tok, err := s.BearerToken.Resolve(field + ".bearer_token")
		if err != nil {
			return nil, badInput("%v", err)
		}
		c.Token = tok
	}
	cl, err := schemareg.NewClient(c)
	if err != nil {
		return nil, badInput("%s.url: %v", field, err)
	}
	return cl, nil
}

// registryErr makes a refusal of kbr's credentials, or of the request
// itself, permanent; the rest (unreachable, 5xx) is retried.
func registryErr(err error) error {
	if err == nil {
		return nil
	}
	if schemareg.IsAuth(err) || schemareg.IsClientError(err) {
		return temporal.NewNonRetryableApplicationError(err.Error(), names.ErrRegistryRefused, nil)
	}
	return err
}

// checkRegistry is the preflight's look at the schemas data source: the
// registry answers in bounded time and takes kbr's credentials.
func checkRegistry(ctx context.Context, cfg config.Backup, c *checks) {
	if !cfg.Has(config.SourceSchemas) {
		return
	}
	cl, err := registryClient("schema_registry", cfg.SchemaRegistry)
	if err != nil {
		c.fail("%s", appMessage(err))
		return
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.SchemaRegistry.Timeout.D())
	defer cancel()
	if err := schemareg.Ping(pctx, cl); err != nil {
		c.fail("schema_registry.url %s: %v", cfg.SchemaRegistry.URL, err)
	}
}

// appMessage is an error's message without Temporal's wrapping.
func appMessage(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
}

// SchemasInput names a run's schemas file and the schema ids its records
// carry (nil when no topic data was backed up).
type SchemasInput struct {
	Config       config.Backup `json:"config"`
	TaskDir      string        `json:"task_dir"`
	KafkaVersion string        `json:"kafka_version"`
	ExecutedAt   time.Time     `json:"executed_at"`
	Seen         *wire.IDSet   `json:"seen,omitempty"`
}

// SchemasResult is the schemas file written, and the ids of backed-up
// records the registry does not hold: their records cannot be decoded.
type SchemasResult struct {
	File     *backupset.FileEntry `json:"file"`
	Subjects int                  `json:"subjects"`
	Versions int                  `json:"versions"`
	// Missing lists the first 100 missing ids; MissingCount counts them.
	Missing      []int32 `json:"missing,omitempty"`
	MissingCount int     `json:"missing_count,omitempty"`
	// SeenOver counts ids past what the scan keeps (wire.MaxIDs), unchecked.
	SeenOver int64 `json:"seen_over,omitempty"`
}

// SnapshotSchemas writes the registry's export: every subject and version
// with its id, type and references, and the compatibility and mode
// settings. It runs after the partitions' export, so every id a backed-up
// record carries was registered before it is read.
func (a *Activities) SnapshotSchemas(ctx context.Context, in SchemasInput) (*SchemasResult, error) {
	cfg := in.Config
	cl, err := registryClient("schema_registry", cfg.SchemaRegistry)
	if err != nil {
		return nil, err
	}
	e, err := schemareg.Take(ctx, cl, cfg.SchemaRegistry.URL, cfg.SchemaRegistry.IncludeDeleted, func(done int) { activity.RecordHeartbeat(ctx, done) })
	if err != nil {
		return nil, registryErr(err)
	}
	b, release, err := a.target(ctx, cfg.Target)
	if err != nil {
		return nil, err
	}
	defer release()
	name := in.TaskDir + "/" + backupset.Name(in.KafkaVersion, backupset.SourceSchemas, in.ExecutedAt) + ".json"
	entry, err := writeHashed(ctx, b, name, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(e)
	})
	if err != nil {
		return nil, permanent(err)
	}
	entry.TakenAt = &e.TakenAt
	res := &SchemasResult{File: entry, Subjects: len(e.Subjects), Versions: e.Versions()}
	if in.Seen != nil {
		missing := e.Missing(in.Seen)
		res.MissingCount, res.Missing, res.SeenOver = len(missing), missing[:min(100, len(missing))], in.Seen.Over
	}
	a.log().Info("schemas exported", "file", name, "subjects", res.Subjects, "versions", res.Versions, "missing", res.MissingCount)
	return res, nil
}

// RestoreSchemasInput restores a recovery point's schemas file.
type RestoreSchemasInput struct {
	Config   config.Restore `json:"config"`
	Manifest string         `json:"manifest"`
}

// RestoreSchemasResult is what the registry got, and the old-to-new id map
// (schemareg.IDMap.Encode) that the data restore rewrites records through.
type RestoreSchemasResult struct {
	schemareg.RestoreResult
	IDMap []byte `json:"id_map"`
	// ChangedIDs is the first 10,000 ids that changed, old to new.
	ChangedIDs map[int32]int32 `json:"changed_ids,omitempty"`
}

// RestoreSchemas reads the recovery point's schemas file (its checksum
// checked as it is read), plans the restore (references first, subjects of
// the topic-name strategy renamed with the topics) and writes it into the
// registry. A retry repeats nothing: every version is looked up first.
func (a *Activities) RestoreSchemas(ctx context.Context, in RestoreSchemasInput) (*RestoreSchemasResult, error) {
	cfg := in.Config
	cl, err := registryClient("schema_registry", cfg.SchemaRegistry)
	if err != nil {
		return nil, err
	}
	b, release, err := a.target(ctx, cfg.Source.Target)
	if err != nil {
		return nil, err
	}
	defer release()
	m, err := a.loadManifest(ctx, b, in.Manifest)
	if err != nil {
		return nil, permanent(err)
	}
	if m.Schemas == nil {
		return nil, badInput("schema_registry: recovery point %s holds no schemas (its backup had no %q data source)", in.Manifest, config.SourceSchemas)
	}
	var e *schemareg.Export
	if err := readVerified(ctx, b, *m.Schemas, func(r io.Reader) error {
		data, err := io.ReadAll(io.LimitReader(r, 1<<30))
		if err != nil {
			return err
		}
		e, err = schemareg.Unmarshal(data)
		return err
	}); err != nil {
		return nil, permanent(fmt.Errorf("%s: %w", m.Schemas.Name, err))
	}
	rename, _ := cfg.RenameMap()
	plan, err := schemareg.PlanRestore(e, rename)
	if err != nil {
		return nil, badInput("%s: %v", m.Schemas.Name, err)
	}
	res, err := schemareg.Restore(ctx, cl, plan, func(done int) { activity.RecordHeartbeat(ctx, done) })
	if err != nil {
		return nil, registryErr(err)
	}
	out := &RestoreSchemasResult{RestoreResult: *res, IDMap: res.IDs.Encode()}
	for old, id := range res.IDs {
		if old != id && len(out.ChangedIDs) < 10000 {
			if out.ChangedIDs == nil {
				out.ChangedIDs = map[int32]int32{}
			}
			out.ChangedIDs[old] = id
		}
	}
	a.log().Info("schemas restored", "path", res.Path, "subjects", res.Subjects, "versions", res.Versions, "changed", res.Changed)
	return out, nil
}
