// Package ahead is a pipe with a few buffers of slack, for backends whose
// reads come from a goroutine (a pipelined download) and should run ahead
// of the reader: the download goes on while the reader hashes,
// decompresses or writes elsewhere, instead of waiting at a synchronous
// io.Pipe for every chunk.
package ahead

import (
	"context"
	"errors"
	"io"
	"sync"
)

// Buffers × BufferSize is how far the writer runs ahead of the reader.
const (
	Buffers    = 4
	BufferSize = 1 << 20
)

// ErrReaderClosed is what Write returns once the reader has closed.
var ErrReaderClosed = errors.New("reader closed")

// Pipe is a pipe with Buffers buffers of slack. One goroutine writes (then
// calls CloseWrite), one reads (then calls Close).
type Pipe struct {
	full      chan []byte   // filled buffers, in order; closed by closeWrite
	free      chan []byte   // buffers the reader is done with
	closed    chan struct{} // closed by close: the writer stops
	closeOnce sync.Once
	werr      error // the writer's end (nil: io.EOF), set before full closes

	wbuf      []byte // the writer's buffer being filled
	allocated int    // buffers made so far (writer side)

	rbuf []byte // the reader's current buffer
	rcur []byte // its unread bytes
}

// New returns an empty pipe; its buffers are made as they are needed.
func New() *Pipe {
	return &Pipe{
		full:   make(chan []byte, Buffers),
		free:   make(chan []byte, Buffers),
		closed: make(chan struct{}),
	}
}

// Write copies p into buffers, handing each full one to the reader; it
// blocks only while every buffer is full and unread.
func (q *Pipe) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if q.wbuf == nil {
			select {
			case b := <-q.free:
				q.wbuf = b[:0]
			default:
				if q.allocated < Buffers {
					q.allocated++
					q.wbuf = make([]byte, 0, BufferSize)
				} else {
					select {
					case b := <-q.free:
						q.wbuf = b[:0]
					case <-q.closed:
						return n, ErrReaderClosed
					}
				}
			}
		}
		k := copy(q.wbuf[len(q.wbuf):cap(q.wbuf)], p)
		q.wbuf = q.wbuf[:len(q.wbuf)+k]
		n, p = n+k, p[k:]
		if len(q.wbuf) == cap(q.wbuf) {
			if err := q.send(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (q *Pipe) send() error {
	select {
	case q.full <- q.wbuf:
		q.wbuf = nil
		return nil
	case <-q.closed:
		return ErrReaderClosed
	}
}

// CloseWrite hands over what is buffered and ends the stream with err
// (nil: io.EOF).
func (q *Pipe) CloseWrite(err error) {
	if len(q.wbuf) > 0 {
		if q.send() != nil {
			err = ErrReaderClosed
		}
	}
	q.werr = err
	close(q.full)
}

// Read fills p from the buffers, waiting for the next one (or ctx).
func (q *Pipe) Read(ctx context.Context, p []byte) (int, error) {
	for len(q.rcur) == 0 {
		if q.rbuf != nil {
			q.free <- q.rbuf // never blocks: free holds every buffer
			q.rbuf = nil
		}
		select {
		case b, ok := <-q.full:
			if !ok {
				if q.werr != nil {
					return 0, q.werr
				}
				return 0, io.EOF
			}
			q.rbuf, q.rcur = b, b
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	n := copy(p, q.rcur)
	q.rcur = q.rcur[n:]
	return n, nil
}

// Close stops the writer; it may be called more than once.
func (q *Pipe) Close() {
	q.closeOnce.Do(func() { close(q.closed) })
}
