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

// SparseBomb is an uncompressed tar of one GNU sparse file (PAX format
// 1.0, as GNU tar --sparse --format=posix writes it) named "holes", of
// realSize bytes that are all a hole but for a last "x": 3 KiB of tar
// whose one file reads as realSize bytes.
func SparseBomb(realSize int64) []byte {
	var out bytes.Buffer
	pax := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", "holes") + paxRecord("GNU.sparse.realsize", fmt.Sprint(realSize))
	sparseMap := fmt.Sprintf("1\n%d\n1\n", realSize-1)
	out.Write(ustarBlock("PaxHeaders/holes", tar.TypeXHeader, int64(len(pax))))
	out.WriteString(pax)
	out.Write(make([]byte, padding(len(pax))))
	out.Write(ustarBlock("GNUSparseFile.0/holes", tar.TypeReg, 512+1))
	out.WriteString(sparseMap)
	out.Write(make([]byte, padding(len(sparseMap))))
	out.WriteString("x")
	out.Write(make([]byte, padding(1)))
	out.Write(make([]byte, 1024))
	return out.Bytes()
}

func padding(n int) int { return (-n) & 511 }

// paxRecord is one "LEN key=value\n" PAX record.
func paxRecord(k, v string) string {
	n := len(k) + len(v) + 3
	for {
		s := fmt.Sprintf("%d %s=%s\n", n, k, v)
		if len(s) == n {
			return s
		}
		n = len(s)
	}
}

// ustarBlock is a ustar header block: name, mode 0644, size, typeflag and
// checksum, the rest zero. (tar.Writer writes neither 'x' entries of its
// own nor GNU.sparse records.)
func ustarBlock(name string, typ byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], fmt.Sprintf("%07o\x00", 0o644))
	copy(b[108:116], fmt.Sprintf("%07o\x00", 0))
	copy(b[116:124], fmt.Sprintf("%07o\x00", 0))
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], fmt.Sprintf("%011o\x00", 1700000000))
	b[156] = typ
	copy(b[257:265], "ustar\x0000")
	copy(b[148:156], "        ")
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// PAXHeader is one PAX extended header entry ('x') holding a comment of
// size bytes: a chain of them before an entry is what archive/tar reads
// one after another, keeping only the last.
func PAXHeader(size int) []byte {
	var out bytes.Buffer
	pax := paxRecord("comment", strings.Repeat("p", size))
	out.Write(ustarBlock("PaxHeaders/f", tar.TypeXHeader, int64(len(pax))))
	out.WriteString(pax)
	out.Write(make([]byte, padding(len(pax))))
	return out.Bytes()
}
