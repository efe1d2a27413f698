package compress_test

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/layerslim/layerslim/compress"
)

func TestRoundTrip(t *testing.T) {
	inputs := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one byte", []byte{0}},
		{"text", []byte(strings.Repeat("usr/lib/libc.so.6\n", 1000))},
		{"mixed 3MiB", mixedData(3<<20, 1)}, // several zstd blocks and deflate windows
	}
	codecs := []struct {
		codec  compress.Codec
		levels []int
	}{
		{compress.None, []int{0}},
		{compress.Gzip, []int{0, 1, 6, 9}},
		{compress.Zstd, []int{0, 1, 3, 7, 19, 22}},
	}
	for _, cc := range codecs {
		for _, level := range cc.levels {
			for _, in := range inputs {
				name := string(cc.codec) + "/level=" + strconv.Itoa(level) + "/" + in.name
				t.Run(name, func(t *testing.T) {
					blob := compressed(t, cc.codec, in.data, compress.WithLevel(level))
					c, r, err := compress.Detect(bytes.NewReader(blob))
					if err != nil {
						t.Fatal(err)
					}
					if c != cc.codec {
						t.Fatalf("Detect() = %q, want %q", c, cc.codec)
					}
					rc, err := compress.NewReader(c, r)
					if err != nil {
						t.Fatal(err)
					}
					got, err := io.ReadAll(rc)
					if err != nil {
						t.Fatalf("reading: %v", err)
					}
					if err := rc.Close(); err != nil {
						t.Errorf("Close() = %v", err)
					}
					if !bytes.Equal(got, in.data) {
						t.Errorf("round trip gave %d bytes, want the %d written", len(got), len(in.data))
					}
					if cc.codec != compress.None && len(in.data) > 1000 && len(blob) >= len(in.data) {
						t.Errorf("compressed %d bytes to %d: no smaller", len(in.data), len(blob))
					}
				})
			}
		}
	}
}

// TestReadInterop reads streams written by the gzip and zstd command line
// tools, and concatenated members and frames.
func TestReadInterop(t *testing.T) {
	tests := []struct {
		name  string
		codec compress.Codec
		in    []byte
		want  string
	}{
		{"gzip(1)", compress.Gzip, gzipHello, "hello\n"},
		{"two gzip members", compress.Gzip, concat(gzipHello, compressed(t, compress.Gzip, []byte("world\n"))), "hello\nworld\n"},
		{"zstd(1)", compress.Zstd, zstdHello, "hello\n"},
		{"two zstd frames", compress.Zstd, concat(zstdHello, compressed(t, compress.Zstd, []byte("world\n"))), "hello\nworld\n"},
		{"zstd after a skippable frame", compress.Zstd, concat(skippable(3, "annotation"), zstdHello), "hello\n"},
		{"none", compress.None, []byte("plain"), "plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decompressed(tt.codec, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestZstdWindowLimit feeds frames that declare ever larger windows. Up to
// 128 MiB (zstd --long=27) they decode; above, the reader must fail rather
// than allocate the window.
func TestZstdWindowLimit(t *testing.T) {
	tests := []struct {
		name             string
		windowDescriptor byte
		wantErr          bool
	}{
		{"2 MiB (zstd default)", 11 << 3, false},
		{"8 MiB", 13 << 3, false},
		{"128 MiB (--long=27)", 17 << 3, false},
		{"144 MiB (128 MiB + 1/8)", 17<<3 | 1, true},
		{"256 MiB (--long=28)", 18 << 3, true},
		{"1 GiB (--long=30)", 20 << 3, true},
		{"2 GiB (--long=31)", 21 << 3, true},
		{"3.75 TiB (largest encodable)", 0xff, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := zstdHelloFrame(tt.windowDescriptor)
			got, err := decompressed(compress.Zstd, frame)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("decoding: %v", err)
				}
				if string(got) != "hello\n" {
					t.Errorf("got %q, want %q", got, "hello\n")
				}
				return
			}
			if err == nil {
				t.Fatalf("decoded %q, want a window size error", got)
			}
			if !errors.Is(err, zstd.ErrWindowSizeExceeded) && !errors.Is(err, zstd.ErrDecoderSizeExceeded) {
				t.Errorf("error = %v, want zstd.ErrWindowSizeExceeded or ErrDecoderSizeExceeded", err)
			}
			if !strings.HasPrefix(err.Error(), "decompressing zstd: ") {
				t.Errorf("error = %q, want it to name the codec", err)
			}
		})
	}
}

// TestZstdWindowLimitEncoder makes the large-window frame with the zstd
// encoder, not by hand: a stream encode with WithWindowSize(256 MiB)
// declares that window in its header.
func TestZstdWindowLimitEncoder(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a 256 MiB encoder window")
	}
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, zstd.WithWindowSize(256<<20), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithLowerEncoderMem(true))
	if err != nil {
		t.Fatal(err)
	}
	// More than one block, so the encoder writes a streaming frame header
	// rather than a single-segment frame sized to the content.
	if _, err := enc.Write(mixedData(300<<10, 3)); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	blob := buf.Bytes()
	// Frame header descriptor 0x04 (checksum only), then the window
	// descriptor: exponent 18, 1<<(10+18) = 256 MiB.
	if len(blob) < 6 || blob[4] != 0x04 || blob[5] != 18<<3 {
		t.Fatalf("frame header % x, want a 256 MiB window descriptor at byte 5", blob[:min(len(blob), 8)])
	}

	// Sanity check: the stock decoder (512 MiB limit) accepts it.
	dec, err := zstd.NewReader(bytes.NewReader(blob), zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, dec)
	dec.Close()
	if err != nil {
		t.Fatalf("stock decoder: %v", err)
	}

	if _, err := decompressed(compress.Zstd, blob); !errors.Is(err, zstd.ErrWindowSizeExceeded) && !errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		t.Errorf("NewReader: error = %v, want a window size error", err)
	}
}

// TestZstdLargeOutput checks that the window limit does not cap the total
// output of a stream: 300 MiB (of zeros, so it is quick) must decode.
func TestZstdLargeOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes 300 MiB")
	}
	const size = 300 << 20
	var blob bytes.Buffer
	w, err := compress.NewWriter(&blob, compress.Zstd, compress.WithLevel(1), compress.WithConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, io.LimitReader(zeros{}, size)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rc, err := compress.NewReader(compress.Zstd, &blob)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if err != nil || n != size {
		t.Errorf("decoded %d bytes, error %v; want %d bytes", n, err, size)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestTruncated cuts valid streams short at every interesting point. Each
// must give an error, never a short read that looks complete.
func TestTruncated(t *testing.T) {
	data := mixedData(600<<10, 4) // several zstd blocks and deflate blocks
	for _, c := range []compress.Codec{compress.Gzip, compress.Zstd} {
		blob := compressed(t, c, data)
		cuts := []struct {
			name string
			n    int
		}{
			{"empty", 0},
			{"magic only", 2},
			{"inside the header", 5},
			{"after the header", 12},
			{"a quarter", len(blob) / 4},
			{"half", len(blob) / 2},
			{"all but 8 bytes", len(blob) - 8},
			{"all but 4 bytes", len(blob) - 4}, // gzip: no ISIZE; zstd: no checksum
			{"all but 1 byte", len(blob) - 1},
		}
		for _, cut := range cuts {
			n := cut.n
			t.Run(string(c)+"/"+cut.name, func(t *testing.T) {
				got, err := decompressed(c, blob[:n])
				if err == nil {
					t.Fatalf("reading %d of %d bytes: got %d bytes and no error", n, len(blob), len(got))
				}
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("reading %d of %d bytes: error = %v, want io.ErrUnexpectedEOF", n, len(blob), err)
				}
			})
		}
	}
}

// TestCorrupt flips one byte in the middle of a stream: the checksums
// (gzip CRC-32, zstd xxhash64) or the decoders must notice.
func TestCorrupt(t *testing.T) {
	data := mixedData(256<<10, 5)
	for _, c := range []compress.Codec{compress.Gzip, compress.Zstd} {
		t.Run(string(c), func(t *testing.T) {
			blob := bytes.Clone(compressed(t, c, data))
			blob[len(blob)/2] ^= 0x55
			if got, err := decompressed(c, blob); err == nil {
				t.Fatalf("corrupt stream decoded to %d bytes without error", len(got))
			}
		})
	}
}

// TestTrailingGarbage checks that bytes after the last member or frame are
// an error, not silently ignored.
func TestTrailingGarbage(t *testing.T) {
	for _, c := range []compress.Codec{compress.Gzip, compress.Zstd} {
		t.Run(string(c), func(t *testing.T) {
			blob := concat(compressed(t, c, []byte("hello\n")), []byte("garbage!"))
			if got, err := decompressed(c, blob); err == nil {
				t.Fatalf("decoded %q without error", got)
			}
		})
	}
}

func TestNewReaderWrongCodec(t *testing.T) {
	tests := []struct {
		name string
		c    compress.Codec
		in   []byte
	}{
		{"gzip reader on zstd", compress.Gzip, zstdHello},
		{"zstd reader on gzip", compress.Zstd, gzipHello},
		{"zstd reader on text", compress.Zstd, []byte("plain text, not zstd")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := decompressed(tt.c, tt.in); err == nil {
				t.Fatalf("decoded %q without error", got)
			}
		})
	}
}

func TestNewReaderUnknownCodec(t *testing.T) {
	for _, c := range []compress.Codec{"", "lz4", "GZIP"} {
		_, err := compress.NewReader(c, bytes.NewReader(nil))
		if !errors.Is(err, compress.ErrUnsupported) {
			t.Errorf("NewReader(%q) error = %v, want ErrUnsupported", c, err)
		}
	}
}

// TestReaderCloseEarly closes readers before the end of the stream, as a
// caller does when it stops after the tar end marker: Close must work and a
// later Read must not succeed.
func TestReaderCloseEarly(t *testing.T) {
	data := mixedData(1<<20, 6)
	for _, c := range []compress.Codec{compress.Gzip, compress.Zstd} {
		t.Run(string(c), func(t *testing.T) {
			rc, err := compress.NewReader(c, bytes.NewReader(compressed(t, c, data)))
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1000)
			if _, err := io.ReadFull(rc, buf); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, data[:1000]) {
				t.Error("first 1000 bytes differ")
			}
			if err := rc.Close(); err != nil {
				t.Errorf("Close() = %v", err)
			}
			if c == compress.Zstd {
				if _, err := rc.Read(buf); err == nil {
					t.Error("Read after Close succeeded")
				}
			}
		})
	}
}
