package compress

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/readahead"
)

// maxZstdWindow is the largest zstd window NewReader accepts: 128 MiB, the
// reference decoder's default limit (zstd --long=27). Normal content uses at
// most 8 MiB. A frame that asks for more fails with an error instead of
// making the decoder allocate it.
const maxZstdWindow = 128 << 20

// NewReader returns a reader that decompresses r, which must be compressed
// with c. For None it returns r unchanged, wrapped in io.NopCloser.
//
// gzip is read as a multistream (concatenated members form one stream),
// inflated by a goroutine of its own up to 4 MiB ahead of the reader.
// zstd is decoded by two goroutines in a pipeline (klauspost's stream
// decoder with concurrency 2: one decodes blocks while the other executes
// their sequences), and a frame may ask for a
// window of at most 128 MiB (zstd --long=27; normal frames use 8 MiB or
// less), so a hostile frame cannot make the decoder allocate more. The
// total output is not limited. An empty gzip or zstd stream is an error
// wrapping io.ErrUnexpectedEOF, and so is one cut short inside a member or
// frame. (A stream cut exactly between two members or frames cannot be
// told from a complete one.)
//
// Read errors name the codec ("decompressing zstd: …"). Close releases the
// decoder's resources but does not close r.
func NewReader(c Codec, r io.Reader) (io.ReadCloser, error) {
	switch c {
	case None:
		return io.NopCloser(r), nil
	case Gzip:
		return newGzipReader(r)
	case Zstd:
		return newZstdReader(r)
	}
	return nil, unsupportedCodec(c)
}

func newGzipReader(r io.Reader) (io.ReadCloser, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("reading gzip header: %w", noEOF(err))
	}
	zr.Multistream(true)
	// Inflating is serial, so the reader's goroutine would do it between
	// its own work (a rewrite's tar walk, filters and hashing; a squash
	// walks its layers one after the other): a goroutine of its own
	// inflates up to 4 MiB ahead instead. bench/rewrite.sh's rewrite (2
	// cores, runs alternated on a noisy machine): 11.5 and 11.7 s of wall
	// time with 1 MiB ahead against 12.7 and 12.2 s without, 10.5 to
	// 10.9 s with 4 MiB against 11.2 to 11.3 s with 1 MiB, for the same
	// CPU. (klauspost/pgzip's reader does the same but misses a stream
	// cut inside its 8-byte trailer: TestTruncated.)
	ra, err := readahead.NewReadCloserSize(zr, gzipReadAhead, gzipReadAheadBlock)
	if err != nil {
		zr.Close()
		return nil, err
	}
	return &decoder{codec: Gzip, r: ra, close: ra.Close}, nil
}

// gzipReadAhead blocks of gzipReadAheadBlock bytes: how far a gzip
// reader's goroutine inflates ahead of its reader (4 MiB).
const (
	gzipReadAhead      = 16
	gzipReadAheadBlock = 256 << 10
)

func newZstdReader(r io.Reader) (io.ReadCloser, error) {
	// The zstd decoder reports an empty input as a clean end of stream.
	// A layer is never legitimately empty zstd, so look for one byte first.
	br := bufio.NewReader(r)
	if _, err := br.Peek(1); err != nil {
		return nil, fmt.Errorf("reading zstd frame header: %w", noEOF(err))
	}
	zr, err := zstd.NewReader(br,
		// Two goroutines: on the 815 MB layer of bench/recompress.sh
		// --input big (362 MB zstd), decode and sha256 took the same CPU
		// (1.46-1.57 s) at concurrency 1, 2 and 4, and 5.1-7.8 s of wall
		// time at 2 against 13.9-16.4 s at 1 on a loaded 2-core machine
		// (load 25); 4 was no faster than 2. The reading goroutine of a
		// layer is the part that one layer cannot spread over cores.
		zstd.WithDecoderConcurrency(2),
		zstd.WithDecoderMaxWindow(maxZstdWindow),
		zstd.WithDecoderMaxMemory(maxZstdWindow),
		// Never switch to whole-buffer decoding for small in-memory inputs:
		// there the memory limit caps the total output, not the window.
		zstd.WithDecodeBuffersBelow(0),
	)
	if err != nil {
		return nil, fmt.Errorf("creating zstd decoder: %w", err)
	}
	return &decoder{codec: Zstd, r: zr, close: func() error { zr.Close(); return nil }}, nil
}

// decoder adds the codec's name to read errors and owns the decompressor.
type decoder struct {
	codec Codec
	r     io.Reader
	close func() error
}

func (d *decoder) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return n, fmt.Errorf("decompressing %s: a frame asks for a window larger than the %d MiB allowed (zstd --long=27): %w", d.codec, maxZstdWindow>>20, err)
	}
	if err != nil && err != io.EOF {
		err = fmt.Errorf("decompressing %s: %w", d.codec, err)
	}
	return n, err
}

func (d *decoder) Close() error {
	return d.close()
}

// noEOF turns io.EOF, which here means the stream ended before a header,
// into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
