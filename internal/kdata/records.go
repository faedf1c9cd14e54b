package kdata

import (
	"context"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/kbatch"
	"github.com/kbr-project/kbr/storage"
)

// Records reads a view partition's records as a restore would produce them:
// every source in order, decoded, records below the partition's
// StartOffset left out. Each chunk's CRC and each batch's CRC are checked.
// It is for tests and inspection, not the data path (which keeps batches).
func Records(ctx context.Context, b storage.Backend, p backupset.PartitionBackup, fn func(kbatch.Record) error) error {
	for _, src := range p.Sources {
		if src.Format == 1 {
			for _, seg := range src.Segments {
				err := ReadSegment(ctx, b, seg, src.Compression, func(r *backupset.Record) error {
					if r.Offset < p.StartOffset {
						return nil
					}
					kr := kbatch.Record{Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value}
					for _, h := range r.Headers {
						kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
					}
					return fn(kr)
				})
				if err != nil {
					return err
				}
			}
			continue
		}
		packs := append([]backupset.FileEntry(nil), src.Packs...)
		sort.Slice(packs, func(i, j int) bool { return packs[i].Name < packs[j].Name })
		for _, f := range packs {
			ix, err := ReadPackIndex(ctx, b, f)
			if err != nil {
				return err
			}
			for _, c := range ix.ChunksOf(p.Topic, p.Partition) {
				rc, err := storage.OpenRange(ctx, b, f.Name, c.Offset, c.Length)
				if err != nil {
					return err
				}
				data, err := backupset.ReadChunk(rc, c, nil)
				rc.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", f.Name, err)
				}
				for len(data) > 0 {
					entry, _, rest, ok, err := kbatch.Next(data)
					if err == nil && !ok {
						err = fmt.Errorf("%w: batch cut short", kbatch.ErrCorrupt)
					}
					if err == nil {
						err = kbatch.CheckCRC(entry)
					}
					if err != nil {
						return fmt.Errorf("%s: %w", f.Name, err)
					}
					data = rest
					recs, err := kbatch.Decode(entry, p.StartOffset)
					if err != nil {
						return fmt.Errorf("%s: %w", f.Name, err)
					}
					for _, r := range recs {
						if err := fn(r); err != nil {
							return err
						}
					}
				}
			}
		}
	}
	return nil
}
