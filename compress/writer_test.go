package compress_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/layerslim/layerslim/compress"
)

// TestWriterDeterministicAcrossConcurrency is the guarantee the rest of
// layerslim relies on: a rewritten layer has the same digest whatever
// --jobs and GOMAXPROCS were.
func TestWriterDeterministicAcrossConcurrency(t *testing.T) {
	data := mixedData(6<<20, 2)
	tests := []struct {
		codec compress.Codec
		level int
	}{
		{compress.Zstd, 1},
		{compress.Zstd, 3},
		{compress.Zstd, 7},
		{compress.Zstd, 19},
		{compress.Gzip, 6},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/level=%d", tt.codec, tt.level), func(t *testing.T) {
			if testing.Short() && tt.level > 9 {
				t.Skip("slow level")
			}
			want := compressed(t, tt.codec, data, compress.WithLevel(tt.level), compress.WithConcurrency(1))
			for _, n := range []int{4, 0} { // 0: GOMAXPROCS
				got := compressed(t, tt.codec, data, compress.WithLevel(tt.level), compress.WithConcurrency(n))
				if !bytes.Equal(got, want) {
					t.Errorf("concurrency %d: %d bytes (first difference at %d), concurrency 1: %d bytes",
						n, len(got), firstDiff(got, want), len(want))
				}
			}
		})
	}
}

// TestWriterDeterministicAcrossWrites feeds the same input in different
// pieces (as a tar.Writer and io.Copy do): the output must not change.
func TestWriterDeterministicAcrossWrites(t *testing.T) {
	data := mixedData(3<<20, 8)
	feeds := []struct {
		name  string
		write func(w io.Writer) error
	}{
		{"chunks of 1000", func(w io.Writer) error { return writeChunks(w, data, 1000) }},
		{"chunks of 64KiB+7", func(w io.Writer) error { return writeChunks(w, data, 64<<10+7) }},
		{"small write then io.Copy", func(w io.Writer) error {
			if _, err := w.Write(data[:100]); err != nil {
				return err
			}
			_, err := io.Copy(w, iotest.HalfReader(bytes.NewReader(data[100:])))
			return err
		}},
	}
	for _, c := range []compress.Codec{compress.Gzip, compress.Zstd} {
		for _, conc := range []int{1, 4} {
			want := compressed(t, c, data, compress.WithConcurrency(conc))
			for _, f := range feeds {
				t.Run(fmt.Sprintf("%s/concurrency=%d/%s", c, conc, f.name), func(t *testing.T) {
					var buf bytes.Buffer
					w, err := compress.NewWriter(&buf, c, compress.WithConcurrency(conc))
					if err != nil {
						t.Fatal(err)
					}
					if err := f.write(w); err != nil {
						t.Fatal(err)
					}
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
					if got := buf.Bytes(); !bytes.Equal(got, want) {
						t.Errorf("%d bytes (first difference at %d), one Write gives %d", len(got), firstDiff(got, want), len(want))
					}
				})
			}
		}
	}
}

func writeChunks(w io.Writer, data []byte, size int) error {
	for len(data) > 0 {
		n := min(size, len(data))
		if _, err := w.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestGzipHeader(t *testing.T) {
	for _, level := range []int{1, 6, 9} {
		blob := compressed(t, compress.Gzip, []byte("hello\n"), compress.WithLevel(level))
		// ID1 ID2 CM FLG MTIME(4) XFL OS
		if blob[2] != 8 {
			t.Errorf("level %d: CM = %d, want 8 (deflate)", level, blob[2])
		}
		if blob[3] != 0 {
			t.Errorf("level %d: FLG = %#x, want 0 (no name, comment, extra)", level, blob[3])
		}
		if mtime := blob[4:8]; !bytes.Equal(mtime, []byte{0, 0, 0, 0}) {
			t.Errorf("level %d: MTIME = % x, want zero", level, mtime)
		}
		if blob[9] != 255 {
			t.Errorf("level %d: OS = %d, want 255 (unknown)", level, blob[9])
		}
	}
}

func TestZstdEmptyInputIsAFrame(t *testing.T) {
	blob := compressed(t, compress.Zstd, nil)
	if !bytes.HasPrefix(blob, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		t.Fatalf("empty input gave % x, want a zstd frame", blob)
	}
	got, err := decompressed(compress.Zstd, blob)
	if err != nil || len(got) != 0 {
		t.Errorf("decoding the empty frame: %q, %v; want no bytes and no error", got, err)
	}
}

func TestWithLevel(t *testing.T) {
	tests := []struct {
		codec   compress.Codec
		level   int
		wantErr bool
	}{
		{compress.Zstd, 0, false},
		{compress.Zstd, 1, false},
		{compress.Zstd, 22, false},
		{compress.Zstd, 23, true},
		{compress.Zstd, -1, true},
		{compress.Zstd, -5, true}, // zstd's negative "fast" levels are not offered
		{compress.Gzip, 0, false},
		{compress.Gzip, 1, false},
		{compress.Gzip, 9, false},
		{compress.Gzip, 10, true},
		{compress.Gzip, -1, true}, // not gzip.DefaultCompression
		{compress.Gzip, -2, true}, // not gzip.HuffmanOnly
		{compress.None, 0, false},
		{compress.None, 5, true}, // uncompressed output has no level
		{compress.None, -1, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.codec, tt.level), func(t *testing.T) {
			if err := compress.ValidLevel(tt.codec, tt.level); (err != nil) != tt.wantErr {
				t.Errorf("ValidLevel() = %v, want error: %v", err, tt.wantErr)
			}
			w, err := compress.NewWriter(io.Discard, tt.codec, compress.WithLevel(tt.level))
			if tt.wantErr {
				if err == nil {
					w.Close()
					t.Fatal("NewWriter() succeeded, want an error")
				}
				if !strings.Contains(err.Error(), fmt.Sprint(tt.level)) {
					t.Errorf("error %q does not name the level", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewWriter() = %v", err)
			}
			if err := w.Close(); err != nil {
				t.Errorf("Close() = %v", err)
			}
		})
	}
}

// TestLevelsDiffer checks that levels reach the encoder: the extremes of
// each codec must give different output.
func TestLevelsDiffer(t *testing.T) {
	data := mixedData(1<<20, 9)
	for _, tt := range []struct {
		codec    compress.Codec
		low, max int
	}{{compress.Gzip, 1, 9}, {compress.Zstd, 1, 19}} {
		low := compressed(t, tt.codec, data, compress.WithLevel(tt.low))
		high := compressed(t, tt.codec, data, compress.WithLevel(tt.max))
		def := compressed(t, tt.codec, data)
		if len(high) >= len(low) {
			t.Errorf("%s: level %d gave %d bytes, level %d gave %d; want the higher level smaller", tt.codec, tt.max, len(high), tt.low, len(low))
		}
		if explicit := compressed(t, tt.codec, data, compress.WithLevel(compress.DefaultLevel(tt.codec))); !bytes.Equal(def, explicit) {
			t.Errorf("%s: level 0 and level %d differ", tt.codec, compress.DefaultLevel(tt.codec))
		}
	}
}

func TestWithConcurrency(t *testing.T) {
	if _, err := compress.NewWriter(io.Discard, compress.Zstd, compress.WithConcurrency(-1)); err == nil {
		t.Error("WithConcurrency(-1): no error")
	}
	for _, c := range []compress.Codec{compress.None, compress.Gzip, compress.Zstd} {
		w, err := compress.NewWriter(io.Discard, c, compress.WithConcurrency(8))
		if err != nil {
			t.Errorf("%s: WithConcurrency(8): %v", c, err)
			continue
		}
		if err := w.Close(); err != nil {
			t.Errorf("%s: Close() = %v", c, err)
		}
	}
}

func TestValidLevelUnknownCodec(t *testing.T) {
	if err := compress.ValidLevel("lz4", 0); !errors.Is(err, compress.ErrUnsupported) {
		t.Errorf("ValidLevel(lz4, 0) = %v, want ErrUnsupported", err)
	}
}

func TestDefaultLevel(t *testing.T) {
	for c, want := range map[compress.Codec]int{compress.Zstd: 3, compress.Gzip: 6, compress.None: 0, "lz4": 0} {
		if got := compress.DefaultLevel(c); got != want {
			t.Errorf("DefaultLevel(%q) = %d, want %d", c, got, want)
		}
	}
}

func TestNewWriterErrors(t *testing.T) {
	if _, err := compress.NewWriter(io.Discard, "lz4"); !errors.Is(err, compress.ErrUnsupported) {
		t.Errorf("NewWriter(lz4) error = %v, want ErrUnsupported", err)
	}
	if _, err := compress.NewWriter(nil, compress.Zstd); err == nil {
		t.Error("NewWriter(nil) succeeded")
	}
}

// closeRecorder is an io.WriteCloser that remembers whether it was closed.
type closeRecorder struct {
	bytes.Buffer
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestWriterCloseLeavesUnderlyingOpen(t *testing.T) {
	for _, c := range []compress.Codec{compress.None, compress.Gzip, compress.Zstd} {
		t.Run(string(c), func(t *testing.T) {
			var dst closeRecorder
			w, err := compress.NewWriter(&dst, c)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(w, "hello\n"); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if dst.closed {
				t.Error("Close closed the underlying writer")
			}
			got, err := decompressed(c, dst.Bytes())
			if err != nil || string(got) != "hello\n" {
				t.Errorf("decoded %q, %v; want %q", got, err, "hello\n")
			}
		})
	}
}

// TestWriterPassesWriteErrors checks that a failing destination surfaces
// as an error from Write or Close, not as a short stream.
func TestWriterPassesWriteErrors(t *testing.T) {
	boom := errors.New("disk full")
	data := mixedData(1<<20, 10)
	for _, c := range []compress.Codec{compress.None, compress.Gzip, compress.Zstd} {
		for _, conc := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s/concurrency=%d", c, conc), func(t *testing.T) {
				w, err := compress.NewWriter(&failingWriter{after: 1000, err: boom}, c, compress.WithConcurrency(conc))
				if err != nil {
					t.Fatal(err)
				}
				werr := writeChunks(w, data, 32<<10)
				cerr := w.Close()
				if !errors.Is(werr, boom) && !errors.Is(cerr, boom) {
					t.Errorf("Write error %v, Close error %v; want %v from one of them", werr, cerr, boom)
				}
			})
		}
	}
}

// failingWriter accepts after bytes, then fails with err.
type failingWriter struct {
	after int
	err   error
}

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.after {
		n := f.after
		f.after = 0
		return n, f.err
	}
	f.after -= len(p)
	return len(p), nil
}
