package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"

	"github.com/layerslim/layerslim/compress"
)

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	io.WriteString(w, s)
	w.Close()
	return b.Bytes()
}

func TestReaderChecksDigestAndSize(t *testing.T) {
	data := gz(strings.Repeat("layer ", 1000))
	d, n, _ := v1.SHA256(bytes.NewReader(data))
	for _, tc := range []struct {
		name string
		want v1.Hash
		size int64
		ok   bool
	}{
		{"right", d, n, true},
		{"size unknown", d, 0, true},
		{"digest unknown", v1.Hash{}, n, true},
		{"wrong digest", v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}, n, false},
		{"wrong size", d, n + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := OpenReader(context.Background(), io.NopCloser(bytes.NewReader(data)), v1.Descriptor{Digest: tc.want, Size: tc.size}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if l.Codec != compress.Gzip {
				t.Errorf("codec %s", l.Codec)
			}
			// Read only part of the stream: Finish must read the rest.
			io.CopyN(io.Discard, l.Tar, 10)
			err = l.Blob.Finish()
			if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, ErrDigestMismatch)) {
				t.Errorf("Finish() = %v", err)
			}
			if l.Blob.N() != n {
				t.Errorf("read %d bytes, the blob has %d", l.Blob.N(), n)
			}
		})
	}
}

func TestReaderStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := NewReader(ctx, strings.NewReader("x"), v1.Hash{}, 0, nil)
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("Read after cancel: %v", err)
	}
}

// A blob longer than its descriptor says stops as soon as it goes past it,
// even when it never ends.
func TestReaderStopsPastTheDescriptorSize(t *testing.T) {
	endless := io.MultiReader(strings.NewReader("x"), zeros{})
	r := NewReader(context.Background(), endless, v1.Hash{}, 1000, nil)
	n, err := io.Copy(io.Discard, r)
	if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), "more than the 1000 bytes its descriptor says") {
		t.Errorf("error %v", err)
	}
	if n > 1000+64<<10 {
		t.Errorf("read %d bytes of a 1000-byte blob", n)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func digestOf(alg digest.Algorithm, b []byte) v1.Hash {
	return v1.Hash{Algorithm: string(alg), Hex: alg.FromBytes(b).Encoded()}
}

// A blob is verified by its descriptor's algorithm, whichever go-digest
// knows: a sha512 (or sha384) blob whose bytes do not match is refused as a
// sha256 one is.
func TestReaderVerifiesEveryAlgorithm(t *testing.T) {
	data := gz(strings.Repeat("layer ", 1000))
	tampered := append([]byte{}, data...)
	tampered[len(tampered)/2] ^= 0xff
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA384, digest.SHA512} {
		want := digestOf(alg, data)
		for _, tc := range []struct {
			name string
			blob []byte
			ok   bool
		}{{"right", data, true}, {"tampered", tampered, false}} {
			t.Run(string(alg)+"/"+tc.name, func(t *testing.T) {
				r := NewReader(context.Background(), bytes.NewReader(tc.blob), want, int64(len(data)), nil)
				err := r.Finish()
				if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, ErrDigestMismatch)) {
					t.Errorf("Finish() = %v", err)
				}
				if err := Check(tc.blob, v1.Descriptor{Digest: want, Size: int64(len(data))}); tc.ok != (err == nil) {
					t.Errorf("Check() = %v", err)
				}
			})
		}
	}
}

// An algorithm go-digest does not know is refused by name, not skipped.
func TestReaderRefusesUnknownAlgorithm(t *testing.T) {
	data := gz("x")
	want := v1.Hash{Algorithm: "md5", Hex: strings.Repeat("0", 32)}
	_, err := OpenReader(context.Background(), io.NopCloser(bytes.NewReader(data)), v1.Descriptor{Digest: want}, nil)
	if !errors.Is(err, ErrUnsupportedDigest) || !strings.Contains(err.Error(), `"md5"`) {
		t.Errorf("OpenReader() = %v, want the algorithm refused by name", err)
	}
	if err := Check(data, v1.Descriptor{Digest: want}); !errors.Is(err, ErrUnsupportedDigest) {
		t.Errorf("Check() = %v", err)
	}
}

func TestCheckDiffID(t *testing.T) {
	a := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}
	b := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("b", 64)}
	if err := CheckDiffID(a, a); err != nil {
		t.Errorf("equal: %v", err)
	}
	err := CheckDiffID(a, b)
	if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), "uncompressed content is "+a.String()+" but the config says diff_id "+b.String()) {
		t.Errorf("different: %v", err)
	}
}
