// Package kraftlogtest cross-checks kbr's decoder of the metadata log
// (internal/kraftlog) against Kafka's own: kafka-dump-log
// --cluster-metadata-decoder (kafka.tools.DumpLogSegments) from the stack's
// Kafka 4 jars. It is for tests.
package kraftlogtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/kbr-project/kbr/internal/kraftlog"
)

// Ours lists the records of a snapshot or segment file as kbr's decoder
// reads them, one normalised line per record ("<offset> <what>").
func Ours(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	s := kraftlog.NewScanner(f)
	for {
		b, err := s.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		recs, err := b.Records()
		if err != nil {
			return out, err
		}
		for _, r := range recs {
			var line string
			if b.IsControl() {
				c, err := kraftlog.DecodeControl(r.Key, r.Value)
				if err != nil {
					return out, err
				}
				line = controlLine(c)
			} else {
				m, err := kraftlog.DecodeMessage(r.Value)
				if err != nil {
					return out, fmt.Errorf("offset %d: %w", r.Offset, err)
				}
				line = messageLine(m)
			}
			out = append(out, fmt.Sprintf("%d %s", r.Offset, line))
		}
	}
}

func controlLine(c kraftlog.ControlRecord) string {
	switch c.Type {
	case kraftlog.ControlSnapshotHeader:
		return fmt.Sprintf("SnapshotHeader ts=%d", c.LastContainedLogTimestamp)
	case kraftlog.ControlSnapshotFooter:
		return "SnapshotFooter"
	case kraftlog.ControlKRaftVersion:
		return fmt.Sprintf("KRaftVersion %d", c.KRaftVersion)
	case kraftlog.ControlKRaftVoters:
		var vs []string
		for _, v := range c.Voters {
			var es []string
			for _, e := range v.Endpoints {
				es = append(es, fmt.Sprintf("%s:%s:%d", e.Name, e.Host, e.Port))
			}
			vs = append(vs, fmt.Sprintf("%d/%s/%s", v.ID, v.DirectoryID, strings.Join(es, ",")))
		}
		return "KRaftVoters " + strings.Join(vs, " ")
	case kraftlog.ControlLeaderChange:
		return "LeaderChange"
	}
	return fmt.Sprintf("Control%d", c.Type)
}

func ints(v []int32) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(int(x))
	}
	return "[" + strings.Join(s, ",") + "]"
}

func messageLine(m kraftlog.Message) string {
	switch r := m.Body.(type) {
	case *kraftlog.TopicRecord:
		return fmt.Sprintf("TopicRecord %s %s", r.Name, r.TopicID)
	case *kraftlog.PartitionRecord:
		return fmt.Sprintf("PartitionRecord %s[%d] replicas=%s isr=%s leader=%d epoch=%d dirs=%v", r.TopicID, r.PartitionID, ints(r.Replicas), ints(r.ISR), r.Leader, r.LeaderEpoch, r.Directories)
	case *kraftlog.PartitionChangeRecord:
		s := fmt.Sprintf("PartitionChangeRecord %s[%d]", r.TopicID, r.PartitionID)
		if r.Leader != -2 {
			s += fmt.Sprintf(" leader=%d", r.Leader)
		}
		if r.ISR != nil {
			s += " isr=" + ints(r.ISR)
		}
		if r.Replicas != nil {
			s += " replicas=" + ints(r.Replicas)
		}
		return s
	case *kraftlog.RemoveTopicRecord:
		return "RemoveTopicRecord " + r.TopicID
	case *kraftlog.ConfigRecord:
		v := r.Value
		if r.Null {
			v = "<null>"
		}
		return fmt.Sprintf("ConfigRecord %d/%s %s=%s", r.ResourceType, r.ResourceName, r.Name, v)
	case *kraftlog.AccessControlEntryRecord:
		return fmt.Sprintf("AccessControlEntryRecord %s %d/%s/%d %s@%s op=%d perm=%d", r.ID, r.ResourceType, r.ResourceName, r.PatternType, r.Principal, r.Host, r.Operation, r.Permission)
	case *kraftlog.RemoveAccessControlEntryRecord:
		return "RemoveAccessControlEntryRecord " + r.ID
	case *kraftlog.UserScramCredentialRecord:
		return fmt.Sprintf("UserScramCredentialRecord %s mech=%d iterations=%d", r.Name, r.Mechanism, r.Iterations)
	case *kraftlog.RemoveUserScramCredentialRecord:
		return fmt.Sprintf("RemoveUserScramCredentialRecord %s mech=%d", r.Name, r.Mechanism)
	case *kraftlog.FeatureLevelRecord:
		return fmt.Sprintf("FeatureLevelRecord %s=%d", r.Name, r.Level)
	case *kraftlog.ClientQuotaRecord:
		var es []string
		for k, v := range r.Entity {
			es = append(es, k+"="+v)
		}
		sort.Strings(es)
		return fmt.Sprintf("ClientQuotaRecord %s %s=%g remove=%v", strings.Join(es, ","), r.Key, r.Value, r.Remove)
	}
	return kraftlog.TypeName(m.Type)
}

var lineRE = regexp.MustCompile(`^\| offset: (\d+) .*? headerKeys: \[[^\]]*\] (.*)$`)

// Theirs lists the records of a file as kafka-dump-log
// --cluster-metadata-decoder prints them, normalised like Ours. jars is the
// Kafka 4 libs directory (deploy/local/lib/kafka4).
func Theirs(jars, path string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "java", "-Xmx256m", "-cp", jars+"/*", "kafka.tools.DumpLogSegments", "--cluster-metadata-decoder", "--files", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("kafka-dump-log: %v\n%s", err, stderr.String())
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		m := lineRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		line, err := theirLine(m[2])
		if err != nil {
			return nil, fmt.Errorf("offset %s: %v: %s", m[1], err, l)
		}
		lines = append(lines, m[1]+" "+line)
	}
	return lines, nil
}

func theirLine(rest string) (string, error) {
	if js, ok := strings.CutPrefix(rest, "payload: "); ok {
		var p struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal([]byte(js), &p); err != nil {
			return "", err
		}
		return payloadLine(camel(p.Type), p.Data), nil
	}
	name, js, _ := strings.Cut(rest, " ")
	name = strings.TrimSuffix(name, ":")
	var d map[string]any
	if err := json.Unmarshal([]byte(js), &d); err != nil {
		return "", err
	}
	switch name {
	case "SnapshotHeader":
		return fmt.Sprintf("SnapshotHeader ts=%d", int64(num(d["lastContainedLogTimestamp"]))), nil
	case "KRaftVersion":
		return fmt.Sprintf("KRaftVersion %d", int(num(d["kRaftVersion"]))), nil
	case "KRaftVoters":
		var vs []string
		for _, v := range list(d["voters"]) {
			vm := v.(map[string]any)
			var es []string
			for _, e := range list(vm["endpoints"]) {
				em := e.(map[string]any)
				es = append(es, fmt.Sprintf("%s:%s:%d", em["name"], em["host"], int(num(em["port"]))))
			}
			vs = append(vs, fmt.Sprintf("%d/%s/%s", int(num(vm["voterId"])), vm["voterDirectoryId"], strings.Join(es, ",")))
		}
		return "KRaftVoters " + strings.Join(vs, " "), nil
	}
	return name, nil
}

func payloadLine(typ string, d map[string]any) string {
	i := func(k string) int { return int(num(d[k])) }
	s := func(k string) string {
		if d[k] == nil {
			return "<null>"
		}
		return fmt.Sprint(d[k])
	}
	il := func(k string) string {
		var v []int32
		for _, x := range list(d[k]) {
			v = append(v, int32(num(x)))
		}
		return ints(v)
	}
	switch typ {
	case "TopicRecord":
		return fmt.Sprintf("TopicRecord %s %s", s("name"), s("topicId"))
	case "PartitionRecord":
		var dirs []string
		for _, x := range list(d["directories"]) {
			dirs = append(dirs, fmt.Sprint(x))
		}
		return fmt.Sprintf("PartitionRecord %s[%d] replicas=%s isr=%s leader=%d epoch=%d dirs=%v", s("topicId"), i("partitionId"), il("replicas"), il("isr"), i("leader"), i("leaderEpoch"), dirs)
	case "PartitionChangeRecord":
		out := fmt.Sprintf("PartitionChangeRecord %s[%d]", s("topicId"), i("partitionId"))
		if _, ok := d["leader"]; ok && i("leader") != -2 {
			out += fmt.Sprintf(" leader=%d", i("leader"))
		}
		if d["isr"] != nil {
			out += " isr=" + il("isr")
		}
		if d["replicas"] != nil {
			out += " replicas=" + il("replicas")
		}
		return out
	case "RemoveTopicRecord":
		return "RemoveTopicRecord " + s("topicId")
	case "ConfigRecord":
		return fmt.Sprintf("ConfigRecord %d/%s %s=%s", i("resourceType"), s("resourceName"), s("name"), s("value"))
	case "AccessControlEntryRecord":
		return fmt.Sprintf("AccessControlEntryRecord %s %d/%s/%d %s@%s op=%d perm=%d", s("id"), i("resourceType"), s("resourceName"), i("patternType"), s("principal"), s("host"), i("operation"), i("permissionType"))
	case "RemoveAccessControlEntryRecord":
		return "RemoveAccessControlEntryRecord " + s("id")
	case "UserScramCredentialRecord":
		return fmt.Sprintf("UserScramCredentialRecord %s mech=%d iterations=%d", s("name"), i("mechanism"), i("iterations"))
	case "RemoveUserScramCredentialRecord":
		return fmt.Sprintf("RemoveUserScramCredentialRecord %s mech=%d", s("name"), i("mechanism"))
	case "FeatureLevelRecord":
		return fmt.Sprintf("FeatureLevelRecord %s=%d", s("name"), i("featureLevel"))
	case "ClientQuotaRecord":
		var es []string
		for _, e := range list(d["entity"]) {
			em := e.(map[string]any)
			n := ""
			if em["entityName"] != nil {
				n = fmt.Sprint(em["entityName"])
			}
			es = append(es, fmt.Sprint(em["entityType"])+"="+n)
		}
		sort.Strings(es)
		return fmt.Sprintf("ClientQuotaRecord %s %s=%g remove=%v", strings.Join(es, ","), s("key"), num(d["value"]), d["remove"])
	}
	return typ
}

// camel turns ACCESS_CONTROL_ENTRY_RECORD into AccessControlEntryRecord.
func camel(s string) string {
	var b strings.Builder
	for _, w := range strings.Split(strings.ToLower(s), "_") {
		if w == "" {
			continue
		}
		r := []rune(w)
		r[0] = unicode.ToUpper(r[0])
		b.WriteString(string(r))
	}
	return b.String()
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// CrossCheck fails t unless kbr's decoder and Kafka's read every record of
// the file alike. It returns how many records it compared.
func CrossCheck(t testing.TB, jars, path string) int {
	t.Helper()
	ours, err := Ours(path)
	if err != nil {
		t.Fatalf("kbr's decoder on %s: %v", path, err)
	}
	theirs, err := Theirs(jars, path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	bad := 0
	for i := 0; i < max(len(ours), len(theirs)); i++ {
		var o, k string
		if i < len(ours) {
			o = ours[i]
		}
		if i < len(theirs) {
			k = theirs[i]
		}
		if o != k {
			bad++
			if bad <= 10 {
				t.Errorf("%s record %d:\n  kbr:   %s\n  kafka: %s", path, i, o, k)
			}
		}
	}
	if bad > 10 {
		t.Errorf("%s: %d records differ in all", path, bad)
	}
	if len(ours) == 0 {
		t.Errorf("%s: no record compared", path)
	}
	return len(ours)
}
