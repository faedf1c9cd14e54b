package storage

import (
	"context"
	"fmt"
	"io"
)

// RangeOpener is a backend that reads part of a file natively.
type RangeOpener interface {
	// OpenRange reads length bytes of name from offset (length -1: to the end).
	OpenRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error)
}

// OpenRange reads part of a file: natively where the backend can, else by
// reading from the start and discarding what lies before offset.
func OpenRange(ctx context.Context, b Backend, name string, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, fmt.Errorf("read %s: offset %d", name, offset)
	}
	if ro, ok := b.(RangeOpener); ok {
		return ro.OpenRange(ctx, name, offset, length)
	}
	rc, err := b.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	if _, err := io.CopyN(io.Discard, rc, offset); err != nil {
		rc.Close()
		return nil, fmt.Errorf("read %s at %d: %w", name, offset, err)
	}
	if length < 0 {
		return rc, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(rc, length), rc}, nil
}
