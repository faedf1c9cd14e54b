package all

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestEveryPathType guards against a path type of the MRS table missing
// from the binary's registry, or registered without its opener or (where it
// has parameters) its check.
func TestEveryPathType(t *testing.T) {
	r := Registry()
	want := []string{"cifs", "localdir", "localhdfs", "nfs", "obs", "remotehdfs", "sftp"}
	if got := r.Types(); !slices.Equal(got, want) {
		t.Errorf("Types() = %v, want %v", got, want)
	}
	for _, name := range want {
		pt, _ := r.Lookup(name)
		if pt.Open == nil || (pt.Validate == nil && name != "localdir") {
			t.Errorf("%s: opener %v, check %v; want both", name, pt.Open != nil, pt.Validate != nil)
		}
	}
}

// TestWorkflowsLinkNoStorageClient guards against the deterministic
// workflow package linking a storage SDK again (a blank import of this
// package, a backend imported for a constant): workflow code must not be
// able to reach the network, and every SDK's init ran in it.
func TestWorkflowsLinkNoStorageClient(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/kbr-project/kbr/workflows").Output()
	if err != nil {
		t.Fatalf("go list -deps ./workflows: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{
			"github.com/cloudsoda/go-smb2", "github.com/hirochachacha/go-smb2", "github.com/colinmarc/hdfs",
			"github.com/jcmturner/gokrb5", "github.com/minio/minio-go", "github.com/pkg/sftp",
			"github.com/kbr-project/kbr/storage/all", "github.com/kbr-project/kbr/storage/cifs",
			"github.com/kbr-project/kbr/storage/hdfs", "github.com/kbr-project/kbr/storage/obs",
			"github.com/kbr-project/kbr/storage/sftp",
		} {
			if pkg == banned || strings.HasPrefix(pkg, banned+"/") {
				t.Errorf("workflows depends on %s", pkg)
			}
		}
	}
}
