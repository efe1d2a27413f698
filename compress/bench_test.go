package compress_test

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"

	"github.com/layerslim/layerslim/compress"
)

// benchData is 32 MiB of deterministic, layer-like, semi-compressible bytes.
var benchData = sync.OnceValue(func() []byte { return mixedData(32<<20, 42) })

// countingWriter counts and discards what is written to it.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkEncode reports throughput in uncompressed bytes and the ratio
// compressed/uncompressed.
func BenchmarkEncode(b *testing.B) {
	data := benchData()
	procs := runtime.GOMAXPROCS(0)
	cases := []struct {
		codec       compress.Codec
		level       int
		concurrency int
	}{
		{compress.Zstd, 3, 1},
		{compress.Zstd, 3, procs},
		{compress.Gzip, 6, 1},
	}
	for _, bc := range cases {
		b.Run(fmt.Sprintf("%s/level=%d/concurrency=%d", bc.codec, bc.level, bc.concurrency), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			var out countingWriter
			for b.Loop() {
				out.n = 0
				w, err := compress.NewWriter(&out, bc.codec, compress.WithLevel(bc.level), compress.WithConcurrency(bc.concurrency))
				if err != nil {
					b.Fatal(err)
				}
				if err := writeChunks(w, data, 32<<10); err != nil { // as io.Copy would
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out.n)/float64(len(data)), "ratio")
		})
	}
}

// BenchmarkDecode reports throughput in decompressed bytes, read the way
// archive/tar reads: through Read, into a caller's buffer.
func BenchmarkDecode(b *testing.B) {
	data := benchData()
	for _, c := range []compress.Codec{compress.Gzip, compress.Zstd} {
		b.Run(string(c), func(b *testing.B) {
			blob := compressed(b, c, data)
			buf := make([]byte, 32<<10)
			discard := struct{ io.Writer }{io.Discard} // hide ReadFrom: use buf
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				rc, err := compress.NewReader(c, bytes.NewReader(blob))
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(discard, rc, buf)
				if err != nil {
					b.Fatal(err)
				}
				if n != int64(len(data)) {
					b.Fatalf("decoded %d bytes, want %d", n, len(data))
				}
				rc.Close()
			}
		})
	}
}
