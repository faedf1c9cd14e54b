package workflows

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/internal/schemareg"
	"github.com/kbr-project/kbr/storage"
)

func schemasRestoreConfig() config.SchemasRestore {
	return config.SchemasRestore{
		Source:         config.Source{Target: storage.Target{Type: "LocalDir", Path: "/b"}, RecoveryPoint: "latest"},
		SchemaRegistry: &config.SchemaRegistry{URL: "http://sr:8081"},
		Rename:         []string{"orders:orders_dr"},
	}
}

// The schemas restore on its own: the name resolved and pinned, the restore
// schemas step given the resolved recovery point, the registry and the
// renames, the pin taken away after; with no Kafka cluster at all.
func TestSchemasRestoreWorkflow(t *testing.T) {
	for _, fail := range []bool{false, true} {
		env := newEnv(t)
		const rp = "t_20260101T000000Z/3.9_manifest_20260101T000000Z.json"
		var order []string
		env.OnActivity(a.ResolveName, mock.Anything, mock.Anything).Return(rp, nil)
		env.OnActivity(a.PinRecoveryPoint, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PinInput) error {
			order = append(order, "pin "+in.Manifest)
			return nil
		})
		env.OnActivity(a.UnpinRecoveryPoint, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PinInput) error {
			order = append(order, "unpin "+in.Manifest)
			return nil
		})
		env.OnActivity(a.RestoreSchemas, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RestoreSchemasInput) (*activities.RestoreSchemasResult, error) {
			order = append(order, "restore "+in.Manifest+" "+in.Config.Source.RecoveryPoint+" "+in.Config.SchemaRegistry.URL+" "+strings.Join(in.Config.Rename, ","))
			if fail {
				return nil, temporal.NewNonRetryableApplicationError("registry said no", "RegistryRefused", nil)
			}
			return &activities.RestoreSchemasResult{RestoreResult: schemareg.RestoreResult{Path: "register", Subjects: 2, Versions: 3, Registered: 3, Changed: 1}}, nil
		})
		env.ExecuteWorkflow(names.SchemasRestoreWorkflow, schemasRestoreConfig())
		want := "pin " + rp + "|restore " + rp + " " + rp + " http://sr:8081 orders:orders_dr|unpin " + rp
		if got := strings.Join(order, "|"); got != want {
			t.Errorf("fail=%v: activities %s, want %s", fail, got, want)
		}
		err := env.GetWorkflowError()
		if fail {
			if err == nil || !strings.Contains(err.Error(), "restore schemas: registry said no") {
				t.Errorf("failed registry: error %v, want it naming the step", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var res SchemasRestoreResult
		if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatal(err)
		}
		if res.RecoveryPoint != rp || res.Schemas == nil || res.Schemas.Registered != 3 {
			t.Errorf("result %+v", res)
		}
	}
}

// Bad input fails before anything is resolved or pinned, naming the field.
func TestSchemasRestoreWorkflowBadInput(t *testing.T) {
	env := newEnv(t)
	cfg := schemasRestoreConfig()
	cfg.SchemaRegistry = nil
	env.ExecuteWorkflow(names.SchemasRestoreWorkflow, cfg)
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "schema_registry") {
		t.Errorf("no registry: error %v, want one naming schema_registry", err)
	}
}
