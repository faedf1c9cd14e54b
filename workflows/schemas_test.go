package workflows

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/mock"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/internal/restoreplan"
	"github.com/kbr-project/kbr/internal/schemareg"
	"github.com/kbr-project/kbr/internal/schemareg/wire"
	"github.com/kbr-project/kbr/storage"
)

// With the schemas data source the export units scan the records' schema
// ids, the registry is exported after the data with every unit's ids to
// check, the file goes into the manifest, and the ids it lacks are named
// in the result and the history note.
func TestBackupWorkflowSchemas(t *testing.T) {
	env := newEnv(t)
	// Registered first: it takes the place of mockBackup's.
	var mu sync.Mutex
	var scanned []bool
	env.OnActivity(a.ExportUnit, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ExportUnitInput) (*activities.UnitResult, error) {
		mu.Lock()
		scanned = append(scanned, in.ScanSchemaIDs)
		mu.Unlock()
		ids := &wire.IDSet{}
		ids.Add(int32(10 + in.Unit.Unit))
		ids.Add(99)
		return &activities.UnitResult{Unit: in.Unit.Unit, SchemaIDs: ids, Part: backupset.PartRef{FileEntry: backupset.FileEntry{Name: "part", Size: 1}, Unit: in.Unit.Unit}}, nil
	})
	m := mockBackup(env, 3)
	var seen []int32
	env.OnActivity(a.SnapshotSchemas, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SchemasInput) (*activities.SchemasResult, error) {
		m.step("schemas")
		seen = in.Seen.IDs()
		return &activities.SchemasResult{File: &backupset.FileEntry{Name: in.TaskDir + "/3.9_schemas_x.json", Size: 3, SHA256: "z"}, Subjects: 2, Versions: 3,
			Missing: []int32{99}, MissingCount: 1}, nil
	})
	cfg := testConfig()
	cfg.DataSources = []string{config.SourceTopicData, config.SourceSchemas}
	cfg.SchemaRegistry = &config.SchemaRegistry{URL: "http://sr:8081"}
	env.ExecuteWorkflow(names.BackupWorkflow, cfg)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res BackupResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m.order, ","); got != "preflight,plan,schemas,manifest" {
		t.Errorf("steps ran %s, want the schemas after the data and before the manifest", got)
	}
	if len(scanned) != 3 || slices.Contains(scanned, false) {
		t.Errorf("units scanned schema ids: %v, want all 3", scanned)
	}
	if !slices.Equal(seen, []int32{10, 11, 12, 99}) {
		t.Errorf("ids checked %v, want every unit's: [10 11 12 99]", seen)
	}
	if m.manifest.Schemas == nil || !strings.Contains(m.manifest.Schemas.Name, "_schemas_") {
		t.Errorf("manifest schemas %+v", m.manifest.Schemas)
	}
	if res.Schemas == nil || res.Schemas.MissingCount != 1 {
		t.Fatalf("result schemas %+v, want the missing id", res.Schemas)
	}
	if w := missingSchemas(res.Schemas); !strings.Contains(w, "1 schema ids") || !strings.Contains(w, "(99)") {
		t.Errorf("note %q", w)
	}
}

// A restore with schema_registry restores the schemas after the verify and
// before the topics; with schema_ids: remap every import unit gets the id
// map, with keep none does.
func TestRestoreWorkflowSchemas(t *testing.T) {
	for _, mode := range []string{config.SchemaIDsRemap, config.SchemaIDsKeep} {
		t.Run(mode, func(t *testing.T) {
			env := newEnv(t)
			var mu sync.Mutex
			var order []string
			step := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
			rp := "t_20260101T000000Z/3.9_manifest_20260101T010000Z.json"
			env.OnActivity(a.ResolveName, mock.Anything, mock.Anything).Return(rp, nil)
			env.OnActivity(a.PinRecoveryPoint, mock.Anything, mock.Anything).Return(nil)
			env.OnActivity(a.UnpinRecoveryPoint, mock.Anything, mock.Anything).Return(nil)
			env.OnActivity(a.PlanVerify, mock.Anything, mock.Anything).Return(func(context.Context, activities.VerifyInput) (*activities.VerifyPlan, error) {
				step("verify")
				return &activities.VerifyPlan{Manifest: rp, Chain: []string{rp}, Refs: []activities.VerifyRef{{Manifest: rp, Part: -1}},
					Summary: &activities.RecoveryPoint{Task: "t"}}, nil
			})
			env.OnActivity(a.VerifyFiles, mock.Anything, mock.Anything).Return(&activities.VerifyResult{Files: 1}, nil)
			idMap := schemareg.IDMap{1: 4, 2: 5}
			env.OnActivity(a.RestoreSchemas, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RestoreSchemasInput) (*activities.RestoreSchemasResult, error) {
				step("schemas " + in.Manifest)
				return &activities.RestoreSchemasResult{RestoreResult: schemareg.RestoreResult{Path: schemareg.PathRegister, Versions: 2, Registered: 2, Changed: 2},
					IDMap: idMap.Encode(), ChangedIDs: map[int32]int32{1: 4, 2: 5}}, nil
			})
			env.OnActivity(a.PrepareImport, mock.Anything, mock.Anything).Return(func(context.Context, activities.PrepareInput) (*activities.PrepareResult, error) {
				step("prepare")
				return &activities.PrepareResult{Units: []restoreplan.UnitRef{{Index: 0, Partitions: 1}, {Index: 1, Partitions: 1}}, Partitions: 2}, nil
			})
			var maps [][]byte
			env.OnActivity(a.ImportUnit, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ImportUnitInput) (*activities.ImportUnitResult, error) {
				mu.Lock()
				maps = append(maps, in.SchemaIDMap)
				mu.Unlock()
				return &activities.ImportUnitResult{Index: in.Unit.Index, Partitions: 1, SchemaIDsRewritten: 3, SchemaIDsUnmapped: 1}, nil
			})
			env.OnActivity(a.FinishImport, mock.Anything, mock.Anything).Return(&activities.FinishResult{}, nil)
			cfg := config.Restore{Cluster: config.Cluster{Name: "dst", BootstrapServers: []string{"127.0.0.1:1"}},
				Source:         config.Source{Target: storage.Target{Type: "LocalDir", Path: "/b"}, RecoveryPoint: "latest"},
				SchemaRegistry: &config.SchemaRegistry{URL: "http://sr:8081"}, SchemaIDs: mode}
			env.ExecuteWorkflow(names.RestoreWorkflow, cfg)
			if err := env.GetWorkflowError(); err != nil {
				t.Fatal(err)
			}
			var res RestoreResult
			_ = env.GetWorkflowResult(&res)
			if got := strings.Join(order, ","); got != "verify,schemas "+rp+",prepare" {
				t.Errorf("steps ran %s", got)
			}
			if res.Schemas == nil || res.Schemas.ChangedIDs[1] != 4 {
				t.Errorf("result schemas %+v, want the changed ids", res.Schemas)
			}
			if len(maps) != 2 {
				t.Fatalf("%d units imported", len(maps))
			}
			for _, b := range maps {
				if mode == config.SchemaIDsKeep {
					if b != nil {
						t.Errorf("schema_ids keep: a unit got an id map")
					}
					continue
				}
				got, err := schemareg.DecodeIDMap(b)
				if err != nil || len(got) != 2 || got[1] != 4 || got[2] != 5 {
					t.Errorf("unit's id map %v (%v), want %v", got, err, idMap)
				}
			}
			if mode == config.SchemaIDsRemap && (res.SchemaIDsRewritten != 6 || res.SchemaIDsUnmapped != 2 || !strings.Contains(strings.Join(res.Warnings, ";"), "2 record keys or values")) {
				t.Errorf("rewritten %d, unmapped %d, warnings %v", res.SchemaIDsRewritten, res.SchemaIDsUnmapped, res.Warnings)
			}
		})
	}
}
