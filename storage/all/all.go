// Package all builds the storage registry that links every backend. Only
// the binary (cmd/kbr) and tests import it: they hand the registry to what
// opens targets (activities.Activities.Storage, workers.Options.Storage) and
// to config validation (config.UseStorage), so that the packages that only
// name targets — the workflows above all — link no storage client.
package all

import (
	"context"

	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/cifs"
	"github.com/kbr-project/kbr/storage/hdfs"
	"github.com/kbr-project/kbr/storage/localdir"
	"github.com/kbr-project/kbr/storage/nfs"
	"github.com/kbr-project/kbr/storage/obs"
	"github.com/kbr-project/kbr/storage/sftp"
)

// Registry returns the registry of every MRS path type: LocalDir,
// LocalHDFS, RemoteHDFS, NFS, CIFS, SFTP and OBS.
func Registry() *storage.Registry { return storage.NewRegistry(PathTypes()...) }

// PathTypes lists every path type with its check and its opener.
func PathTypes() []storage.PathType {
	return []storage.PathType{
		{Name: localdir.Type, Open: func(_ context.Context, t storage.Target) (storage.Backend, error) {
			return backend(localdir.New(t.Path))
		}},
		{Name: hdfs.LocalType, Validate: hdfs.Validate, Open: opener(hdfs.New)},
		{Name: hdfs.RemoteType, Validate: hdfs.Validate, Open: opener(hdfs.New)},
		{Name: nfs.Type, Validate: nfs.Validate, Open: opener(nfs.New)},
		{Name: cifs.Type, Validate: cifs.Validate, Open: opener(cifs.New)},
		{Name: sftp.Type, Validate: sftp.Validate, Open: opener(sftp.New)},
		{Name: obs.Type, Validate: obs.Validate, Open: opener(obs.New)},
	}
}

// opener adapts a backend's New to a storage.Factory.
func opener[B storage.Backend](newB func(context.Context, storage.Target) (B, error)) storage.Factory {
	return func(ctx context.Context, t storage.Target) (storage.Backend, error) {
		return backend(newB(ctx, t))
	}
}

// backend returns a nil interface (not a typed nil pointer) on failure.
func backend[B storage.Backend](b B, err error) (storage.Backend, error) {
	if err != nil {
		return nil, err
	}
	return b, nil
}
