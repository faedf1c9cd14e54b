package localdir_test

import (
	"testing"

	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/localdir"
	"github.com/kbr-project/kbr/storage/storagetest"
)

// TestConformance runs the storage conformance suite on a temporary
// directory. LocalDir has no server to stop and no credentials.
func TestConformance(t *testing.T) {
	storagetest.Run(t, storagetest.Harness{
		New: func(t *testing.T) storage.Backend {
			d, err := localdir.New(t.TempDir()) // siblings under one test directory
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		FreeSpace: true,
		Dirs:      true,
		Partial:   true,
	})
}
