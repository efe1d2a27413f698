package compress_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/layerslim/layerslim/compress"
)

// fuzzMaxOut caps how much a fuzz input may decompress to.
const fuzzMaxOut = 1 << 20

// FuzzDetectAndRead runs arbitrary bytes through Detect, NewReader and a
// capped read. Nothing may panic or hang, Detect may only fail with
// ErrUnsupported, and None must give back the input unchanged. (Round trips
// are left to TestRoundTrip: an encoder per input would make each run 30
// times slower.)
func FuzzDetectAndRead(f *testing.F) {
	small := mixedData(4<<10, 11)
	for _, seed := range [][]byte{
		nil,
		[]byte("plain text"),
		gzipHello,
		zstdHello,
		zstdHelloFrame(18 << 3), // 256 MiB window: rejected
		concat(skippable(0, "x"), zstdHello),
		concat(gzipHello, gzipHello),
		bzip2Hello,
		xzHello,
		lz4Hello,
		compressed(f, compress.Gzip, small),
		compressed(f, compress.Zstd, small),
		compressed(f, compress.Zstd, nil),
		compressed(f, compress.Zstd, small)[:100],
		compressed(f, compress.Gzip, small)[:100],
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A frame may ask for a window of up to 128 MiB, and the decoder
		// allocates it up front: fine for a layer, but it makes such a run
		// about 1000 times slower than the rest, and the fuzzer then spends
		// its time minimizing them. TestZstdWindowLimit covers those sizes;
		// larger windows are rejected before any allocation and stay in.
		var h zstd.Header
		if h.Decode(data) == nil && h.WindowSize > 8<<20 && h.WindowSize <= 128<<20 {
			t.Skip("window above 8 MiB")
		}
		c, r, err := compress.Detect(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, compress.ErrUnsupported) {
				t.Fatalf("Detect() error %v does not wrap ErrUnsupported", err)
			}
			return
		}
		rc, err := compress.NewReader(c, r)
		if err != nil {
			if c == compress.None {
				t.Fatalf("NewReader(none) = %v", err)
			}
			return
		}
		// Decompressed output is discarded; None's is kept to compare.
		var out bytes.Buffer
		dst := io.Discard
		if c == compress.None {
			dst = &out
		}
		_, err = io.Copy(dst, io.LimitReader(rc, fuzzMaxOut))
		if cerr := rc.Close(); c == compress.Zstd && cerr != nil {
			t.Errorf("zstd Close() = %v", cerr)
		}
		if c == compress.None && (err != nil || !bytes.Equal(out.Bytes(), data)) {
			t.Fatalf("none: read %d of %d bytes, error %v", out.Len(), len(data), err)
		}
	})
}
