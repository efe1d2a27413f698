package rewrite

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestFilePipe(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "pipe")
	if err != nil {
		t.Fatal(err)
	}
	p := newFilePipe(f)
	data := bytes.Repeat([]byte("0123456789"), 100000)
	go func() {
		for i := 0; i < len(data); i += 7777 {
			p.Write(data[i:min(i+7777, len(data))])
			if i%77770 == 0 {
				time.Sleep(time.Millisecond) // the reader catches up and waits
			}
		}
		p.finish(nil)
	}()
	got, err := io.ReadAll(p)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes (%v), want %d", len(got), err, len(data))
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f.Name()); !os.IsNotExist(err) {
		t.Error("Close left the file")
	}
}

func TestFilePipeError(t *testing.T) {
	f, _ := os.CreateTemp(t.TempDir(), "pipe")
	p := newFilePipe(f)
	boom := errors.New("digest mismatch")
	p.Write([]byte("partial"))
	p.finish(boom)
	got, err := io.ReadAll(p)
	if string(got) != "partial" || !errors.Is(err, boom) {
		t.Errorf("got %q, %v; want the bytes written, then the writer's error", got, err)
	}
	p.Close()
}

func TestBlockPipe(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 300000) // several blocks and a part
	p := newBlockPipe(iotest.HalfReader(bytes.NewReader(data)))
	got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(p, 1000)))
	if err != nil || !bytes.Equal(got, data[:1000]) {
		t.Fatalf("read %d bytes (%v), want the first 1000", len(got), err)
	}
	rest, err := io.ReadAll(p)
	if err != nil || !bytes.Equal(rest, data[1000:]) {
		t.Fatalf("read %d bytes (%v), want %d", len(rest), err, len(data)-1000)
	}
	p.Close()
}

func TestBlockPipeError(t *testing.T) {
	boom := errors.New("unexpected EOF in gzip")
	p := newBlockPipe(io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(boom)))
	got, err := io.ReadAll(p)
	if string(got) != "partial" || !errors.Is(err, boom) {
		t.Errorf("got %q, %v; want the bytes read, then the source's error", got, err)
	}
	p.Close()
}

func TestBlockPipeCloseEarly(t *testing.T) {
	// A walk that fails stops reading: Close must stop the goroutine, which
	// is then blocked on a full pipe.
	p := newBlockPipe(infinite{})
	p.Read(make([]byte, 10))
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not stop the reading goroutine")
	}
}

type infinite struct{}

func (infinite) Read(b []byte) (int, error) { return len(b), nil }
