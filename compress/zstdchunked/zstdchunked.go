// Package zstdchunked writes layer blobs in the zstd:chunked format of
// containers/storage (podman, CRI-O), which lets those clients pull only the
// files they do not already have.
//
// The blob is ordinary zstd to every other decoder, and decompresses to the
// same tar bytes: a new zstd frame starts at each regular file's payload and
// at rolling-checksum split points inside large files; after the tar stream
// come zstd skippable frames holding the table of contents (zstd-compressed
// JSON, version 1, one entry per tar entry with each regular file's sha256
// digest and the offsets of its frames), the tar-split data, and a 64-byte
// footer ending in "GNUlInUx". The layer's descriptor carries three
// annotations (Annotations) that locate the TOC and the tar-split data.
//
// The format is containers/storage's own: the blob is written by its
// pkg/chunked/compressor, so it matches what podman push
// --compression-format zstd:chunked writes, byte for byte at the same level
// and klauspost/compress version.
package zstdchunked

import (
	"errors"
	"fmt"
	"io"
	"maps"

	"go.podman.io/storage/pkg/chunked/compressor"

	"github.com/layerslim/layerslim/compress"
)

// The layer descriptor annotations of a zstd:chunked blob.
const (
	// AnnotationManifestChecksum is the sha256 digest of the compressed TOC.
	AnnotationManifestChecksum = "io.github.containers.zstd-chunked.manifest-checksum"
	// AnnotationManifestPosition is offset:length:uncompressedLength:1 of
	// the compressed TOC in the blob.
	AnnotationManifestPosition = "io.github.containers.zstd-chunked.manifest-position"
	// AnnotationTarSplitPosition is offset:length:uncompressedLength of the
	// compressed tar-split data in the blob.
	AnnotationTarSplitPosition = "io.github.containers.zstd-chunked.tarsplit-position"
)

// FooterMagic ends every zstd:chunked blob.
const FooterMagic = "GNUlInUx"

// Writer compresses a tar stream into a zstd:chunked blob. What is written
// to it must be a tar stream; Close fails otherwise.
type Writer struct {
	wc          io.WriteCloser
	annotations map[string]string
	closed      bool
	err         error
}

// NewWriter returns a Writer that writes the blob to w at zstd level (1 to
// 22, 0 for 3).
func NewWriter(w io.Writer, level int) (*Writer, error) {
	if w == nil {
		return nil, errors.New("creating zstd:chunked writer: nil io.Writer")
	}
	if err := compress.ValidLevel(compress.Zstd, level); err != nil {
		return nil, fmt.Errorf("zstd:chunked: %w", err)
	}
	if level == 0 {
		level = compress.DefaultLevel(compress.Zstd)
	}
	md := map[string]string{}
	wc, err := compressor.ZstdCompressor(w, md, &level)
	if err != nil {
		return nil, fmt.Errorf("creating zstd:chunked writer: %w", err)
	}
	return &Writer{wc: wc, annotations: md}, nil
}

// Write takes the next bytes of the tar stream.
func (z *Writer) Write(p []byte) (int, error) { return z.wc.Write(p) }

// Close writes the end of the tar stream, the TOC, the tar-split data and
// the footer. It does not close the underlying writer.
func (z *Writer) Close() error {
	if z.closed {
		return z.err
	}
	z.closed = true
	if err := z.wc.Close(); err != nil {
		z.err = fmt.Errorf("zstd:chunked: %w", err)
	}
	return z.err
}

// Annotations are the layer descriptor annotations of the blob, once Close
// has succeeded; nil before.
func (z *Writer) Annotations() map[string]string {
	if !z.closed || z.err != nil {
		return nil
	}
	return maps.Clone(z.annotations)
}
