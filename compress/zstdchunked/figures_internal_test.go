package zstdchunked

import (
	"io"
	"os"
	"testing"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/internal/iocount"
)

// TestChunkedFigures prints the blob bytes of a tar (LAYERSLIM_CHUNKED_INPUT)
// in zstd and in zstd:chunked with the default params and others, as
// docs/compatibility.md quotes them. Skipped without the variable.
func TestChunkedFigures(t *testing.T) {
	in := os.Getenv("LAYERSLIM_CHUNKED_INPUT")
	if in == "" {
		t.Skip("LAYERSLIM_CHUNKED_INPUT not set")
	}
	size := func(mk func(io.Writer) (io.WriteCloser, error)) int64 {
		f, err := os.Open(in)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var c iocount.Writer // counts and discards
		w, err := mk(&c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, f); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return c.N
	}
	plain := size(func(w io.Writer) (io.WriteCloser, error) { return compress.NewWriter(w, compress.Zstd) })
	t.Logf("zstd: %d bytes", plain)
	for _, v := range []struct {
		name string
		p    params
	}{
		{"default", defaultParams},
		{"no splits, no holes (a frame per file only)", params{splitMask: 1<<31 - 1, minChunk: 1 << 40, maxChunk: 1 << 40, holeMin: 1 << 40}},
		{"containers/storage's chunking (64 KiB, holes from 1 KiB)", params{splitMask: 1<<16 - 1, maxChunk: 1 << 40, holeMin: 1 << 10}},
	} {
		n := size(func(w io.Writer) (io.WriteCloser, error) { return newWriter(w, 3, v.p) })
		t.Logf("zstd:chunked, %s: %d bytes, %.4fx", v.name, n, float64(n)/float64(plain))
	}
}
