package iocount

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReader(t *testing.T) {
	r := &Reader{R: iotest.OneByteReader(strings.NewReader("hello"))}
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "hello" || r.N != 5 {
		t.Errorf("read %q, %v, N=%d; want hello, nil, 5", b, err, r.N)
	}
}

func TestWriter(t *testing.T) {
	var buf bytes.Buffer
	w := &Writer{W: &buf}
	io.WriteString(w, "hello")
	io.WriteString(w, ", world")
	if buf.String() != "hello, world" || w.N != 12 {
		t.Errorf("wrote %q, N=%d", buf.String(), w.N)
	}
	// A Writer with no W counts what it discards.
	d := &Writer{}
	if n, err := d.Write(make([]byte, 7)); n != 7 || err != nil || d.N != 7 {
		t.Errorf("discard: %d, %v, N=%d", n, err, d.N)
	}
}
