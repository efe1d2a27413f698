package rewrite

import (
	"bytes"
	"errors"
	"testing"
)

type failAfter struct {
	n   int
	err error
}

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, f.err
	}
	return len(p), nil
}

// The second encoder's writes happen on a goroutine: its bytes arrive in
// order and whole, and its failure comes back from Close, not lost.
func TestAsyncWriter(t *testing.T) {
	var got bytes.Buffer
	a := newAsyncWriter(&got)
	var want bytes.Buffer
	for i := range 5000 {
		p := bytes.Repeat([]byte{byte(i)}, i%1500)
		want.Write(p)
		if _, err := a.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("%d bytes arrived, %d written", got.Len(), want.Len())
	}
	boom := errors.New("disk full")
	b := newAsyncWriter(&failAfter{n: 3 << 20, err: boom})
	for range 10 {
		b.Write(make([]byte, 1<<20))
	}
	if err := b.Close(); !errors.Is(err, boom) {
		t.Errorf("Close = %v, want the writer's error", err)
	}
	if err := b.Close(); !errors.Is(err, boom) {
		t.Errorf("second Close = %v", err)
	}
}
