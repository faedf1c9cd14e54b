// Package catalog reads recovery points from a target: a manifest, its
// parts (each checked against the index), the chain of an incremental one,
// and the view a restore reads (backupset.Flatten). It caches nothing; the
// activities keep their own caches around it.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/storage"
)

// MaxManifestBytes bounds a manifest index or part a reader loads.
const MaxManifestBytes = 256 << 20

// Manifest reads a manifest (the index, for format 2). Errors name the file.
func Manifest(ctx context.Context, b storage.Backend, name string) (*backupset.Manifest, error) {
	rc, err := b.Open(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("recovery point %s: %w", name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, MaxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("recovery point %s: %w", name, err)
	}
	if len(data) > MaxManifestBytes {
		return nil, storage.Permanent(fmt.Errorf("recovery point %s: manifest over %d bytes", name, MaxManifestBytes))
	}
	m, err := backupset.ReadManifest(name, data)
	if err != nil {
		return nil, storage.Permanent(err) // it names the file
	}
	return m, nil
}

// Parts reads every part of a format 2 manifest, checking each against the
// index (size and SHA-256), several at once.
func Parts(ctx context.Context, b storage.Backend, name string, m *backupset.Manifest) ([]*backupset.Part, error) {
	parts := make([]*backupset.Part, len(m.Parts))
	errs := make([]error, len(m.Parts))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, ref := range m.Parts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := ReadVerified(ctx, b, ref.FileEntry, func(r io.Reader) error {
				data, err := io.ReadAll(io.LimitReader(r, MaxManifestBytes))
				if err != nil {
					return err
				}
				p, err := backupset.UnmarshalPart(data)
				parts[i] = p
				return err
			})
			if err != nil {
				errs[i] = fmt.Errorf("recovery point %s: part %s: %w", name, ref.Name, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, storage.Permanent(err)
	}
	return parts, nil
}

// ReadVerified opens a file and checks it against its manifest entry while
// fn reads it; fn must read to the end.
func ReadVerified(ctx context.Context, b storage.Backend, f backupset.FileEntry, fn func(io.Reader) error) error {
	rc, err := b.Open(ctx, f.Name)
	if err != nil {
		return err
	}
	defer rc.Close()
	vr := backupset.NewVerifyingReader(rc, f.Name, f.Size, f.SHA256)
	if err := fn(vr); err != nil {
		return err
	}
	return vr.Drain()
}

// Loader reads manifests, through a cache if it has one.
type Loader func(ctx context.Context, b storage.Backend, name string) (*backupset.Manifest, error)

// RecoveryPoint reads a manifest and, for format 2, its parts.
func RecoveryPoint(ctx context.Context, b storage.Backend, name string, load Loader) (backupset.Loaded, error) {
	if load == nil {
		load = Manifest
	}
	m, err := load(ctx, b, name)
	if err != nil {
		return backupset.Loaded{}, err
	}
	l := backupset.Loaded{Name: name, Manifest: m}
	if m.Format >= 2 {
		if l.Parts, err = Parts(ctx, b, name, m); err != nil {
			return l, err
		}
	}
	return l, nil
}

// Chain reads a recovery point and the bases it needs, newest first.
func Chain(ctx context.Context, b storage.Backend, name string, load Loader) ([]backupset.Loaded, error) {
	var chain []backupset.Loaded
	seen := map[string]bool{}
	for cur := name; cur != ""; {
		if seen[cur] || len(chain) > 10000 {
			return nil, storage.Permanent(fmt.Errorf("recovery point %s: its chain loops at %s", name, cur))
		}
		seen[cur] = true
		l, err := RecoveryPoint(ctx, b, cur, load)
		if err != nil {
			if cur != name {
				return nil, fmt.Errorf("recovery point %s needs its base %s: %w", name, cur, err)
			}
			return nil, err
		}
		chain = append(chain, l)
		cur = l.Manifest.Base
	}
	return chain, nil
}

// View reads a recovery point as a restore sees it.
func View(ctx context.Context, b storage.Backend, name string, load Loader) (*backupset.View, error) {
	chain, err := Chain(ctx, b, name, load)
	if err != nil {
		return nil, err
	}
	v, err := backupset.Flatten(chain)
	if err != nil {
		return nil, storage.Permanent(err) // it names the file
	}
	return v, nil
}
