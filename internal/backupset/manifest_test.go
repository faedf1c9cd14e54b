package backupset

import (
	"strings"
	"testing"
)

// TestReadManifestErrorsNameTheFile guards the error a 0-byte manifest
// gave: "manifest: unexpected end of JSON input", naming neither the file
// nor what is wrong with it. Each damage is named with the file, and a
// manifest naming a file outside the target root is refused.
func TestReadManifestErrorsNameTheFile(t *testing.T) {
	t.Parallel()
	const name = "orders_20250101T000000Z/3.9_manifest_20250102T000000Z.json"
	for _, c := range []struct {
		in, want string
	}{
		{"", "the file is empty (0 bytes)"},
		{"\n  \n", "the file is empty (4 bytes)"},
		{`{"format":1,"task":"or`, "the JSON ends early, at byte 22: the file was cut short"},
		{`{"format":1,}`, "not valid JSON at byte 13 of 13"},
		{`{"format":"one"}`, "cannot unmarshal string"},
		{`{"format":3}`, "format 3, this kbr reads 1 and 2"},
		{`{"format":2,"parts":[{"name":"../p.json","size":1}]}`, `names the file "../p.json"`},
		{`{"format":1,"metadata":{"name":"../../etc/passwd"}}`, `names the file "../../etc/passwd", which is not a clean path inside the target root`},
		{`{"format":1,"base":"/etc/x_manifest.json"}`, `names the file "/etc/x_manifest.json"`},
		{`{"format":1,"partitions":[{"segments":[{"name":"a/./b"}]}]}`, `names the file "a/./b"`},
		{`{"format":1,"offsets":{"name":""}}`, `names the file ""`},
	} {
		_, err := ReadManifest(name, []byte(c.in))
		if err == nil || !strings.HasPrefix(err.Error(), "manifest "+name+": ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ReadManifest(%q) = %v; want an error naming %s and saying %q", c.in, err, name, c.want)
		}
	}
	m, err := ReadManifest(name, []byte(`{"format":1,"metadata":{"name":"t_x/3.9_metadata_y.tar.gz"}}`))
	if err != nil || m.Metadata.Name != "t_x/3.9_metadata_y.tar.gz" {
		t.Errorf("a good manifest: %+v, %v", m, err)
	}
}
