package compress

import (
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// WriterOption configures NewWriter.
type WriterOption func(*writerOptions) error

type writerOptions struct {
	level       int // 0: DefaultLevel
	concurrency int // 0: GOMAXPROCS
}

// WithLevel sets the compression level. 0 means the codec's default (see
// DefaultLevel). zstd accepts 1 to 22, gzip 1 to 9 and None only 0;
// NewWriter rejects other values (see ValidLevel).
//
// klauspost's zstd has four encoders, so zstd levels map onto them as
// zstd.EncoderLevelFromZstd does: 1–2 fastest, 3–5 default, 6–9 better,
// 10–22 best.
func WithLevel(n int) WriterOption {
	return func(o *writerOptions) error {
		if n < 0 {
			return fmt.Errorf("compression level %d: must not be negative", n)
		}
		o.level = n
		return nil
	}
}

// WithConcurrency sets how many goroutines a zstd encoder may use; 0 means
// GOMAXPROCS. With 1 the stream is compressed on the writing goroutine;
// with more, one block is compressed in the background while the next is
// filled. The output is the same either way. gzip and None ignore it.
func WithConcurrency(n int) WriterOption {
	return func(o *writerOptions) error {
		if n < 0 {
			return fmt.Errorf("concurrency %d: must not be negative", n)
		}
		o.concurrency = n
		return nil
	}
}

// ValidLevel reports whether NewWriter accepts level n for c: 0 (the
// default) or 1 to 22 for zstd, 0 or 1 to 9 for gzip, and only 0 for None,
// which has no levels. Use it to check a level from a flag before any work
// starts.
func ValidLevel(c Codec, n int) error {
	var hi int
	switch c {
	case None:
		if n != 0 {
			return fmt.Errorf("level %d: uncompressed output has no level", n)
		}
		return nil
	case Gzip:
		hi = gzip.BestCompression
	case Zstd:
		hi = 22
	default:
		return unsupportedCodec(c)
	}
	if n < 0 || n > hi {
		return fmt.Errorf("%s level %d: want 1 to %d, or 0 for the default", c, n, hi)
	}
	return nil
}

// NewWriter returns a writer that compresses what is written to it with c
// and writes the result to w. Close writes the end of the frame (zstd) or
// the trailer (gzip) but does not close w. For None the writer passes bytes
// through and Close does nothing.
//
// The output depends only on the bytes written, c and the level: not on the
// concurrency, nor on how the input was split into Write calls. zstd frames
// carry a checksum and an empty input still gives a valid frame. gzip
// headers have no file name and a zero modification time.
func NewWriter(w io.Writer, c Codec, opts ...WriterOption) (io.WriteCloser, error) {
	if w == nil {
		return nil, errors.New("creating compressed writer: nil io.Writer")
	}
	var o writerOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if err := ValidLevel(c, o.level); err != nil {
		return nil, err
	}
	if o.level == 0 {
		o.level = DefaultLevel(c)
	}
	switch c {
	case None:
		return nopWriteCloser{w}, nil
	case Gzip:
		return newGzipWriter(w, o)
	case Zstd:
		return newZstdWriter(w, o)
	}
	return nil, unsupportedCodec(c)
}

func newGzipWriter(w io.Writer, o writerOptions) (io.WriteCloser, error) {
	zw, err := gzip.NewWriterLevel(w, o.level)
	if err != nil {
		return nil, err
	}
	// The zero Header has no name, comment or extra field and a zero
	// ModTime, which is written as "no time": nothing that varies by run.
	zw.Header = gzip.Header{OS: 255} // 255: unknown OS, as gzip.NewWriter sets
	return zw, nil
}

func newZstdWriter(w io.Writer, o writerOptions) (io.WriteCloser, error) {
	// Not zstd.WithConcurrentBlocks: it splits the input into jobs only
	// when concurrency > 1, so the output would change with concurrency.
	enc, err := zstd.NewWriter(w,
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(o.level)),
		zstd.WithEncoderConcurrency(o.concurrency),
		zstd.WithEncoderCRC(true),
		zstd.WithZeroFrames(true),
	)
	if err != nil {
		return nil, fmt.Errorf("creating zstd encoder: %w", err)
	}
	return zstdWriter{enc}, nil
}

// zstdWriter hides zstd.Encoder's ReadFrom. ReadFrom ends the current block
// where it takes over from earlier Writes, so io.Copy after a Write would
// give different bytes than the same input written in one go.
type zstdWriter struct{ enc *zstd.Encoder }

func (z zstdWriter) Write(p []byte) (int, error) { return z.enc.Write(p) }
func (z zstdWriter) Close() error                { return z.enc.Close() }

// nopWriteCloser passes writes through to w. Embedding only io.Writer also
// keeps any ReadFrom of w from being promoted.
type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
