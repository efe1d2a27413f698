package compress_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/layerslim/layerslim/compress"
)

// Real streams of "hello\n", made with the tools named.
var (
	// printf 'hello\n' | gzip -n -9
	gzipHello = []byte{
		0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0xe7,
		0x02, 0x00, 0x20, 0x30, 0x3a, 0x36, 0x06, 0x00, 0x00, 0x00,
	}
	// printf 'hello\n' | bzip2 -9
	bzip2Hello = []byte{
		0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, 0xc1, 0xc0, 0x80, 0xe2, 0x00, 0x00,
		0x01, 0x41, 0x00, 0x00, 0x10, 0x02, 0x44, 0xa0, 0x00, 0x30, 0xcd, 0x00, 0xc3, 0x46, 0x29, 0x97,
		0x17, 0x72, 0x45, 0x38, 0x50, 0x90, 0xc1, 0xc0, 0x80, 0xe2,
	}
	// printf '' | bzip2
	bzip2Empty = []byte{0x42, 0x5a, 0x68, 0x39, 0x17, 0x72, 0x45, 0x38, 0x50, 0x90, 0x00, 0x00, 0x00, 0x00}
	// printf 'hello\n' | xz -9
	xzHello = []byte{
		0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x04, 0xe6, 0xd6, 0xb4, 0x46, 0x02, 0x00, 0x21, 0x01,
		0x1c, 0x00, 0x00, 0x00, 0x10, 0xcf, 0x58, 0xcc, 0x01, 0x00, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
		0x0a, 0x00, 0x00, 0x00, 0xa5, 0x60, 0x97, 0xf1, 0x94, 0xf6, 0xfd, 0xe0, 0x00, 0x01, 0x1e, 0x06,
		0xc1, 0x2f, 0xa4, 0x1d, 0x1f, 0xb6, 0xf3, 0x7d, 0x01, 0x00, 0x00, 0x00, 0x00, 0x04, 0x59, 0x5a,
	}
	// printf 'hello\n' | lz4 -9 -c
	lz4Hello = []byte{
		0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7, 0x06, 0x00, 0x00, 0x80, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
		0x0a, 0x00, 0x00, 0x00, 0x00, 0xf9, 0x5b, 0x6b, 0x94,
	}
	// printf 'hello\n' | lz4 -l -c
	lz4LegacyHello = []byte{0x02, 0x21, 0x4c, 0x18, 0x07, 0x00, 0x00, 0x00, 0x60, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x0a}
	// printf 'hello\n' | zstd -c
	zstdHello = zstdHelloFrame(0x58)
)

// skippable returns a zstd skippable frame with the given magic nibble
// (0 to f) and payload.
func skippable(nibble byte, payload string) []byte {
	n := len(payload)
	return append([]byte{0x50 | nibble, 0x2a, 0x4d, 0x18, byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)}, payload...)
}

// tarWith returns a tar archive holding one file with the given name.
func tarWith(t *testing.T, name string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := "layer file\n"
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(tw, body); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want compress.Codec
		// unsupported, when set, is the format an ErrUnsupported error names.
		unsupported string
	}{
		{name: "gzip from gzip(1)", in: gzipHello, want: compress.Gzip},
		{name: "gzip from NewWriter", in: compressed(t, compress.Gzip, []byte("hello\n")), want: compress.Gzip},
		{name: "gzip magic only", in: []byte{0x1f, 0x8b}, want: compress.Gzip},
		{name: "zstd from zstd(1)", in: zstdHello, want: compress.Zstd},
		{name: "zstd from NewWriter", in: compressed(t, compress.Zstd, []byte("hello\n")), want: compress.Zstd},
		{name: "zstd empty frame from NewWriter", in: compressed(t, compress.Zstd, nil), want: compress.Zstd},
		{name: "zstd magic only", in: []byte{0x28, 0xb5, 0x2f, 0xfd}, want: compress.Zstd},
		{name: "zstd after skippable frame 0x184D2A50", in: concat(skippable(0x0, "meta"), zstdHello), want: compress.Zstd},
		{name: "zstd after skippable frame 0x184D2A5F", in: concat(skippable(0xf, ""), zstdHello), want: compress.Zstd},
		{name: "tar", in: tarWith(t, "etc/os-release"), want: compress.None},
		{name: "tar whose first file is named like bzip2", in: tarWith(t, "BZh91AY-notes.txt"), want: compress.None},
		{name: "text", in: []byte("hello, world\n"), want: compress.None},
		{name: "empty", in: nil, want: compress.None},
		{name: "one byte of gzip magic", in: []byte{0x1f}, want: compress.None},
		{name: "three bytes of zstd magic", in: []byte{0x28, 0xb5, 0x2f}, want: compress.None},
		{name: "not quite zstd magic", in: []byte{0x28, 0xb5, 0x2f, 0xfe, 0, 0}, want: compress.None},
		{name: "not quite a skippable frame", in: []byte{0x60, 0x2a, 0x4d, 0x18, 0, 0, 0, 0}, want: compress.None},
		{name: "five bytes of xz magic", in: xzHello[:5], want: compress.None},
		{name: "BZh without the block magic", in: []byte("BZh9 is not bzip2"), want: compress.None},
		{name: "bzip2", in: bzip2Hello, unsupported: "bzip2"},
		{name: "bzip2 empty stream", in: bzip2Empty, unsupported: "bzip2"},
		{name: "xz", in: xzHello, unsupported: "xz"},
		{name: "xz magic only", in: xzHello[:6], unsupported: "xz"},
		{name: "lz4", in: lz4Hello, unsupported: "lz4"},
		{name: "lz4 magic only", in: lz4Hello[:4], unsupported: "lz4"},
		{name: "lz4 legacy", in: lz4LegacyHello, unsupported: "lz4"},
	}
	// Readers that hand the bytes over in awkward pieces must not change
	// the result: Detect has to keep reading until it has enough bytes.
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"one byte at a time", iotest.OneByteReader},
		{"half reads", iotest.HalfReader},
		{"EOF with data", iotest.DataErrReader},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				c, r, err := compress.Detect(rd.wrap(bytes.NewReader(tt.in)))
				if tt.unsupported != "" {
					if !errors.Is(err, compress.ErrUnsupported) {
						t.Fatalf("Detect() error = %v, want one wrapping ErrUnsupported", err)
					}
					if !strings.Contains(err.Error(), tt.unsupported) {
						t.Errorf("Detect() error = %q, want it to name %q", err, tt.unsupported)
					}
					return
				}
				if err != nil {
					t.Fatalf("Detect() error = %v", err)
				}
				if c != tt.want {
					t.Errorf("Detect() codec = %q, want %q", c, tt.want)
				}
				got, err := io.ReadAll(r)
				if err != nil {
					t.Fatalf("reading Detect's reader: %v", err)
				}
				if !bytes.Equal(got, tt.in) {
					t.Errorf("Detect's reader yielded %d bytes %x, want all %d input bytes %x", len(got), got, len(tt.in), tt.in)
				}
			})
		}
		// Sniff, given the first SniffLen bytes, says what Detect says.
		t.Run(tt.name+"/Sniff", func(t *testing.T) {
			c, err := compress.Sniff(tt.in[:min(len(tt.in), compress.SniffLen)])
			switch {
			case tt.unsupported != "":
				if !errors.Is(err, compress.ErrUnsupported) || !strings.Contains(err.Error(), tt.unsupported) {
					t.Errorf("Sniff() error = %v, want one wrapping ErrUnsupported naming %q", err, tt.unsupported)
				}
			case err != nil || c != tt.want:
				t.Errorf("Sniff() = %q, %v; want %q", c, err, tt.want)
			}
		})
	}
}

func TestDetectReadError(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		r    io.Reader
	}{
		{"error at once", iotest.ErrReader(boom)},
		{"error after a few bytes", io.MultiReader(bytes.NewReader([]byte{0x1f}), iotest.ErrReader(boom))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r, err := compress.Detect(tt.r)
			if !errors.Is(err, boom) {
				t.Fatalf("Detect() error = %v, want it to wrap %v", err, boom)
			}
			if r != nil {
				t.Errorf("Detect() reader = %v, want nil on error", r)
			}
		})
	}
}

// TestDetectLargeStream checks that Detect's reader yields the whole of a
// stream much longer than its buffer, then reads it through NewReader.
func TestDetectLargeStream(t *testing.T) {
	data := mixedData(1<<20, 7)
	for _, c := range []compress.Codec{compress.None, compress.Gzip, compress.Zstd} {
		t.Run(string(c), func(t *testing.T) {
			blob := compressed(t, c, data)
			got, r, err := compress.Detect(bytes.NewReader(blob))
			if err != nil {
				t.Fatal(err)
			}
			if got != c {
				t.Fatalf("Detect() = %q, want %q", got, c)
			}
			rc, err := compress.NewReader(got, r)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			out, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, data) {
				t.Errorf("decompressed %d bytes, want the %d written", len(out), len(data))
			}
		})
	}
}
