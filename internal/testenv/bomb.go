package testenv

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// BlobLayer is a layer of the given compressed bytes, whose diff_id is
// all zeros: a hostile layer whose uncompressed stream a test describes
// but never builds (a bomb, a frame no decoder accepts). Uncompressed
// fails.
func BlobLayer(blob []byte, mt types.MediaType) v1.Layer {
	return &blobLayer{blob: blob, mt: mt}
}

type blobLayer struct {
	blob []byte
	mt   types.MediaType
}

func (l *blobLayer) Digest() (v1.Hash, error) {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(l.blob))}, nil
}
func (l *blobLayer) DiffID() (v1.Hash, error) {
	return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}, nil
}
func (l *blobLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.blob)), nil
}
func (l *blobLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("testenv: a BlobLayer is not decompressed")
}
func (l *blobLayer) Size() (int64, error)                { return int64(len(l.blob)), nil }
func (l *blobLayer) MediaType() (types.MediaType, error) { return l.mt, nil }

// GzipBomb is the blob of a gzip layer whose tar holds one file, "zeros",
// of size zero bytes (a multiple of 1 MiB): about 1 KiB of gzip per MiB,
// as gzip members of 1 MiB of zeros one after another. The tar ends with
// the file's body, without end-of-archive blocks.
func GzipBomb(t testing.TB, size int64) []byte {
	t.Helper()
	member := func(b []byte) []byte {
		var out bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
		zw.Write(b)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	var hdr bytes.Buffer
	h := &tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: DefaultModTime}
	if err := tar.NewWriter(&hdr).WriteHeader(h); err != nil {
		t.Fatal(err)
	}
	out := member(hdr.Bytes())
	zeros := member(make([]byte, 1<<20))
	for range size >> 20 {
		out = append(out, zeros...)
	}
	return out
}
