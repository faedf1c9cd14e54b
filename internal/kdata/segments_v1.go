package kdata

import (
	"context"
	"fmt"
	"io"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/storage"
)

// ReadSegment streams a format 1 segment's records, checking its size and
// SHA-256 (recovery points written before format 2 keep restoring).
func ReadSegment(ctx context.Context, b storage.Backend, seg backupset.SegmentInfo, compression string, fn func(*backupset.Record) error) error {
	rc, err := b.Open(ctx, seg.Name)
	if err != nil {
		return err
	}
	defer rc.Close()
	vr := backupset.NewVerifyingReader(rc, seg.Name, seg.Size, seg.SHA256)
	if seg.Compression != "" {
		compression = seg.Compression
	}
	sr, err := backupset.NewSegmentReader(vr, compression)
	if err != nil {
		return fmt.Errorf("%s: %w", seg.Name, err)
	}
	defer sr.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := sr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", seg.Name, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return vr.Drain()
}
