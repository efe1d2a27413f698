package compress_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/layerslim/layerslim/compress"
)

// TestFrameSizeFigures prints the figures behind ZstdFrameSize and
// GzipBlockSize: the compressed size of one layer at several frame sizes,
// against one zstd stream and one plain gzip stream. It runs only when
// LAYERSLIM_FRAME_INPUT names a layer blob (any codec), e.g. the largest
// layer of bench/recompress.sh's image:
//
//	LAYERSLIM_FRAME_INPUT=bench/out/fat/blobs/sha256/<digest> \
//	  go test ./compress -run TestFrameSizeFigures -v -timeout 30m
func TestFrameSizeFigures(t *testing.T) {
	path := os.Getenv("LAYERSLIM_FRAME_INPUT")
	if path == "" {
		t.Skip("LAYERSLIM_FRAME_INPUT not set")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, br, err := compress.Detect(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	r, err := compress.NewReader(c, br)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	type row struct {
		name string
		n    countingWriter
		w    io.WriteCloser
	}
	var rows []*row
	add := func(name string, mk func(io.Writer) (io.WriteCloser, error)) {
		rw := &row{name: name}
		w, err := mk(&rw.n)
		if err != nil {
			t.Fatal(err)
		}
		rw.w = w
		rows = append(rows, rw)
	}
	add("zstd-3 one stream", func(w io.Writer) (io.WriteCloser, error) {
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(3)), zstd.WithEncoderCRC(true))
	})
	for _, mib := range []int{8, 16, 32, 64} {
		add(fmt.Sprintf("zstd-3 frames of %d MiB", mib), func(w io.Writer) (io.WriteCloser, error) {
			return compress.NewWriter(w, compress.Zstd, compress.WithLevel(3), compress.WithFrameSize(mib<<20))
		})
	}
	// LAYERSLIM_FRAME_ZSTD_ONLY set: no gzip rows (they take most of the
	// CPU).
	if os.Getenv("LAYERSLIM_FRAME_ZSTD_ONLY") == "" {
		add("gzip-6 one stream", func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriterLevel(w, 6) })
	}
	for _, kib := range []int{256, 1024, 4096} {
		if os.Getenv("LAYERSLIM_FRAME_ZSTD_ONLY") != "" {
			break
		}
		add(fmt.Sprintf("gzip-6 blocks of %d KiB", kib), func(w io.Writer) (io.WriteCloser, error) {
			return compress.NewWriter(w, compress.Gzip, compress.WithLevel(6), compress.WithFrameSize(kib<<10))
		})
	}
	ws := make([]io.Writer, len(rows))
	for i, rw := range rows {
		ws[i] = rw.w
	}
	n, err := io.Copy(io.MultiWriter(ws...), r)
	if err != nil {
		t.Fatal(err)
	}
	for _, rw := range rows {
		if err := rw.w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%s: %d bytes uncompressed", path, n)
	var ref int64
	for _, rw := range rows {
		if rw.name == "zstd-3 one stream" || rw.name == "gzip-6 one stream" {
			ref = rw.n.n
		}
		t.Logf("%-26s %12d bytes  %+.3f%%", rw.name, rw.n.n, 100*(float64(rw.n.n)/float64(ref)-1))
	}
}
