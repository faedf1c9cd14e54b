package config

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/kbr-project/kbr/internal/backupset"
)

// SourceSchemas is the Schema Registry data source: every subject and version
// with its id, type and references, and the compatibility and mode settings.
const SourceSchemas = backupset.SourceSchemas

// SchemaRegistry is a Confluent-compatible Schema Registry: the one a backup
// reads (with the schemas data source), or the one a restore writes.
type SchemaRegistry struct {
	// URL is the registry's base URL, the one its clients use
	// ("https://sr:8081", or Apicurio's "http://h:8080/apis/ccompat/v7").
	URL string `yaml:"url" json:"url"`
	TLS *TLS   `yaml:"tls,omitempty" json:"tls,omitempty"`
	// BasicAuth or BearerToken authenticate kbr; the secrets are references.
	BasicAuth   *BasicAuth `yaml:"basic_auth,omitempty" json:"basic_auth,omitempty"`
	BearerToken *Secret    `yaml:"bearer_token,omitempty" json:"bearer_token,omitempty"`
	// IncludeDeleted backs soft-deleted versions up too (restored soft-deleted).
	IncludeDeleted bool `yaml:"include_deleted,omitempty" json:"include_deleted,omitempty"`
	// Timeout bounds each request (default 10s).
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// BasicAuth is HTTP basic authentication with a secret password.
type BasicAuth struct {
	Username string `yaml:"username" json:"username"`
	Password Secret `yaml:"password" json:"password"`
}

// Ways a data restore treats the schema id in each record's wire-format
// prefix (restore's schema_ids).
const (
	// SchemaIDsKeep produces the records' bytes as backed up (the default):
	// right when the registry kept the ids (IMPORT mode, or `_schemas`
	// restored with the topics).
	SchemaIDsKeep = "keep"
	// SchemaIDsRemap rewrites each id through the old-to-new map of the
	// restore's "restore schemas" step.
	SchemaIDsRemap = "remap"
)

// ApplyDefaults fills what the operator left out.
func (s *SchemaRegistry) ApplyDefaults() {
	if s != nil && s.Timeout == 0 {
		s.Timeout = DefaultConnectTimeout
	}
}

// Validate checks the registry's fields; field is its path ("schema_registry").
func (s *SchemaRegistry) Validate(field string) error {
	if s.URL == "" {
		return fieldErr(field+".url", "required: the registry's base URL (http:// or https://)")
	}
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fieldErr(field+".url", "%q is not an http:// or https:// URL", redactURL(s.URL))
	}
	if u.User != nil {
		return fieldErr(field+".url", "must not carry credentials (the URL is logged): use basic_auth with a secret reference")
	}
	if s.TLS != nil && u.Scheme != "https" {
		return fieldErr(field+".tls", "given for an http:// URL")
	}
	if s.BasicAuth != nil && s.BearerToken != nil {
		return fieldErr(field, "give basic_auth or bearer_token, not both")
	}
	if a := s.BasicAuth; a != nil {
		if a.Username == "" {
			return fieldErr(field+".basic_auth.username", "required")
		}
		if !a.Password.IsSet() {
			return fieldErr(field+".basic_auth.password", "required: a secret reference {env: NAME} or {file: PATH}")
		}
	}
	if s.BearerToken != nil && !s.BearerToken.IsSet() {
		return fieldErr(field+".bearer_token", "a secret reference {env: NAME} or {file: PATH}")
	}
	if s.Timeout < 0 {
		return fieldErr(field+".timeout", "must be positive")
	}
	return nil
}

// redactURL drops what a URL may carry of credentials, for messages.
func redactURL(raw string) string {
	if i := strings.Index(raw, "@"); i >= 0 {
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			return raw[:j+3] + "…" + raw[i:]
		}
		return "…" + raw[i:]
	}
	return raw
}

// validateSchemas checks a backup's registry against its data sources.
func (b *Backup) validateSchemas() error {
	switch {
	case b.Has(SourceSchemas) && b.SchemaRegistry == nil:
		return fieldErr("schema_registry", "required with the data source %q", SourceSchemas)
	case b.SchemaRegistry != nil && !b.Has(SourceSchemas):
		return fieldErr("schema_registry", "given, but %q is not among data_sources", SourceSchemas)
	case b.SchemaRegistry != nil:
		return b.SchemaRegistry.Validate("schema_registry")
	}
	return nil
}

// validateSchemas checks a restore's registry and schema_ids.
func (r *Restore) validateSchemas() error {
	switch r.SchemaIDs {
	case "", SchemaIDsKeep:
	case SchemaIDsRemap:
		if r.SchemaRegistry == nil {
			return fieldErr("schema_ids", "remap needs schema_registry: the registry the schemas are restored into")
		}
	default:
		return fieldErr("schema_ids", "%q: want keep or remap", r.SchemaIDs)
	}
	if r.SchemaRegistry != nil {
		if r.SchemaRegistry.IncludeDeleted {
			return fieldErr("schema_registry.include_deleted", "a backup option: a restore restores what the backup holds")
		}
		return r.SchemaRegistry.Validate("schema_registry")
	}
	return nil
}

// SchemasRestore is the document of `kbr restore schemas -f` and the input
// of SchemasRestoreWorkflow: a recovery point's Schema Registry export
// restored into a registry on its own, without a data restore.
type SchemasRestore struct {
	// Source is the recovery point whose schemas file is restored.
	Source Source `yaml:"source" json:"source"`
	// SchemaRegistry receives the schemas.
	SchemaRegistry *SchemaRegistry `yaml:"schema_registry" json:"schema_registry"`
	// Rename: the topic renames that the subjects of the topic-name strategy
	// follow, as in a data restore (orders:orders_dr renames orders-value).
	Rename []string `yaml:"rename,omitempty" json:"rename,omitempty"`
}

// LoadSchemasRestore reads, defaults and validates a schemas restore file.
func LoadSchemasRestore(path string) (*SchemasRestore, error) {
	var r SchemasRestore
	if err := decodeFile(path, &r); err != nil {
		return nil, err
	}
	r.ApplyDefaults()
	absLocal(&r.Source.Target)
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// ApplyDefaults fills what the operator left out.
func (r *SchemasRestore) ApplyDefaults() { r.SchemaRegistry.ApplyDefaults() }

// Validate checks everything that can be checked without the network.
func (r *SchemasRestore) Validate() error {
	if err := validateRestoreSource(r.Source); err != nil {
		return err
	}
	if r.SchemaRegistry == nil {
		return fieldErr("schema_registry", "required: the registry the schemas are restored into")
	}
	return r.AsRestore().validateSchemasAndRename()
}

// AsRestore is the data restore document that holds the same source,
// registry and renames (what the restore schemas step reads).
func (r *SchemasRestore) AsRestore() *Restore {
	return &Restore{Source: r.Source, SchemaRegistry: r.SchemaRegistry, Rename: r.Rename}
}

func (r *Restore) validateSchemasAndRename() error {
	if _, err := r.RenameMap(); err != nil {
		return err
	}
	return r.validateSchemas()
}
