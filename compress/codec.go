// Package compress detects and handles the compression of container image
// layer blobs.
//
// Detect sniffs a blob's magic bytes, NewReader and NewWriter wrap the
// klauspost/compress zstd and gzip implementations with bounded decoder
// memory and deterministic encoder output, and LayerMediaType and
// MediaTypeCodec map codecs to and from OCI and Docker layer media types.
//
// The package holds no global state: every reader and writer owns its own
// decoder or encoder and releases it on Close.
package compress

import (
	"errors"
	"fmt"
	"strings"
)

// Codec names the compression of a layer blob.
type Codec string

// The codecs this package reads and writes.
const (
	None Codec = "none" // an uncompressed tar
	Gzip Codec = "gzip"
	Zstd Codec = "zstd"
)

// ErrUnsupported is wrapped by errors about compression formats or codecs
// this package recognises but does not handle.
var ErrUnsupported = errors.New("unsupported compression")

// ParseCodec accepts "none", "gzip" and "zstd", in any case. Any other
// value gives an error that wraps ErrUnsupported and names the allowed
// values.
func ParseCodec(s string) (Codec, error) {
	switch c := Codec(strings.ToLower(s)); c {
	case None, Gzip, Zstd:
		return c, nil
	}
	return "", fmt.Errorf("%w: codec %q: want none, gzip or zstd", ErrUnsupported, s)
}

// DefaultLevel returns the level NewWriter uses for c when no level (or
// level 0) is given: 3 for zstd, 6 for gzip and 0 for anything else.
func DefaultLevel(c Codec) int {
	switch c {
	case Zstd:
		return 3
	case Gzip:
		return 6
	}
	return 0
}

// unsupportedCodec is the error for a Codec value outside None, Gzip, Zstd.
func unsupportedCodec(c Codec) error {
	return fmt.Errorf("%w: codec %q", ErrUnsupported, string(c))
}
