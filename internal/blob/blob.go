// Package blob reads layer blobs the one way every command needs them: the
// compressed bytes counted and hashed as they stream, checked against the
// descriptor at the end, and decompressed by what their bytes say (not what
// the media type claims).
package blob

import (
	"bytes"
	"context"
	_ "crypto/sha256" // the digest algorithms go-digest knows, linked in
	_ "crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/layerslim/layerslim/compress"
)

// ErrDigestMismatch is wrapped by the error for a blob whose bytes do not
// match its descriptor: another digest, or another size.
var ErrDigestMismatch = errors.New("digest mismatch")

// ErrUnsupportedDigest is wrapped by the error for a descriptor whose digest
// algorithm go-digest does not know: such a blob cannot be verified, so it
// is not used.
var ErrUnsupportedDigest = errors.New("unsupported digest algorithm")

// hasher returns a hash for the algorithm of want: any algorithm go-digest
// knows (sha256, sha384, sha512); sha256 when want is the zero Hash (the
// digest is then computed, not checked).
func hasher(want v1.Hash) (digest.Algorithm, hash.Hash, error) {
	if want == (v1.Hash{}) {
		return digest.SHA256, digest.SHA256.Hash(), nil
	}
	alg := digest.Algorithm(want.Algorithm)
	if !alg.Available() {
		return alg, nil, fmt.Errorf("%w %q in %s (layerslim verifies sha256, sha384 and sha512)", ErrUnsupportedDigest, want.Algorithm, want)
	}
	return alg, alg.Hash(), nil
}

// CheckDiffID is the rule for a layer's uncompressed content: got, its
// sha256, must be want, the diff_id its config lists. The error wraps
// ErrDigestMismatch.
func CheckDiffID(got, want v1.Hash) error {
	if got == want {
		return nil
	}
	return fmt.Errorf("uncompressed content is %s but the config says diff_id %s: %w", got, want, ErrDigestMismatch)
}

// Check verifies that b is the blob desc describes: its digest, by the
// descriptor's algorithm, and its size (when the descriptor gives one).
func Check(b []byte, desc v1.Descriptor) error {
	r := NewReader(context.Background(), bytes.NewReader(b), desc.Digest, desc.Size, nil)
	return r.Finish()
}

// Reader passes a blob through, counting and hashing it.
type Reader struct {
	ctx      context.Context
	r        io.Reader
	want     v1.Hash
	size     int64
	alg      digest.Algorithm
	h        hash.Hash
	err      error // an algorithm that cannot be verified
	n        int64
	progress func(int64)
	unsent   int64
}

// NewReader reads r, a blob that should hash to want (by want's algorithm:
// sha256, sha384 or sha512; not checked when want is the zero Hash) and
// hold size bytes (checked when positive). A digest of another algorithm
// fails the first Read with ErrUnsupportedDigest. progress, if not nil,
// hears of the bytes read every few MiB.
func NewReader(ctx context.Context, r io.Reader, want v1.Hash, size int64, progress func(int64)) *Reader {
	alg, h, err := hasher(want)
	return &Reader{ctx: ctx, r: r, want: want, size: size, alg: alg, h: h, err: err, progress: progress}
}

// Read reads, stopping when the context is done, and as soon as the blob
// holds more bytes than its descriptor says: a blob that never ends must
// not fill a disk.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
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

// Digest is the digest of the bytes read, by the algorithm of the digest
// they should have (sha256 when none was given).
func (r *Reader) Digest() v1.Hash {
	if r.h == nil {
		return v1.Hash{}
	}
	return v1.Hash{Algorithm: string(r.alg), Hex: hex.EncodeToString(r.h.Sum(nil))}
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
	if r.want != (v1.Hash{}) {
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
