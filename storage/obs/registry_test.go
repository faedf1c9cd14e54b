package obs

import (
	"context"

	"github.com/kbr-project/kbr/storage"
)

// reg is this package's part of the registry storage/all builds (which
// cannot be imported here: it imports this package), so that tests open
// and check targets the way the binary does.
var reg = storage.NewRegistry(storage.PathType{Name: Type, Validate: Validate, Open: openBackend})

func openBackend(ctx context.Context, t storage.Target) (storage.Backend, error) {
	b, err := New(ctx, t)
	if err != nil {
		return nil, err
	}
	return b, nil
}
