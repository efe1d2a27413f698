package zstdchunked

import (
	"io"
	"os"
	"testing"
	"time"

	"github.com/layerslim/layerslim/compress"
)

type countW struct{ n int64 }

func (c *countW) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// LAYERSLIM_CHUNKED_INPUT: a tar; prints sizes per params.
func TestChunkedFigures(t *testing.T) {
	in := os.Getenv("LAYERSLIM_CHUNKED_INPUT")
	if in == "" {
		t.Skip("LAYERSLIM_CHUNKED_INPUT not set")
	}
	run := func(name string, mk func(io.Writer) (io.WriteCloser, error)) int64 {
		f, err := os.Open(in)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var c countW
		w, err := mk(&c)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := io.Copy(w, f); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%-10s %d bytes %v", name, c.n, time.Since(start))
		return c.n
	}
	plain := run("plain", func(w io.Writer) (io.WriteCloser, error) {
		return compress.NewWriter(w, compress.Zstd, compress.WithConcurrency(1))
	})
	for _, v := range []struct {
		name string
		p    params
	}{
		{"default", defaultParams},
		{"nosplit", params{splitMask: 1<<31 - 1, minChunk: 1 << 40, maxChunk: 1 << 40, holeMin: 1 << 40}},
		{"upstream", params{splitMask: 1<<16 - 1, minChunk: 0, maxChunk: 1 << 40, holeMin: 1 << 10}},
	} {
		var z *Writer
		n := run(v.name, func(w io.Writer) (io.WriteCloser, error) {
			var err error
			z, err = newWriter(w, 3, v.p)
			return z, err
		})
		t.Logf("%-10s %.4fx", v.name, float64(n)/float64(plain))
	}
}
