package compress

import (
	"cmp"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
)

// WriterOption configures NewWriter.
type WriterOption func(*writerOptions) error

type writerOptions struct {
	level       int // 0: DefaultLevel
	concurrency int // 0: GOMAXPROCS
	pool        *Pool
	frameSize   int // 0: ZstdFrameSize or GzipBlockSize; tests and measurements only
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

// WithConcurrency sets how many frames (zstd) or blocks (gzip) of this
// writer may be encoded at once, by a pool of its own; 0 means GOMAXPROCS.
// The output is the same whatever n. None ignores it, and so does a writer
// given WithPool.
func WithConcurrency(n int) WriterOption {
	return func(o *writerOptions) error {
		if n < 0 {
			return fmt.Errorf("concurrency %d: must not be negative", n)
		}
		o.concurrency = n
		return nil
	}
}

// WithPool has the writer's frames encoded by p, which may be shared with
// other writers so that all of them together use p.Size() encoders. The
// output does not depend on the pool.
func WithPool(p *Pool) WriterOption {
	return func(o *writerOptions) error {
		if p == nil {
			return errors.New("nil encoder pool")
		}
		o.pool = p
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
// and writes the result to w. Close writes the last frame (zstd) or the
// last block and the trailer (gzip) but does not close w; it must be
// called, also after an error, to end the writer's goroutine. For None the
// writer passes bytes through and Close does nothing.
//
// zstd output is a series of independent frames of ZstdFrameSize
// uncompressed bytes (the last one shorter), each with a checksum and, but
// for a last frame of at most one 128 KiB block, no content size in its
// header; an empty input still gives one valid frame. gzip output
// is one member whose deflate stream is cut into blocks of GzipBlockSize
// compressed independently, each with the 32 KiB before it as dictionary;
// its header has no file name and a zero modification time. Frames and
// blocks are encoded in parallel (see WithConcurrency and WithPool) and
// written in order, and their number in flight is bounded (see Pool).
//
// The output depends only on the bytes written, c and the level: not on the
// concurrency or the pool, nor on how the input was split into Write calls.
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
	if c == None {
		return nopWriteCloser{w}, nil
	}
	p := o.pool
	if p == nil {
		var err error
		if p, err = NewPool(o.concurrency); err != nil {
			return nil, err
		}
	}
	switch c {
	case Gzip:
		return newFrameWriter(w, p, gzipBlocks{o.level}, cmp.Or(o.frameSize, GzipBlockSize), true), nil
	case Zstd:
		// Make one encoder now, so that a bad option fails here.
		enc, err := p.zstdEncoder(o.level)
		if err != nil {
			return nil, err
		}
		p.putZstd(o.level, enc)
		return newZstdWriter(w, p, o.level, cmp.Or(o.frameSize, ZstdFrameSize)), nil
	}
	return nil, unsupportedCodec(c)
}

var errWriteAfterClose = errors.New("compressed writer: write after close")

// nopWriteCloser passes writes through to w. Embedding only io.Writer also
// keeps any ReadFrom of w from being promoted.
type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
