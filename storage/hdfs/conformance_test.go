package hdfs

import (
	"testing"

	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/storagetest"
)

// TestConformance runs the storage conformance suite against the stack's
// HDFS (deploy/services/hdfs.sh): a real NameNode and DataNode, permissions
// on, as the unprivileged user kbr. Roots are siblings under one directory
// per run. The server check stops and restarts the NameNode (the DataNode
// keeps running, so a write in progress has a live pipeline and fails only at
// the NameNode). Simple authentication has no credentials to get wrong.
func TestConformance(t *testing.T) {
	e := loadHDFS(t)
	storagetest.Run(t, storagetest.Harness{
		New: func(t *testing.T) storage.Backend {
			return e.openBackend(t, e.target(e.freshRoot(t)), defaultOptions())
		},
		WrongCredentials: nil,
		StopServer:       func(t *testing.T) { run(t, e.Stop) },
		StartServer:      func(t *testing.T) { run(t, e.Start) },
		FreeSpace:        true,
		Dirs:             true,
		Partial:          true,
	})
}
