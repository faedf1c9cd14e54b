package ahead

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// TestPipe guards against a read-ahead that reorders, loses or
// duplicates bytes, swallows the writer's error, or keeps the writer
// blocked after the reader closed.
func TestPipe(t *testing.T) {
	data := make([]byte, 5*BufferSize+12345)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	q := New()
	fail := errors.New("server went away")
	go func() {
		for off := 0; off < len(data); {
			n := min(1+rand.IntN(100<<10), len(data)-off)
			if _, err := q.Write(data[off : off+n]); err != nil {
				t.Error(err)
				return
			}
			off += n
		}
		q.CloseWrite(fail)
	}()
	var got bytes.Buffer
	buf := make([]byte, 77777)
	var err error
	for {
		var n int
		n, err = q.Read(context.Background(), buf)
		got.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if !errors.Is(err, fail) {
		t.Errorf("read ended with %v, want the writer's error", err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Errorf("read %d bytes, not the %d written", got.Len(), len(data))
	}

	// A clean end is io.EOF.
	q = New()
	q.Write([]byte("x"))
	q.CloseWrite(nil)
	if b, err := io.ReadAll(readerFunc(func(p []byte) (int, error) { return q.Read(context.Background(), p) })); err != nil || string(b) != "x" {
		t.Errorf("ReadAll = %q, %v", b, err)
	}

	// The reader's close releases a writer waiting for a free buffer.
	q = New()
	done := make(chan error, 1)
	go func() {
		_, err := q.Write(make([]byte, (Buffers+2)*BufferSize))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	q.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrReaderClosed) {
			t.Errorf("Write after close = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Write still blocked after the reader closed")
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
