package compress_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/layerslim/layerslim/compress"
)

// mixedData returns n deterministic bytes that look like a layer: mostly
// text (words, paths, numbers), with runs of random bytes and of zeros.
func mixedData(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	words := []string{
		"usr/", "lib/", "bin/", "share/", "etc/", "x86_64-linux-gnu/", "python3.12/",
		"site-packages/", "__init__.py", ".so", ".so.6", "libc", "libssl", "README",
		"import", "def ", "return", "class ", "self", "None", "true", "false",
		"the", "of", "and", "to", "in", "is", "for", "with", "package", "version",
		"Copyright", "License", "GNU", "Apache-2.0", "{", "}", "(", ")", ":", ";",
	}
	seps := []byte(" \n\t/._-=,")
	var b bytes.Buffer
	b.Grow(n + 8192)
	var u [8]byte
	for b.Len() < n {
		switch k := rng.IntN(256); {
		case k == 0: // incompressible run, as in already compressed files
			for range 8 + rng.IntN(128) {
				binary.LittleEndian.PutUint64(u[:], rng.Uint64())
				b.Write(u[:])
			}
		case k == 1: // zero padding, as in tar headers
			b.Write(make([]byte, 1+rng.IntN(1024)))
		case k < 32: // a number
			b.WriteString(strconv.Itoa(rng.IntN(100000)))
			b.WriteByte(seps[rng.IntN(len(seps))])
		default:
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(seps[rng.IntN(len(seps))])
		}
	}
	return b.Bytes()[:n]
}

// compressed compresses data with c and the options, failing the test on error.
func compressed(tb testing.TB, c compress.Codec, data []byte, opts ...compress.WriterOption) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, err := compress.NewWriter(&buf, c, opts...)
	if err != nil {
		tb.Fatalf("NewWriter(%s): %v", c, err)
	}
	if _, err := w.Write(data); err != nil {
		tb.Fatalf("Write(%s): %v", c, err)
	}
	if err := w.Close(); err != nil {
		tb.Fatalf("Close(%s): %v", c, err)
	}
	return buf.Bytes()
}

// decompressed reads all of blob through NewReader(c) and closes the reader.
func decompressed(c compress.Codec, blob []byte) ([]byte, error) {
	rc, err := compress.NewReader(c, bytes.NewReader(blob))
	if err != nil {
		return nil, err
	}
	got, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return got, err
}

// hello frames: `printf 'hello\n' | zstd --long=N -c` (zstd v1.5.4) differ
// only in the window descriptor byte at offset 5.
func zstdHelloFrame(windowDescriptor byte) []byte {
	return []byte{
		0x28, 0xb5, 0x2f, 0xfd, // magic
		0x04,             // frame header descriptor: checksum, no content size
		windowDescriptor, // exponent<<3 | mantissa; window = 1<<(10+exponent)
		0x31, 0x00, 0x00, // last raw block, 6 bytes
		'h', 'e', 'l', 'l', 'o', '\n',
		0x53, 0x88, 0xbd, 0x91, // xxhash64 checksum, low 4 bytes
	}
}
