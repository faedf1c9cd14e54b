package schemareg

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/kbr-project/kbr/internal/schemareg/schemaregtest"
	"github.com/kbr-project/kbr/internal/testenv"
)

func TestSubjectFor(t *testing.T) {
	t.Parallel()
	rename := map[string]string{"orders": "orders_dr", "a-b": "c"}
	for _, c := range []struct{ in, want string }{
		{"orders-value", "orders_dr-value"},
		{"orders-key", "orders_dr-key"},
		{"a-b-value", "c-value"},
		{"orders", "orders"},               // no strategy suffix
		{"orders-values", "orders-values"}, // not the suffix
		{"com.kbr.Address", "com.kbr.Address"},
		{"payments-value", "payments-value"}, // not renamed
	} {
		if got := SubjectFor(c.in, rename); got != c.want {
			t.Errorf("SubjectFor(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// References come before the versions that use them, a subject's versions
// in order, the rest by subject and version; a cycle, a missing reference
// and two subjects renamed onto one are refused by name.
func TestPlanRestore(t *testing.T) {
	t.Parallel()
	e := &Export{Format: 1, Compatibility: "BACKWARD", Mode: "READWRITE", Subjects: []Subject{
		{Name: "a-value", Compatibility: "FULL", Versions: []Version{
			{Version: 1, ID: 10, Type: TypeAvro, Schema: "a1", References: []Reference{{Name: "z", Subject: "z", Version: 2}}},
			{Version: 3, ID: 11, Type: TypeAvro, Schema: "a3"},
		}},
		{Name: "m", Versions: []Version{{Version: 1, ID: 1, Type: TypeAvro, Schema: "m1"}}},
		{Name: "z", Mode: "READONLY", Versions: []Version{
			{Version: 1, ID: 2, Type: TypeAvro, Schema: "z1"},
			{Version: 2, ID: 3, Type: TypeAvro, Schema: "z2", References: []Reference{{Name: "m", Subject: "m", Version: 1}}},
		}},
	}}
	p, err := PlanRestore(e, map[string]string{"a": "b"})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, s := range p.Steps {
		order = append(order, fmt.Sprintf("%s/%d", s.Subject, s.Version))
	}
	if want := []string{"m/1", "z/1", "z/2", "b-value/1", "b-value/3"}; !slices.Equal(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
	if want := []Setting{{"", "BACKWARD"}, {"b-value", "FULL"}}; !slices.Equal(p.Compatibility, want) {
		t.Errorf("compatibility %v, want %v", p.Compatibility, want)
	}
	if want := []Setting{{"", "READWRITE"}, {"z", "READONLY"}}; !slices.Equal(p.Modes, want) {
		t.Errorf("modes %v, want %v", p.Modes, want)
	}
	cycle := &Export{Format: 1, Subjects: []Subject{
		{Name: "x", Versions: []Version{{Version: 1, ID: 1, References: []Reference{{Subject: "y", Version: 1}}}}},
		{Name: "y", Versions: []Version{{Version: 1, ID: 2, References: []Reference{{Subject: "x", Version: 1}}}}},
	}}
	if _, err := PlanRestore(cycle, nil); err == nil || !strings.Contains(err.Error(), "cycle among: x version 1, y version 1") {
		t.Errorf("cycle: %v", err)
	}
	missing := &Export{Format: 1, Subjects: []Subject{{Name: "x", Versions: []Version{{Version: 1, References: []Reference{{Subject: "gone", Version: 4}}}}}}}
	if _, err := PlanRestore(missing, nil); err == nil || !strings.Contains(err.Error(), "references gone version 4") {
		t.Errorf("missing reference: %v", err)
	}
	clash := &Export{Format: 1, Subjects: []Subject{{Name: "a-value"}, {Name: "b-value"}}}
	if _, err := PlanRestore(clash, map[string]string{"a": "b"}); err == nil || !strings.Contains(err.Error(), "both be restored as b-value") {
		t.Errorf("clash: %v", err)
	}
}

func TestIDMapEncode(t *testing.T) {
	t.Parallel()
	m := IDMap{}
	for i := int32(1); i <= 50000; i++ {
		m[i] = i + 100
	}
	m[-5], m[1<<30] = 7, -(1 << 30)
	b := m.Encode()
	if len(b) > 4096 {
		t.Errorf("50002 dense pairs encode to %d bytes", len(b))
	}
	got, err := DecodeIDMap(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(m) {
		t.Fatalf("%d pairs decoded, want %d", len(got), len(m))
	}
	for a, v := range m {
		if got[a] != v {
			t.Fatalf("id %d -> %d, want %d", a, got[a], v)
		}
	}
	if _, err := DecodeIDMap([]byte("junk")); err == nil {
		t.Error("junk decoded")
	}
	if (IDMap{1: 1, 2: 2}).Remap() != nil {
		t.Error("an identity map asks for a remap")
	}
}

func newClient(t *testing.T, url string) *sr.Client {
	t.Helper()
	cl, err := NewClient(Conn{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// Against the real registry (Apicurio 2.4, no IMPORT mode): a fresh source
// seeded with Avro (a reference, two versions, a key), Protobuf (an import)
// and JSON Schema ($ref) and a per-subject level is exported, planned under
// renamed topics and restored into a fresh target whose next ids are taken
// by other schemas: every version is there under its renamed subject with
// its text and type, the references point at the restored versions, the ids
// changed and the map says how, the levels are equal; Resolve finds the same
// map without writing, and a second restore repeats nothing.
func TestRestoreIntoApicurio(t *testing.T) {
	env := testenv.Load(t)
	regs := env.SchemaRegistries(t, true)
	ctx := context.Background()
	src, dst := newClient(t, regs.Source), newClient(t, regs.Target)
	fx, err := schemaregtest.Seed(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	// Ids the target gives out first, taken by schemas of its own.
	for i := 0; i < 3; i++ {
		if _, err := dst.RegisterSchema(ctx, fmt.Sprintf("other-%d", i), sr.Schema{Schema: fmt.Sprintf(`{"type":"fixed","name":"F%d","size":%d}`, i, i+1)}, -1, -1); err != nil {
			t.Fatal(err)
		}
	}
	exp, err := Take(ctx, src, regs.Source, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if exp.Versions() != 8 || len(exp.Subjects) != 7 {
		t.Fatalf("export holds %d versions of %d subjects, want 8 of 7", exp.Versions(), len(exp.Subjects))
	}
	for _, s := range exp.Subjects {
		if want := map[bool]string{true: schemaregtest.OrdersCompat.String(), false: ""}[s.Name == schemaregtest.SubjectOrders]; s.Compatibility != want {
			t.Errorf("%s: compatibility %q exported, want %q", s.Name, s.Compatibility, want)
		}
	}
	js, _ := json.Marshal(exp)
	if exp2, err := Unmarshal(js); err != nil || exp2.Versions() != 8 {
		t.Fatalf("export does not read back: %v", err)
	}
	rename := map[string]string{"orders": "orders_dr", "payments": "payments_dr"}
	plan, err := PlanRestore(exp, rename)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Restore(ctx, dst, plan, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Path != PathRegister || !strings.Contains(res.Why, "no mode API") {
		t.Errorf("path %q (%s), want register: Apicurio 2.4 has no IMPORT mode", res.Path, res.Why)
	}
	// Eight versions, eight texts: eight ids, each mapped.
	if res.Registered != 8 || res.Changed == 0 || len(res.IDs) != 8 {
		t.Errorf("registered %d, %d ids changed, map of %d: want 8, some, 8", res.Registered, res.Changed, len(res.IDs))
	}
	for _, s := range exp.Subjects {
		to := SubjectFor(s.Name, rename)
		for i, v := range s.Versions {
			got, err := dst.SchemaByVersion(ctx, to, i+1)
			if err != nil {
				t.Fatalf("%s version %d: %v", to, i+1, err)
			}
			if got.Schema.Schema != v.Schema || got.Type.String() != v.Type || int32(got.ID) != res.IDs[v.ID] {
				t.Errorf("%s version %d: id %d type %s, want id %d type %s and the same text", to, i+1, got.ID, got.Type, res.IDs[v.ID], v.Type)
			}
			if len(got.References) != len(v.References) {
				t.Fatalf("%s version %d: %d references, want %d", to, i+1, len(got.References), len(v.References))
			}
			for k, r := range got.References {
				if w := v.References[k]; r.Name != w.Name || r.Subject != SubjectFor(w.Subject, rename) || r.Version != w.Version {
					t.Errorf("%s version %d: reference %+v, want %+v", to, i+1, r, w)
				}
			}
		}
	}
	if fx.OrderV2 == int(res.IDs[int32(fx.OrderV2)]) {
		t.Errorf("orders v2 kept id %d in a target whose ids were taken", fx.OrderV2)
	}
	for _, c := range []struct {
		subject string
		want    sr.CompatibilityLevel
	}{{"orders_dr-value", schemaregtest.OrdersCompat}, {"payments_dr-value", sr.CompatNone}, {"", sr.CompatNone}} {
		r := dst.Compatibility(ctx, c.subject)[0]
		if r.Err != nil || r.Level != c.want {
			t.Errorf("compatibility of %q: %v (%v), want %v", c.subject, r.Level, r.Err, c.want)
		}
	}
	resolved, err := Resolve(ctx, dst, plan)
	if err != nil {
		t.Fatal(err)
	}
	if !mapsEqual(resolved, res.IDs) {
		t.Errorf("resolved %v, restored %v", resolved, res.IDs)
	}
	again, err := Restore(ctx, dst, plan, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Existing != 8 || again.Registered != 0 || !mapsEqual(again.IDs, res.IDs) {
		t.Errorf("second restore: %d existing, %d registered, map %v (first %v)", again.Existing, again.Registered, again.IDs, res.IDs)
	}
}

func typeOf(s string) sr.SchemaType {
	var t sr.SchemaType
	_ = t.UnmarshalText([]byte(s))
	return t
}

func refsOf(rs []Reference) []sr.SchemaReference {
	var out []sr.SchemaReference
	for _, r := range rs {
		out = append(out, sr.SchemaReference{Name: r.Name, Subject: r.Subject, Version: r.Version})
	}
	return out
}

func mapsEqual(a, b IDMap) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// importRegistry is a stand-in for a registry with IMPORT mode (Confluent's
// API): srfake, plus registration with a given id and version while the
// global mode is IMPORT, refused when the id or version is taken.
func importRegistry(t *testing.T) *srfake.Registry {
	reg := srfake.New()
	t.Cleanup(reg.Close)
	var mu sync.Mutex
	importing := false
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/mode":
			body, _ := io.ReadAll(r.Body)
			var m struct{ Mode string }
			_ = json.Unmarshal(body, &m)
			mu.Lock()
			importing = m.Mode == "IMPORT"
			mu.Unlock()
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			return false
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/versions") && strings.HasPrefix(r.URL.Path, "/subjects/"):
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			var ss sr.SubjectSchema
			if json.Unmarshal(body, &ss) != nil || ss.ID <= 0 {
				return false
			}
			mu.Lock()
			on := importing
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			if !on {
				w.WriteHeader(http.StatusUnprocessableEntity)
				fmt.Fprint(w, `{"error_code":42205,"message":"not in IMPORT mode"}`)
				return true
			}
			subject := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/subjects/"), "/versions")
			ok := func() (ok bool) {
				defer func() { ok = recover() == nil }()
				reg.SeedSchema(subject, ss.Version, ss.ID, ss.Schema)
				return true
			}()
			if !ok {
				w.WriteHeader(http.StatusUnprocessableEntity)
				fmt.Fprintf(w, `{"error_code":42205,"message":"id %d or version %d is taken"}`, ss.ID, ss.Version)
				return true
			}
			fmt.Fprintf(w, `{"id":%d}`, ss.ID)
			return true
		}
		return false
	})
	return reg
}

// A registry with IMPORT mode (the stand-in above) gets every version with
// its backed-up id and version, soft-deleted ones soft-deleted again, and
// its mode back to READWRITE after; an id the target holds already for
// another schema gets a new id, named in a warning and in the map.
func TestRestoreImportMode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	source := srfake.New()
	defer source.Close()
	scl := newClient(t, source.URL())
	if _, err := schemaregtest.Seed(ctx, scl); err != nil {
		t.Fatal(err)
	}
	// A third orders-value version, soft-deleted.
	v3 := sr.Schema{Schema: strings.Replace(schemaregtest.OrderAvroV2, `"default":""}`, `"default":""},{"name":"x","type":"int","default":0}`, 1),
		References: []sr.SchemaReference{{Name: "com.kbr.Address", Subject: schemaregtest.SubjectAddress, Version: 1}}}
	if _, err := scl.RegisterSchema(ctx, schemaregtest.SubjectOrders, v3, -1, -1); err != nil {
		t.Fatal(err)
	}
	if err := scl.DeleteSchema(ctx, schemaregtest.SubjectOrders, 3, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	exp, err := Take(ctx, scl, source.URL(), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, s := range exp.Subjects {
		for _, v := range s.Versions {
			if v.Deleted {
				deleted = append(deleted, fmt.Sprintf("%s/%d", s.Name, v.Version))
			}
		}
	}
	if !slices.Equal(deleted, []string{"orders-value/3"}) || exp.Mode != "READWRITE" {
		t.Fatalf("soft-deleted %v, mode %q: want orders-value/3, READWRITE", deleted, exp.Mode)
	}
	target := importRegistry(t)
	// The target holds id 2 already, for a schema of its own.
	target.SeedSchema("theirs", 1, 2, sr.Schema{Schema: `{"type":"fixed","name":"T","size":3}`})
	tcl := newClient(t, target.URL())
	plan, err := PlanRestore(exp, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Restore(ctx, tcl, plan, nil)
	if err != nil {
		t.Fatal(err)
	}
	// orders-value version 1 wants id 2: it and its later versions get new ids.
	if res.Path != PathImport || res.Imported != exp.Versions()-3 || res.Registered != 3 || res.Deleted != 1 {
		t.Fatalf("path %s: %d imported, %d registered, %d deleted; want import, %d, 3, 1 (%s; %v)", res.Path, res.Imported, res.Registered, res.Deleted, exp.Versions()-3, res.Why, res.Warnings)
	}
	if res.Changed != 3 || res.IDs[2] == 2 || len(res.Warnings) != 3 || !strings.Contains(res.Warnings[0], "orders-value version 1: not imported with id 2") {
		t.Errorf("map %v, warnings %v: want id 2 renumbered and said", res.IDs, res.Warnings)
	}
	for _, s := range exp.Subjects {
		for _, v := range s.Versions {
			got, err := tcl.LookupSchema(sr.WithParams(ctx, sr.ShowDeleted), s.Name, sr.Schema{Schema: v.Schema, Type: typeOf(v.Type), References: refsOf(v.References)})
			if err != nil {
				t.Fatalf("%s version %d: %v", s.Name, v.Version, err)
			}
			if int32(got.ID) != res.IDs[v.ID] || got.Schema.Schema != v.Schema {
				t.Errorf("%s version %d: id %d, want %d", s.Name, v.Version, got.ID, res.IDs[v.ID])
			}
		}
	}
	live, _ := tcl.SubjectVersions(ctx, schemaregtest.SubjectOrders)
	if len(live) != 2 {
		t.Errorf("live versions of orders-value %v, want two (the third soft-deleted)", live)
	}
	// Versions that kept their id kept their number.
	if got, err := tcl.SchemaByVersion(ctx, schemaregtest.SubjectPayments, 1); err != nil || int32(got.ID) != res.IDs[int32(got.ID)] {
		t.Errorf("payments-value version 1: %+v %v", got, err)
	}
	if m := tcl.Mode(ctx)[0]; m.Err != nil || m.Mode != sr.ModeReadWrite {
		t.Errorf("mode after the restore %v (%v), want READWRITE", m.Mode, m.Err)
	}
	if c := tcl.Compatibility(ctx, schemaregtest.SubjectOrders)[0]; c.Level != schemaregtest.OrdersCompat {
		t.Errorf("compatibility of orders-value %v, want %v", c.Level, schemaregtest.OrdersCompat)
	}
}

// Wrong credentials are an auth error, worded without the secret; an
// unreachable registry fails within the timeout.
func TestErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := srfake.New(srfake.WithAuth("Basic " + "a2JyOnJpZ2h0")) // kbr:right
	defer reg.Close()
	cl, _ := NewClient(Conn{URL: reg.URL(), Username: "kbr", Password: "wrong-secret-value"})
	err := Ping(ctx, cl)
	if !IsAuth(err) || strings.Contains(err.Error(), "wrong-secret-value") || !strings.Contains(err.Error(), "refused kbr's credentials") {
		t.Errorf("wrong password: %v", err)
	}
	ok, _ := NewClient(Conn{URL: reg.URL(), Username: "kbr", Password: "right"})
	if err := Ping(ctx, ok); err != nil {
		t.Errorf("right password: %v", err)
	}
}
