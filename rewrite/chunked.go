package rewrite

import (
	"errors"
	"io"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/compress/zstdchunked"
)

// WithZstdChunked writes zstd layers in the zstd:chunked format of
// containers/storage (see package zstdchunked): the same tar bytes, a frame
// per file and the table of contents podman and CRI-O read for partial
// pulls, with its annotations on the layer descriptor. It needs zstd as the
// compression or the added compression. Layers are always encoded anew.
func WithZstdChunked(on bool) Option {
	return func(o *options) error { o.chunked = on; return nil }
}

// checkChunked validates WithZstdChunked against the codecs.
func (o *options) checkChunked() error {
	if o.chunked && o.codec != compress.Zstd && o.addCodec != compress.Zstd {
		return errors.New("zstd:chunked needs zstd as the compression or the added compression")
	}
	return nil
}

// reencode reports whether every layer must be encoded anew, even one
// already in the target codec that no filter changed.
func (o *options) reencode() bool { return o.dual() || o.chunked }

// newEncoder is the encoder of an output spool: zstd:chunked for zstd with
// WithZstdChunked, else compress.NewWriter.
func newEncoder(w io.Writer, o *options) (io.WriteCloser, error) {
	if o.chunked && o.codec == compress.Zstd {
		return zstdchunked.NewWriter(w, o.level)
	}
	return compress.NewWriter(w, o.codec, compress.WithLevel(o.level), compress.WithPool(o.pool))
}

// encoderAnnotations are the layer descriptor annotations an encoder
// produced (zstd:chunked's), or nil.
func encoderAnnotations(enc io.WriteCloser) map[string]string {
	if a, ok := enc.(interface{ Annotations() map[string]string }); ok {
		return a.Annotations()
	}
	return nil
}

// Annotations are the primary encoder's.
func (t *teeEncoder) Annotations() map[string]string { return encoderAnnotations(t.first) }

// layerAnnotations are the descriptor annotations of an output layer.
func layerAnnotations(l any) map[string]string {
	if s, ok := l.(*spooledLayer); ok {
		return s.annotations
	}
	return nil
}
