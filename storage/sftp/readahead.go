package sftp

import (
	"context"
	"errors"
	"io"
	"sync"
)

// aheadBuffers × aheadBufferSize is how far a read runs ahead of its
// reader: File.WriteTo keeps its requests going while the reader (which
// hashes, decompresses, writes elsewhere) is busy, instead of waiting at a
// synchronous pipe for every 32 KiB.
const (
	aheadBuffers    = 4
	aheadBufferSize = 1 << 20
)

var errReaderClosed = errors.New("reader closed")

// aheadPipe is a pipe with aheadBuffers buffers of slack. One goroutine
// writes (then calls closeWrite), one reads (then calls close).
type aheadPipe struct {
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

func newAheadPipe() *aheadPipe {
	return &aheadPipe{
		full:   make(chan []byte, aheadBuffers),
		free:   make(chan []byte, aheadBuffers),
		closed: make(chan struct{}),
	}
}

// Write copies p into buffers, handing each full one to the reader; it
// blocks only while every buffer is full and unread.
func (q *aheadPipe) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if q.wbuf == nil {
			select {
			case b := <-q.free:
				q.wbuf = b[:0]
			default:
				if q.allocated < aheadBuffers {
					q.allocated++
					q.wbuf = make([]byte, 0, aheadBufferSize)
				} else {
					select {
					case b := <-q.free:
						q.wbuf = b[:0]
					case <-q.closed:
						return n, errReaderClosed
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

func (q *aheadPipe) send() error {
	select {
	case q.full <- q.wbuf:
		q.wbuf = nil
		return nil
	case <-q.closed:
		return errReaderClosed
	}
}

// closeWrite hands over what is buffered and ends the stream with err
// (nil: io.EOF).
func (q *aheadPipe) closeWrite(err error) {
	if len(q.wbuf) > 0 {
		if q.send() != nil {
			err = errReaderClosed
		}
	}
	q.werr = err
	close(q.full)
}

// read fills p from the buffers, waiting for the next one (or ctx).
func (q *aheadPipe) read(ctx context.Context, p []byte) (int, error) {
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

// close stops the writer; it may be called more than once.
func (q *aheadPipe) close() {
	q.closeOnce.Do(func() { close(q.closed) })
}
