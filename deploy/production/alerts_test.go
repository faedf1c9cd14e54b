// Package production holds the files of kbr's production topology (a
// Temporal cluster on PostgreSQL, workers, agents) and their checks.
package production

import (
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/kbr-project/kbr/internal/metrics"
)

// The example alert rules load as Prometheus loads them (rule-file schema,
// PromQL, templates), and every kbr_* metric they name is one kbr emits
// with the labels they use: a renamed metric breaks this test, not an
// operator's alerting.
func TestAlertsParse(t *testing.T) {
	groups, errs := rulefmt.ParseFile("alerts.yml", false)
	for _, err := range errs {
		t.Errorf("alerts.yml: %v", err)
	}
	if groups == nil {
		t.Fatal("alerts.yml: no rule groups")
	}
	alerts := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			expr, err := parser.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: %v", r.Alert, err)
				continue
			}
			for _, sel := range parser.ExtractSelectors(expr) {
				var name string
				var used []string
				for _, m := range sel {
					if m.Name == labels.MetricName {
						name = m.Value
					} else {
						used = append(used, m.Name)
					}
				}
				if !strings.HasPrefix(name, "kbr_") {
					continue
				}
				spec, ok := metrics.Specs[name]
				if !ok {
					t.Errorf("%s: kbr emits no metric %s", r.Alert, name)
					continue
				}
				for _, l := range used {
					if !contains(spec.Labels, l) {
						t.Errorf("%s: %s has no label %s (it has %v)", r.Alert, name, l, spec.Labels)
					}
				}
			}
		}
	}
	for _, want := range []string{"KbrBackupOverdue", "KbrRunFailed"} {
		if !alerts[want] {
			t.Errorf("alerts.yml has no alert %s", want)
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
