package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"

	"github.com/kbr-project/kbr/internal/schemareg"
	"github.com/kbr-project/kbr/internal/schemareg/schemaregtest"
	"github.com/kbr-project/kbr/internal/schemareg/wire"
	"github.com/kbr-project/kbr/internal/secretscan"
	"github.com/kbr-project/kbr/internal/testenv"
)

// frame is a record key or value in the Confluent wire format.
func frame(id int, payload []byte) []byte {
	b := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(id))
	return append(b, payload...)
}

// Back up topics whose records carry Confluent-framed Avro (a reference, two
// versions, an Avro key), Protobuf (an import) and JSON Schema ($ref) ids
// from the real registry (Apicurio 2.4), with a per-subject compatibility,
// a record whose id the registry does not hold, one without the prefix and
// a tombstone; restore into the KRaft cluster under renamed topics and into
// the second registry, whose first ids are taken, with schema_ids: remap.
// Guards against: a recovery point without the registry, missing ids not
// reported, subjects not following the topic rename, references pointing
// at the wrong versions, compatibility lost, and records whose ids point at
// the old registry's numbering (undecodable), or whose other bytes, headers,
// timestamps or order changed.
func TestSchemasRoundTrip(t *testing.T) {
	env := testenv.Load(t)
	regs := env.SchemaRegistries(t, true)
	ctx := context.Background()
	src, err := schemareg.NewClient(schemareg.Conn{URL: regs.Source})
	if err != nil {
		t.Fatal(err)
	}
	dst, err := schemareg.NewClient(schemareg.Conn{URL: regs.Target})
	if err != nil {
		t.Fatal(err)
	}
	id := randID()
	orders, payments, events := "orders-"+id, "payments-"+id, "events-"+id
	ids := map[string]int{}
	reg := func(subject string, s sr.Schema) int {
		n, err := src.RegisterSchema(ctx, subject, s, -1, -1)
		if err != nil {
			t.Fatalf("register %s: %v", subject, err)
		}
		return n
	}
	addr := []sr.SchemaReference{{Name: "com.kbr.Address", Subject: schemaregtest.SubjectAddress, Version: 1}}
	reg(schemaregtest.SubjectAddress, sr.Schema{Schema: schemaregtest.AddressAvro})
	ids["order1"] = reg(orders+"-value", sr.Schema{Schema: schemaregtest.OrderAvroV1, References: addr})
	ids["order2"] = reg(orders+"-value", sr.Schema{Schema: schemaregtest.OrderAvroV2, References: addr})
	ids["key"] = reg(orders+"-key", sr.Schema{Schema: schemaregtest.OrderKey})
	reg(schemaregtest.SubjectMoney, sr.Schema{Schema: schemaregtest.MoneyProto, Type: sr.TypeProtobuf})
	ids["payment"] = reg(payments+"-value", sr.Schema{Schema: schemaregtest.PaymentProto, Type: sr.TypeProtobuf,
		References: []sr.SchemaReference{{Name: "common/money.proto", Subject: schemaregtest.SubjectMoney, Version: 1}}})
	reg(schemaregtest.SubjectPoint, sr.Schema{Schema: schemaregtest.PointJSON, Type: sr.TypeJSON})
	ids["event"] = reg(events+"-value", sr.Schema{Schema: schemaregtest.EventJSON, Type: sr.TypeJSON,
		References: []sr.SchemaReference{{Name: "point.json", Subject: schemaregtest.SubjectPoint, Version: 1}}})
	if r := src.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatBackwardTransitive}, orders+"-value")[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
	// The target registry's first ids are taken: the restore must renumber.
	for i := range 3 {
		if _, err := dst.RegisterSchema(ctx, fmt.Sprintf("other-%d", i), sr.Schema{Schema: fmt.Sprintf(`{"type":"fixed","name":"F%d","size":%d}`, i, i+1)}, -1, -1); err != nil {
			t.Fatal(err)
		}
	}
	const missingID = 987654

	adm := kadm.NewClient(client(t, env.ZKModeBootstrap))
	for _, topic := range []string{orders, payments, events} {
		createTopic(t, adm, topic, 2, 1, nil)
	}
	cl := client(t, env.ZKModeBootstrap)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var rs []*kgo.Record
	for i := range 40 {
		ts := base.Add(time.Duration(i) * time.Second)
		hdr := []kgo.RecordHeader{{Key: "trace", Value: []byte(fmt.Sprint(i))}, {Key: "bin", Value: []byte{0, 1, 2}}}
		orderID := ids["order1"]
		if i >= 20 {
			orderID = ids["order2"]
		}
		rs = append(rs,
			&kgo.Record{Topic: orders, Partition: int32(i % 2), Key: frame(ids["key"], []byte(fmt.Sprintf("\x0ck-%03d", i))), Value: frame(orderID, []byte(fmt.Sprintf("order %d", i))), Headers: hdr, Timestamp: ts},
			&kgo.Record{Topic: payments, Partition: int32(i % 2), Key: []byte(fmt.Sprintf("p-%d", i)), Value: frame(ids["payment"], []byte{0, 8, byte(i)}), Headers: hdr, Timestamp: ts},
			&kgo.Record{Topic: events, Partition: int32(i % 2), Value: frame(ids["event"], []byte(fmt.Sprintf(`{"name":"e%d","at":{"x":1,"y":2}}`, i))), Timestamp: ts},
		)
	}
	rs = append(rs,
		&kgo.Record{Topic: events, Partition: 0, Key: []byte("unknown"), Value: frame(missingID, []byte("gone")), Timestamp: base},
		&kgo.Record{Topic: events, Partition: 1, Key: []byte("plain"), Value: []byte("no prefix at all"), Timestamp: base},
		&kgo.Record{Topic: orders, Partition: 0, Key: frame(ids["key"], []byte("\x0ck-tomb")), Value: nil, Timestamp: base},
	)
	produceSync(t, cl, rs...)
	want := map[string]map[int32][]rec{}
	for _, topic := range []string{orders, payments, events} {
		for try := 0; ; try++ {
			// Every partition got records: one read empty is a listing that raced a leader move.
			if want[topic] = readAll(t, env.ZKModeBootstrap, topic); len(want[topic][0]) > 0 && len(want[topic][1]) > 0 || try == 10 {
				break
			}
			time.Sleep(time.Second)
		}
	}

	dir := filepath.Join(t.TempDir(), "backups")
	task := "schemas-" + id
	cfg := writeFile(t, "backup.yaml", `
cluster:
  name: zkmode
  bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`
task: `+task+`
data_sources: [topicdata, schemas]
schema_registry:
  url: `+regs.Source+`
topics:
  include: ["`+orders+`", "`+payments+`", "`+events+`"]
target: {type: LocalDir, path: `+dir+`}
options:
  min_free_bytes: 1GiB
`)
	r := kbr(t, 5*time.Minute, "backup", "run", "-f", cfg, "--json")
	if r.code != 0 {
		t.Fatalf("backup exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var out struct {
		Result struct {
			RecoveryPoint string `json:"recovery_point"`
			TaskDir       string `json:"task_dir"`
			Schemas       struct {
				File struct {
					Name   string `json:"name"`
					Size   int64  `json:"size"`
					SHA256 string `json:"sha256"`
				} `json:"file"`
				Subjects     int     `json:"subjects"`
				Versions     int     `json:"versions"`
				Missing      []int32 `json:"missing"`
				MissingCount int     `json:"missing_count"`
			} `json:"schemas"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("backup --json: %v\n%s", err, r.stdout)
	}
	s := out.Result.Schemas
	t.Logf("backup with the registry: %s (%d subjects, %d versions, file %d bytes)", r.took, s.Subjects, s.Versions, s.File.Size)
	if s.Subjects != 7 || s.Versions != 8 {
		t.Errorf("schemas export: %d subjects, %d versions, want 7 and 8", s.Subjects, s.Versions)
	}
	if s.MissingCount != 1 || !slices.Equal(s.Missing, []int32{missingID}) {
		t.Errorf("missing ids %v (%d), want [%d]: the record carrying it is named in the result", s.Missing, s.MissingCount, missingID)
	}
	if !strings.Contains(s.File.Name, "_schemas_") || s.File.Size == 0 || len(s.File.SHA256) != 64 {
		t.Errorf("schemas file %+v: want a <version>_schemas_<time>.json with size and SHA-256", s.File)
	}
	manifest, err := os.ReadFile(filepath.Join(dir, out.Result.RecoveryPoint))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Schemas *struct {
			Name   string `json:"name"`
			SHA256 string `json:"sha256"`
		} `json:"schemas"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil || m.Schemas == nil || m.Schemas.Name != s.File.Name || m.Schemas.SHA256 != s.File.SHA256 {
		t.Fatalf("manifest lists schemas %+v (%v), want %s", m.Schemas, err, s.File.Name)
	}

	rename := map[string]string{orders: orders + "_dr", payments: payments + "_dr", events: events + "_dr"}
	var pairs []string
	for from, to := range rename {
		pairs = append(pairs, from+":"+to)
	}
	rcfg := writeFile(t, "restore.yaml", `
cluster:
  name: kraft
  bootstrap_servers: `+quoteList(env.KRaftBootstrap)+`
source:
  target: {type: LocalDir, path: `+dir+`}
  recovery_point: `+out.Result.RecoveryPoint+`
rename: `+quoteList(pairs)+`
schema_registry:
  url: `+regs.Target+`
schema_ids: remap
`)
	r = kbr(t, 5*time.Minute, "restore", "run", "-f", rcfg, "--json")
	if r.code != 0 {
		t.Fatalf("restore exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var rout struct {
		Result struct {
			Schemas struct {
				Path       string          `json:"path"`
				Registered int             `json:"registered"`
				Changed    int             `json:"changed"`
				ChangedIDs map[int32]int32 `json:"changed_ids"`
			} `json:"schemas"`
			Rewritten int64 `json:"schema_ids_rewritten"`
			Unmapped  int64 `json:"schema_ids_unmapped"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rout); err != nil {
		t.Fatalf("restore --json: %v\n%s", err, r.stdout)
	}
	rs2 := rout.Result.Schemas
	t.Logf("restore with the registry and remap: %s (%s, %d registered, %d ids changed, %d keys and values rewritten)", r.took, rs2.Path, rs2.Registered, rs2.Changed, rout.Result.Rewritten)
	if rs2.Path != schemareg.PathRegister || rs2.Registered != 8 || rs2.Changed == 0 {
		t.Errorf("schemas restore: path %q, %d registered, %d changed: want register (Apicurio 2.4 has no IMPORT), 8, some", rs2.Path, rs2.Registered, rs2.Changed)
	}
	// 40 keys and 40 values of orders, a tombstone's key, 40 payments and 40 events.
	if rout.Result.Rewritten != 161 || rout.Result.Unmapped != 1 {
		t.Errorf("%d keys and values rewritten, %d unmapped: want 161 and 1 (the missing id)", rout.Result.Rewritten, rout.Result.Unmapped)
	}
	newID := func(old int32) int32 {
		if n, ok := rs2.ChangedIDs[old]; ok {
			return n
		}
		return old
	}
	// Each restored id names, in the target registry, the text its old id
	// names in the source: a consumer decodes against the new registry.
	texts := map[string]string{}
	text := func(cl *sr.Client, which string, id int32) string {
		k := fmt.Sprint(which, id)
		if v, ok := texts[k]; ok {
			return v
		}
		ss, err := cl.SchemaByID(ctx, int(id))
		if err != nil {
			t.Fatalf("%s registry: schema %d: %v", which, id, err)
		}
		texts[k] = ss.Schema
		return ss.Schema
	}
	expect := func(b []byte) []byte {
		old, ok := wire.ID(b)
		if !ok || old == missingID {
			return b
		}
		out := frame(int(newID(old)), b[5:])
		if got := text(dst, "target", newID(old)); got != text(src, "source", old) {
			t.Errorf("id %d restored as %d: its schema differs", old, newID(old))
		}
		return out
	}
	for from, to := range rename {
		exp := map[int32][]rec{}
		for p, ws := range want[from] {
			exp[p] = nil
			for _, w := range ws {
				w.Key, w.Value = expect(w.Key), expect(w.Value)
				exp[p] = append(exp[p], w)
			}
		}
		compareTopic(t, from, exp, readAll(t, env.KRaftBootstrap, to))
	}

	// Every subject and version, under the renamed subjects, with its
	// type, text and references; the compatibility levels equal.
	subjects, err := src.Subjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, subject := range subjects {
		to := schemareg.SubjectFor(subject, rename)
		versions, err := src.SubjectVersions(ctx, subject)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range versions {
			a, err := src.SchemaByVersion(ctx, subject, v)
			if err != nil {
				t.Fatal(err)
			}
			b, err := dst.SchemaByVersion(ctx, to, v)
			if err != nil {
				t.Fatalf("%s version %d (from %s): %v", to, v, subject, err)
			}
			if a.Schema.Schema != b.Schema.Schema || a.Type != b.Type || int32(b.ID) != newID(int32(a.ID)) || len(a.References) != len(b.References) {
				t.Errorf("%s version %d: id %d type %v, want id %d type %v, the same text and %d references", to, v, b.ID, b.Type, newID(int32(a.ID)), a.Type, len(a.References))
				continue
			}
			for k, ref := range b.References {
				if w := a.References[k]; ref.Name != w.Name || ref.Subject != schemareg.SubjectFor(w.Subject, rename) || ref.Version != w.Version {
					t.Errorf("%s version %d: reference %+v, want %+v", to, v, ref, w)
				}
			}
		}
		ca, cb := src.Compatibility(ctx, subject)[0], dst.Compatibility(ctx, to)[0]
		if bothNone := schemareg.IsNotFound(ca.Err) && schemareg.IsNotFound(cb.Err); !bothNone && (ca.Err != nil || cb.Err != nil || ca.Level != cb.Level) {
			t.Errorf("compatibility of %s: %v (%v), of %s in the source: %v (%v)", to, cb.Level, cb.Err, subject, ca.Level, ca.Err)
		}
	}
	if cb := dst.Compatibility(ctx, orders+"_dr-value")[0]; cb.Level != sr.CompatBackwardTransitive {
		t.Errorf("compatibility of %s_dr-value: %v (%v), want BACKWARD_TRANSITIVE", orders, cb.Level, cb.Err)
	}

	// The schemas on their own (kbr restore schemas), under other topic
	// names, with no Kafka cluster in the config; run twice, the second
	// run registers nothing again.
	alone := map[string]string{orders: orders + "_sa", payments: payments + "_sa", events: events + "_sa"}
	var apairs []string
	for from, to := range alone {
		apairs = append(apairs, from+":"+to)
	}
	scfg := writeFile(t, "schemas-restore.yaml", `
source:
  target: {type: LocalDir, path: `+dir+`}
  recovery_point: latest
schema_registry:
  url: `+regs.Target+`
rename: `+quoteList(apairs)+`
`)
	for run := 1; run <= 2; run++ {
		r = kbr(t, 5*time.Minute, "restore", "schemas", "-f", scfg, "--json")
		if r.code != 0 {
			t.Fatalf("restore schemas (run %d) exit %d\nstdout: %s\nstderr: %s", run, r.code, r.stdout, r.stderr)
		}
		var sout struct {
			Result struct {
				RecoveryPoint string `json:"recovery_point"`
				Schemas       struct {
					Subjects   int `json:"subjects"`
					Versions   int `json:"versions"`
					Imported   int `json:"imported"`
					Registered int `json:"registered"`
					Existing   int `json:"existing"`
				} `json:"schemas"`
			} `json:"result"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &sout); err != nil {
			t.Fatalf("restore schemas --json: %v\n%s", err, r.stdout)
		}
		ss := sout.Result.Schemas
		t.Logf("restore schemas run %d: %s (%+v)", run, r.took, ss)
		if sout.Result.RecoveryPoint != out.Result.RecoveryPoint || ss.Subjects != 7 || ss.Versions != 8 || ss.Imported+ss.Registered+ss.Existing != 8 {
			t.Errorf("restore schemas run %d: %s %+v, want %s, 7 subjects, 8 versions all accounted for", run, sout.Result.RecoveryPoint, ss, out.Result.RecoveryPoint)
		}
		if run == 2 && (ss.Registered != 0 || ss.Existing != 8) {
			t.Errorf("restore schemas again: %d registered, %d there already; want 0 and 8", ss.Registered, ss.Existing)
		}
	}
	for _, subject := range subjects {
		to := schemareg.SubjectFor(subject, alone)
		versions, err := src.SubjectVersions(ctx, subject)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range versions {
			a, err := src.SchemaByVersion(ctx, subject, v)
			if err != nil {
				t.Fatal(err)
			}
			b, err := dst.SchemaByVersion(ctx, to, v)
			if err != nil {
				t.Fatalf("restore schemas: %s version %d (from %s): %v", to, v, subject, err)
			}
			if a.Schema.Schema != b.Schema.Schema || a.Type != b.Type || len(a.References) != len(b.References) {
				t.Errorf("restore schemas: %s version %d differs from %s's", to, v, subject)
			}
		}
	}
}

// A registry that does not answer fails the preflight in bounded time,
// naming schema_registry.url, and nothing is written; one that refuses
// kbr's credentials fails it too, saying so without the password.
func TestSchemasBadRegistry(t *testing.T) {
	env := testenv.Load(t)
	const password = "s3cr3t-registry-pw"
	pwFile := writeFile(t, "registry.pw", password)
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pw, ok := r.BasicAuth(); !ok || pw != password+"-not" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error_code":40101,"message":"Unauthorized"}`)
			return
		}
		fmt.Fprint(w, `[]`)
	}))
	defer refuse.Close()
	// A registry that takes the connection and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	silentURL := "http://" + silent.Addr().String()
	for _, c := range []struct {
		name, registry, want string
	}{
		{"unreachable", "url: " + silentURL + "\n  timeout: 3s", "schema_registry.url " + silentURL},
		{"credentials", "url: " + refuse.URL + "\n  basic_auth: {username: kbr, password: {file: " + pwFile + "}}", "refused kbr's credentials"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "backups")
			cfg := writeFile(t, "backup.yaml", `
cluster:
  name: zkmode
  bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`
task: badreg-`+randID()+`
data_sources: [schemas]
schema_registry:
  `+c.registry+`
target: {type: LocalDir, path: `+dir+`}
options:
  min_free_bytes: 1GiB
`)
			r := kbr(t, 2*time.Minute, "backup", "run", "-f", cfg, "--json")
			if r.code == 0 {
				t.Fatalf("backup succeeded against a bad registry\n%s", r.stdout)
			}
			all := r.stdout + r.stderr
			if !strings.Contains(all, "preflight") || !strings.Contains(all, c.want) {
				t.Errorf("exit %d; output does not name the preflight and %q:\n%s", r.code, c.want, all)
			}
			if strings.Contains(all, password) {
				t.Errorf("the password is in the output:\n%s", all)
			}
			// Nor in the worker's log or the run's history.
			var out struct {
				WorkflowID string `json:"workflow_id"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.WorkflowID == "" {
				t.Fatalf("backup --json: %v\n%s", err, r.stdout)
			}
			logs, err := os.ReadFile(h.logs.Name())
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range secretscan.Text(logs, []string{password}) {
				t.Errorf("kbr server/worker log: %s", f)
			}
			hist := &historypb.History{}
			it := temporalClient(t).GetWorkflowHistory(context.Background(), out.WorkflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					t.Fatal(err)
				}
				hist.Events = append(hist.Events, ev)
			}
			if len(hist.Events) == 0 {
				t.Fatalf("history of %s is empty", out.WorkflowID)
			}
			for _, f := range secretscan.History(hist, []string{password}) {
				t.Errorf("history of %s: %s", out.WorkflowID, f)
			}
			if r.took > 60*time.Second {
				t.Errorf("took %s: want bounded by the registry timeout", r.took)
			}
			entries, _ := os.ReadDir(dir)
			var names []string
			for _, e := range entries {
				if !strings.HasPrefix(e.Name(), ".") { // the preflight's probe of the target
					names = append(names, e.Name())
				}
			}
			if len(names) > 0 {
				t.Errorf("the target holds %v after a failed preflight: want nothing written", names)
			}
		})
	}
}

// The other path for a registry that keeps its state in Kafka (Confluent,
// Karapace): its _schemas topic backed up (named literally: internal-looking
// topics are otherwise left out) and restored byte for byte into the new
// cluster before its registry starts, ids kept. The topic is shared by every
// run on the stack, so it is created once and each run compares all of it.
func TestSchemasTopicByteForByte(t *testing.T) {
	env := testenv.Load(t)
	adm := kadm.NewClient(client(t, env.ZKModeBootstrap))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": sptr("compact")}, "_schemas")
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatal(err)
	}
	waitLeaders(t, adm, "_schemas", 1)
	id := randID()
	key := func(kind string, v int) []byte {
		return []byte(fmt.Sprintf(`{"keytype":%q,"subject":"s-%s","version":%d,"magic":1}`, kind, id, v))
	}
	produceSync(t, client(t, env.ZKModeBootstrap),
		&kgo.Record{Topic: "_schemas", Key: []byte(`{"keytype":"NOOP","magic":0}`), Value: nil},
		&kgo.Record{Topic: "_schemas", Key: key("SCHEMA", 1), Value: []byte(`{"subject":"s-` + id + `","version":1,"id":1,"schema":"\"string\"","deleted":false}`)},
		&kgo.Record{Topic: "_schemas", Key: key("CONFIG", 0), Value: []byte(`{"compatibilityLevel":"FULL"}`)},
	)
	want := readAll(t, env.ZKModeBootstrap, "_schemas")
	dir := filepath.Join(t.TempDir(), "backups")
	cfg := writeFile(t, "backup.yaml", `
cluster:
  name: zkmode
  bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`
task: schemastopic-`+id+`
data_sources: [metadata, topicdata]   # the metadata carries the topic's configs (compact)
topics:
  include: ["_schemas"]
target: {type: LocalDir, path: `+dir+`}
options:
  min_free_bytes: 1GiB
`)
	r := kbr(t, 5*time.Minute, "backup", "run", "-f", cfg, "--json")
	if r.code != 0 {
		t.Fatalf("backup exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	t.Logf("backup of _schemas with the metadata: %s", r.took)
	var out struct {
		Result struct {
			RecoveryPoint string `json:"recovery_point"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	to := "_schemas_" + id
	rcfg := writeFile(t, "restore.yaml", `
cluster:
  name: kraft
  bootstrap_servers: `+quoteList(env.KRaftBootstrap)+`
source:
  target: {type: LocalDir, path: `+dir+`}
  recovery_point: `+out.Result.RecoveryPoint+`
rename: ["_schemas:`+to+`"]
schema_ids: keep
`)
	r = kbr(t, 5*time.Minute, "restore", "run", "-f", rcfg, "--json")
	if r.code != 0 {
		t.Fatalf("restore exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	compareTopic(t, "_schemas", want, readAll(t, env.KRaftBootstrap, to))
	rc, err := kadm.NewClient(client(t, env.KRaftBootstrap)).DescribeTopicConfigs(ctx, to)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := rc.On(to, nil); err != nil || !slices.ContainsFunc(c.Configs, func(c kadm.Config) bool {
		return c.Key == "cleanup.policy" && c.Value != nil && *c.Value == "compact"
	}) {
		t.Errorf("%s: cleanup.policy not compact as backed up (%v)", to, err)
	}
}
