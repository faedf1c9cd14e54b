// Package schemareg backs up and restores a Confluent-compatible Schema
// Registry through its REST API (franz-go's pkg/sr): the export of every
// subject and version (Take), the pure plan of a restore (PlanRestore:
// dependency order, subject renames) and its executor (Restore), which keeps
// ids and versions where the registry has IMPORT mode and registers the
// schemas again with new ids where it does not, and the old-to-new id map
// that a data restore rewrites records through.
package schemareg

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/kbr-project/kbr/internal/schemareg/wire"
)

// FormatVersion is the export format this kbr writes and reads.
const FormatVersion = 1

// Export is the file <kafka version>_schemas_<execution time>.json of a
// recovery point. Its grammar (JSON, snake_case):
//
//	{
//	  "format": 1,
//	  "registry": URL the export was read from,
//	  "taken_at": RFC 3339 time,
//	  "compatibility": global level ("BACKWARD", ...; "" if not read),
//	  "mode": global mode ("READWRITE", "READONLY", "IMPORT"; "" when the
//	          registry has no mode API, as Apicurio 2),
//	  "include_deleted": whether soft-deleted versions were read,
//	  "subjects": [ {                       sorted by name
//	    "name": subject,
//	    "compatibility": level set on the subject ("" = the global one),
//	    "mode": mode set on the subject ("" = the global one),
//	    "versions": [ {                     ascending
//	      "version": n, "id": schema id, "schema_type": "AVRO"|"PROTOBUF"|"JSON",
//	      "schema": the schema's text,
//	      "references": [ {"name", "subject", "version"} ],
//	      "deleted": true for a soft-deleted version
//	    } ]
//	  } ]
//	}
//
// A reference names a (subject, version) of the same export.
type Export struct {
	Format         int       `json:"format"`
	Registry       string    `json:"registry"`
	TakenAt        time.Time `json:"taken_at"`
	Compatibility  string    `json:"compatibility,omitempty"`
	Mode           string    `json:"mode,omitempty"`
	IncludeDeleted bool      `json:"include_deleted,omitempty"`
	Subjects       []Subject `json:"subjects"`
}

// Subject is one subject and its versions.
type Subject struct {
	Name          string    `json:"name"`
	Compatibility string    `json:"compatibility,omitempty"`
	Mode          string    `json:"mode,omitempty"`
	Versions      []Version `json:"versions"`
}

// Version is one version of a subject.
type Version struct {
	Version    int         `json:"version"`
	ID         int32       `json:"id"`
	Type       string      `json:"schema_type"`
	Schema     string      `json:"schema"`
	References []Reference `json:"references,omitempty"`
	Deleted    bool        `json:"deleted,omitempty"`
}

// Reference is a schema's reference to another: by the name the schema
// uses (an Avro full name, a Protobuf import path, a JSON Schema $ref) to
// a version of a subject.
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// Schema types.
const (
	TypeAvro     = "AVRO"
	TypeProtobuf = "PROTOBUF"
	TypeJSON     = "JSON"
)

// IDs is every schema id of the export.
func (e *Export) IDs() *wire.IDSet {
	s := &wire.IDSet{}
	for _, sub := range e.Subjects {
		for _, v := range sub.Versions {
			s.Add(v.ID)
		}
	}
	return s
}

// Versions counts the export's versions.
func (e *Export) Versions() int {
	n := 0
	for _, s := range e.Subjects {
		n += len(s.Versions)
	}
	return n
}

// Missing is what of seen the export lacks: ids records carry whose schema
// the registry no longer (or never) held.
func (e *Export) Missing(seen *wire.IDSet) []int32 {
	have := e.IDs()
	var out []int32
	for _, id := range seen.IDs() {
		if !have.Has(id) {
			out = append(out, id)
		}
	}
	return out
}

// Unmarshal reads and checks an export: the format, and that every
// reference names a version the export holds.
func Unmarshal(b []byte) (*Export, error) {
	var e Export
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("schemas export: %w", err)
	}
	if e.Format != FormatVersion {
		return nil, fmt.Errorf("schemas export: format %d, this kbr reads %d", e.Format, FormatVersion)
	}
	have := map[key]bool{}
	for _, s := range e.Subjects {
		if s.Name == "" {
			return nil, fmt.Errorf("schemas export: a subject without a name")
		}
		for _, v := range s.Versions {
			have[key{s.Name, v.Version}] = true
		}
	}
	for _, s := range e.Subjects {
		for _, v := range s.Versions {
			for _, r := range v.References {
				if !have[key{r.Subject, r.Version}] {
					return nil, fmt.Errorf("schemas export: %s version %d references %s version %d, which the export does not hold", s.Name, v.Version, r.Subject, r.Version)
				}
			}
		}
	}
	return &e, nil
}

// key is a (subject, version).
type key struct {
	subject string
	version int
}

func (k key) String() string { return fmt.Sprintf("%s version %d", k.subject, k.version) }

// sortExport puts subjects by name and versions ascending.
func sortExport(e *Export) {
	sort.Slice(e.Subjects, func(i, j int) bool { return e.Subjects[i].Name < e.Subjects[j].Name })
	for _, s := range e.Subjects {
		sort.Slice(s.Versions, func(i, j int) bool { return s.Versions[i].Version < s.Versions[j].Version })
	}
}
