// Package blob reads layer blobs the one way every command needs them: the
// compressed bytes counted and hashed as they stream, checked against the
// descriptor at the end, and decompressed by what their bytes say (not what
// the media type claims).
package blob

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/compress"
)

// ErrDigestMismatch is wrapped by the error for a blob whose bytes do not
// match its descriptor: another digest, or another size.
var ErrDigestMismatch = errors.New("digest mismatch")

// Reader passes a blob through, counting and hashing it.
type Reader struct {
	ctx      context.Context
	r        io.Reader
	want     v1.Hash
	size     int64
	h        hash.Hash
	n        int64
	progress func(int64)
	unsent   int64
}

// NewReader reads r, a blob that should hash to want (checked when it is a
// sha256 digest) and hold size bytes (checked when positive). progress, if
// not nil, hears of the bytes read every few MiB.
func NewReader(ctx context.Context, r io.Reader, want v1.Hash, size int64, progress func(int64)) *Reader {
	return &Reader{ctx: ctx, r: r, want: want, size: size, h: sha256.New(), progress: progress}
}

// Read reads, stopping when the context is done, and as soon as the blob
// holds more bytes than its descriptor says: a blob that never ends must
// not fill a disk.
func (r *Reader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(p)
	if n > 0 {
		r.h.Write(p[:n])
		r.n += int64(n)
		if r.size > 0 && r.n > r.size {
			return n, fmt.Errorf("blob has more than the %d bytes its descriptor says: %w", r.size, ErrDigestMismatch)
		}
		r.unsent += int64(n)
		if r.progress != nil && r.unsent >= 4<<20 {
			r.progress(r.unsent)
			r.unsent = 0
		}
	}
	return n, err
}

// N is the number of bytes read.
func (r *Reader) N() int64 { return r.n }

// Digest is the sha256 of the bytes read.
func (r *Reader) Digest() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", r.h.Sum(nil))}
}

// Finish reads what is left (a decompressor may stop before the end of its
// stream) and checks the size and the digest.
func (r *Reader) Finish() error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("reading blob: %w", err)
	}
	if r.progress != nil && r.unsent > 0 {
		r.progress(r.unsent)
		r.unsent = 0
	}
	if r.want.Algorithm == "sha256" {
		if got := r.Digest(); got != r.want {
			return fmt.Errorf("blob content hashes to %s: %w", got, ErrDigestMismatch)
		}
	}
	if r.size > 0 && r.n != r.size {
		return fmt.Errorf("blob has %d bytes, its descriptor says %d: %w", r.n, r.size, ErrDigestMismatch)
	}
	return nil
}

// Layer is an open layer blob.
type Layer struct {
	Codec compress.Codec // detected from the bytes
	Blob  *Reader        // the compressed bytes; Finish checks them
	Tar   io.Reader      // the uncompressed stream
	rc    io.ReadCloser
	dr    io.ReadCloser
}

// Open opens the blob of l, described by desc, for reading.
func Open(ctx context.Context, l v1.Layer, desc v1.Descriptor, progress func(int64)) (*Layer, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("opening blob: %w", err)
	}
	return open(ctx, rc, desc, progress)
}

// OpenReader is Open over a blob already open.
func OpenReader(ctx context.Context, rc io.ReadCloser, desc v1.Descriptor, progress func(int64)) (*Layer, error) {
	return open(ctx, rc, desc, progress)
}

func open(ctx context.Context, rc io.ReadCloser, desc v1.Descriptor, progress func(int64)) (*Layer, error) {
	b := NewReader(ctx, rc, desc.Digest, desc.Size, progress)
	codec, r, err := compress.Detect(b)
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("reading blob: %w", err)
	}
	dr, err := compress.NewReader(codec, r)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return &Layer{Codec: codec, Blob: b, Tar: dr, rc: rc, dr: dr}, nil
}

// Close releases the decompressor and the blob.
func (l *Layer) Close() error {
	l.dr.Close()
	return l.rc.Close()
}
