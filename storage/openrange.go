package storage

import (
	"context"
	"fmt"
	"io"
)

// RangeOpener is implemented by backends that read part of a file without
// reading what comes before it (a seek, a ranged GET): the data path reads
// chunks of pack files this way.
type RangeOpener interface {
	// OpenRange reads length bytes of the committed file name from offset
	// on; length -1 reads to the end of the file. A missing name fails as
	// Open does. A range that does not lie within the file (offset past its
	// end, or offset+length past its end) fails with an error wrapping
	// ErrBadRange: from OpenRange, or at the latest from the Read that
	// reaches the end of the file before the end of the range. A range of
	// length 0 within the file reads nothing and succeeds.
	OpenRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error)
}

// CheckRange refuses a negative offset and a length below -1.
func CheckRange(name string, offset, length int64) error {
	if offset < 0 || length < -1 {
		return Permanent(fmt.Errorf("read %s: offset %d, length %d: %w (want offset >= 0, length >= 0 or -1 for the rest)", name, offset, length, ErrBadRange))
	}
	return nil
}

// RangeError is the error of a range that the file does not hold: size is
// the file's size, or -1 when the backend learnt only that it is shorter.
func RangeError(target, name string, offset, length, size int64) error {
	want := "to the end"
	if length >= 0 {
		want = fmt.Sprintf("%d bytes", length)
	}
	if size >= 0 {
		return Permanent(fmt.Errorf("%s: read %s at offset %d, %s: %w: the file has %d bytes", target, name, offset, want, ErrBadRange, size))
	}
	return Permanent(fmt.Errorf("%s: read %s at offset %d, %s: %w: the file ends before", target, name, offset, want, ErrBadRange))
}

// OpenRange reads length bytes (-1: to the end) of name on b from offset on
// (see RangeOpener): natively where b implements RangeOpener, else by Open
// and discarding the first offset bytes. Decorators (storage/decorate)
// pass it through.
func OpenRange(ctx context.Context, b Backend, name string, offset, length int64) (io.ReadCloser, error) {
	if err := CheckRange(name, offset, length); err != nil {
		return nil, err
	}
	if ro, ok := b.(RangeOpener); ok {
		return ro.OpenRange(ctx, name, offset, length)
	}
	rc, err := b.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	if offset > 0 {
		n, err := io.CopyN(io.Discard, rc, offset)
		if err != nil {
			rc.Close()
			if err == io.EOF {
				return nil, RangeError(b.String(), name, offset, length, n)
			}
			return nil, fmt.Errorf("%s: read %s up to offset %d: %w", b, name, offset, err)
		}
	}
	if length < 0 {
		return rc, nil
	}
	return &LimitedReader{R: rc, N: length, OnShort: func() error { return RangeError(b.String(), name, offset, length, -1) }}, nil
}

// LimitedReader reads N bytes of R and then io.EOF; when R ends first, Read
// returns OnShort's error instead of io.EOF. Close closes R.
type LimitedReader struct {
	R       io.ReadCloser
	N       int64
	OnShort func() error
}

func (l *LimitedReader) Read(p []byte) (int, error) {
	if l.N <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.N {
		p = p[:l.N]
	}
	n, err := l.R.Read(p)
	l.N -= int64(n)
	if err == io.EOF {
		if l.N > 0 {
			return n, l.OnShort()
		}
		if n > 0 {
			err = nil
		}
	}
	return n, err
}

func (l *LimitedReader) Close() error { return l.R.Close() }
