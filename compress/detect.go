package compress

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Magic numbers, as they appear at the start of a stream.
var (
	gzipMagic      = []byte{0x1f, 0x8b}
	zstdMagic      = []byte{0x28, 0xb5, 0x2f, 0xfd}
	xzMagic        = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	lz4Magic       = []byte{0x04, 0x22, 0x4d, 0x18}
	lz4LegacyMagic = []byte{0x02, 0x21, 0x4c, 0x18}
	bzip2Magic     = []byte("BZh")
	// A bzip2 stream continues with a block size digit and then either a
	// block header (the BCD digits of pi) or, for an empty stream, the
	// end-of-stream marker (the digits of sqrt(pi)).
	bzip2Block = []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}
	bzip2End   = []byte{0x17, 0x72, 0x45, 0x38, 0x50, 0x90}
)

// peekLen is the number of bytes Detect needs to tell the formats apart.
const peekLen = 10

// Detect peeks at the first bytes of r and reports its codec. The returned
// reader yields every byte of r, the peeked ones included; read from it, not
// from r.
//
// gzip starts with 1f 8b, zstd with 28 b5 2f fd or with a skippable frame
// (50..5f 2a 4d 18). bzip2, xz and lz4 streams give an error that wraps
// ErrUnsupported and names the format. Anything else, including an empty or
// very short stream, is None.
//
// To avoid mistaking a tar whose first file is named "BZh…" for bzip2, a
// bzip2 stream is recognised by "BZh", a block size digit and the block or
// end-of-stream magic that must follow.
func Detect(r io.Reader) (Codec, io.Reader, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(peekLen)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", nil, fmt.Errorf("detecting compression: %w", err)
	}
	c, err := sniff(head)
	if err != nil {
		return "", nil, err
	}
	return c, br, nil
}

// SniffLen is how many leading bytes of a stream Sniff needs to tell every
// format apart.
const SniffLen = peekLen

// Sniff reports the codec of a stream that starts with head, by the rules
// of Detect, for a caller that has the first bytes already (a scan of an
// archive's members); head may be shorter than SniffLen if the stream is.
func Sniff(head []byte) (Codec, error) { return sniff(head) }

// sniff reports the codec of a stream starting with head, which may be
// shorter than peekLen if the stream is.
func sniff(head []byte) (Codec, error) {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip, nil
	case bytes.HasPrefix(head, zstdMagic), isSkippableFrame(head):
		return Zstd, nil
	case bytes.HasPrefix(head, xzMagic):
		return "", fmt.Errorf("%w: xz", ErrUnsupported)
	case bytes.HasPrefix(head, lz4Magic), bytes.HasPrefix(head, lz4LegacyMagic):
		return "", fmt.Errorf("%w: lz4", ErrUnsupported)
	case isBzip2(head):
		return "", fmt.Errorf("%w: bzip2", ErrUnsupported)
	}
	return None, nil
}

// isSkippableFrame reports whether head starts with the magic of a zstd
// skippable frame, 0x184D2A50 to 0x184D2A5F in little-endian order.
func isSkippableFrame(head []byte) bool {
	return len(head) >= 4 && head[0]&0xf0 == 0x50 && head[1] == 0x2a && head[2] == 0x4d && head[3] == 0x18
}

func isBzip2(head []byte) bool {
	if len(head) < 10 || !bytes.HasPrefix(head, bzip2Magic) || head[3] < '1' || head[3] > '9' {
		return false
	}
	rest := head[4:10]
	return bytes.Equal(rest, bzip2Block) || bytes.Equal(rest, bzip2End)
}
