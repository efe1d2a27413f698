package rewrite

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
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
