package zstdchunked_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"go.podman.io/storage/pkg/chunked/compressor"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/compress/zstdchunked"
)

// layerTar is a tar of many small text files, a few large ones (one with a
// long run of zeros), a symlink, a hardlink and a directory.
func layerTar(t testing.TB) []byte { return layerTarOf(t, 300) }

func layerTarOf(t testing.TB, small int) []byte { return layerTarWith(t, small, 0) }

// layerTarWith adds binaries files of 4 MiB like executables: text with
// runs of 1 to 3 KiB of zeros (section padding) every 16 to 64 KiB.
func layerTarWith(t testing.TB, small, binaries int) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	words := []string{"alpha", "beta", "gamma", "delta", "layer", "image", "zstd", "gzip", "\n", "{", "}", "func", "return"}
	text := func(n int) []byte {
		var b bytes.Buffer
		for b.Len() < n {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
		return b.Bytes()[:n]
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body []byte) {
		h.Size = int64(len(body))
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	add(&tar.Header{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	for i := range small {
		add(&tar.Header{Name: fmt.Sprintf("usr/share/f%03d.txt", i), Mode: 0o644, Uid: 1, Gid: 2}, text(200+rng.IntN(6000)))
	}
	add(&tar.Header{Name: "usr/lib/big.bin", Mode: 0o755}, text(3<<20))
	sparse := append(append(text(100000), make([]byte, 200000)...), text(100000)...)
	add(&tar.Header{Name: "usr/lib/holes.bin", Mode: 0o644}, sparse)
	for i := range binaries {
		var b []byte
		for len(b) < 4<<20 {
			b = append(append(b, text(16<<10+rng.IntN(48<<10))...), make([]byte, 1<<10+rng.IntN(2<<10))...)
		}
		add(&tar.Header{Name: fmt.Sprintf("usr/bin/b%d", i), Mode: 0o755}, b)
	}
	add(&tar.Header{Name: "usr/lib/empty", Mode: 0o644}, nil)
	add(&tar.Header{Name: "usr/lib/link", Typeflag: tar.TypeSymlink, Linkname: "big.bin"}, nil)
	add(&tar.Header{Name: "usr/lib/hard", Typeflag: tar.TypeLink, Linkname: "usr/lib/big.bin"}, nil)
	tw.Close()
	return buf.Bytes()
}

func chunked(t testing.TB, tarball []byte, level int) ([]byte, map[string]string) {
	return chunkedWith(t, zstdchunked.NewWriter, tarball, level)
}

// writers are the chunkings the format tests run with: the default, and
// small chunks that split the test's large files many times.
var writers = []struct {
	name string
	new  func(io.Writer, int) (*zstdchunked.Writer, error)
}{{"default", zstdchunked.NewWriter}, {"small chunks", zstdchunked.NewSmallChunkWriter}}

func chunkedWith(t testing.TB, newWriter func(io.Writer, int) (*zstdchunked.Writer, error), tarball []byte, level int) ([]byte, map[string]string) {
	t.Helper()
	var out bytes.Buffer
	w, err := newWriter(&out, level)
	if err != nil {
		t.Fatal(err)
	}
	if w.Annotations() != nil {
		t.Error("annotations before Close")
	}
	if _, err := io.Copy(w, bytes.NewReader(tarball)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), w.Annotations()
}

func unzstd(t testing.TB, b []byte) []byte {
	t.Helper()
	d, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// toc is the part of containers/storage's TOC this test checks.
type toc struct {
	Version int `json:"version"`
	Entries []struct {
		Type        string `json:"type"`
		Name        string `json:"name"`
		Size        int64  `json:"size"`
		Digest      string `json:"digest"`
		Offset      int64  `json:"offset"`
		EndOffset   int64  `json:"endOffset"`
		ChunkSize   int64  `json:"chunkSize"`
		ChunkOffset int64  `json:"chunkOffset"`
		ChunkDigest string `json:"chunkDigest"`
		ChunkType   string `json:"chunkType"`
	} `json:"entries"`
	TarSplitDigest string `json:"tarSplitDigest"`
}

// The blob is plain zstd of the same tar bytes; the footer, annotations and
// TOC locate each other and every regular file's frames hold its bytes
// with the digest the TOC gives.
func TestFormat(t *testing.T) {
	for _, w := range writers {
		t.Run(w.name, func(t *testing.T) { testFormat(t, w.new) })
	}
}

func testFormat(t *testing.T, newWriter func(io.Writer, int) (*zstdchunked.Writer, error)) {
	tarball := layerTar(t)
	blob, ann := chunkedWith(t, newWriter, tarball, 3)
	if !bytes.Equal(unzstd(t, blob), tarball) {
		t.Fatal("the blob does not decompress to the tar bytes")
	}
	if c, _, err := compress.Detect(bytes.NewReader(blob)); err != nil || c != compress.Zstd {
		t.Errorf("Detect: %s, %v", c, err)
	}
	// The footer: a skippable frame of 64 bytes at the end.
	if len(blob) < 72 || string(blob[len(blob)-8:]) != zstdchunked.FooterMagic {
		t.Fatalf("blob does not end in %q", zstdchunked.FooterMagic)
	}
	frame := blob[len(blob)-72:]
	if !bytes.Equal(frame[:4], []byte{0x50, 0x2a, 0x4d, 0x18}) || binary.LittleEndian.Uint32(frame[4:8]) != 64 {
		t.Fatalf("footer frame header % x", frame[:8])
	}
	f := frame[8:]
	u := func(i int) uint64 { return binary.LittleEndian.Uint64(f[8*i:]) }
	off, clen, ulen, typ := u(0), u(1), u(2), u(3)
	if typ != 1 {
		t.Errorf("manifest type %d, want 1", typ)
	}
	if got, want := ann[zstdchunked.AnnotationManifestPosition], fmt.Sprintf("%d:%d:%d:1", off, clen, ulen); got != want {
		t.Errorf("manifest-position %q, footer says %q", got, want)
	}
	if got, want := ann[zstdchunked.AnnotationTarSplitPosition], fmt.Sprintf("%d:%d:%d", u(4), u(5), u(6)); got != want {
		t.Errorf("tarsplit-position %q, footer says %q", got, want)
	}
	ctoc := blob[off : off+clen]
	if got, want := ann[zstdchunked.AnnotationManifestChecksum], fmt.Sprintf("sha256:%x", sha256.Sum256(ctoc)); got != want {
		t.Errorf("manifest-checksum %q, the compressed TOC hashes to %q", got, want)
	}
	raw := unzstd(t, ctoc)
	if uint64(len(raw)) != ulen {
		t.Errorf("TOC is %d bytes, footer says %d", len(raw), ulen)
	}
	var tc toc
	if err := json.Unmarshal(raw, &tc); err != nil {
		t.Fatal(err)
	}
	if tc.Version != 1 {
		t.Errorf("TOC version %d", tc.Version)
	}
	ts := blob[u(4) : u(4)+u(5)]
	if tc.TarSplitDigest != fmt.Sprintf("sha256:%x", sha256.Sum256(ts)) {
		t.Errorf("tarSplitDigest %s does not match the tar-split frame", tc.TarSplitDigest)
	}
	// One entry per tar entry, in order, plus chunk entries.
	tr := tar.NewReader(bytes.NewReader(tarball))
	i, chunks, zeroChunks := 0, 0, 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		e := tc.Entries[i]
		if e.Name != h.Name {
			t.Fatalf("TOC entry %d is %q, tar entry %q", i, e.Name, h.Name)
		}
		i++
		if h.Typeflag != tar.TypeReg || len(body) == 0 {
			continue
		}
		if e.Type != "reg" || e.Digest != fmt.Sprintf("sha256:%x", sha256.Sum256(body)) {
			t.Errorf("%s: type %s digest %s", h.Name, e.Type, e.Digest)
		}
		// The file's frames, read on their own, start with its bytes (the
		// parser reads Size bytes; the headers after the contents may end
		// the last frame).
		if got := unzstd(t, blob[e.Offset:e.EndOffset]); !bytes.HasPrefix(got, body) {
			t.Errorf("%s: frames [%d,%d) do not start with the file's %d bytes", h.Name, e.Offset, e.EndOffset, len(body))
		}
		// So do each chunk's, from its offset to the next chunk's.
		cs := []int{i - 1}
		for i < len(tc.Entries) && tc.Entries[i].Type == "chunk" {
			cs = append(cs, i)
			i++
			chunks++
		}
		if len(cs) == 1 {
			continue
		}
		var total int64
		for k, ci := range cs {
			c := tc.Entries[ci]
			end := e.EndOffset
			if k+1 < len(cs) {
				end = tc.Entries[cs[k+1]].Offset
			}
			if c.ChunkOffset != total || c.Offset >= end {
				t.Fatalf("%s: chunk %d at %d [%d,%d), want file offset %d", h.Name, k, c.ChunkOffset, c.Offset, end, total)
			}
			want := body[total : total+c.ChunkSize]
			if c.ChunkDigest != fmt.Sprintf("sha256:%x", sha256.Sum256(want)) {
				t.Errorf("%s: chunk %d digest %s", h.Name, k, c.ChunkDigest)
			}
			if c.ChunkType == "zeros" {
				zeroChunks++
				if bytes.ContainsFunc(want, func(r rune) bool { return r != 0 }) {
					t.Errorf("%s: chunk %d of type zeros holds other bytes", h.Name, k)
				}
			}
			if got := unzstd(t, blob[c.Offset:end]); !bytes.HasPrefix(got, want) {
				t.Errorf("%s: chunk %d frames [%d,%d) do not start with its %d bytes", h.Name, k, c.Offset, end, len(want))
			}
			total += c.ChunkSize
		}
		if total != int64(len(body)) {
			t.Errorf("%s: chunks of %d bytes, file of %d", h.Name, total, len(body))
		}
	}
	if i != len(tc.Entries) {
		t.Errorf("%d TOC entries, %d matched", len(tc.Entries), i)
	}
	if chunks == 0 || zeroChunks == 0 {
		t.Errorf("%d chunk entries, %d of zeros: the large files were not split", chunks, zeroChunks)
	}
}

// The blob depends on the input and level only, not on GOMAXPROCS.
func TestDeterministic(t *testing.T) {
	tarball := layerTar(t)
	a, _ := chunked(t, tarball, 3)
	old := runtime.GOMAXPROCS(1)
	b, _ := chunked(t, tarball, 3)
	runtime.GOMAXPROCS(old)
	if !bytes.Equal(a, b) {
		t.Error("the blob changed with GOMAXPROCS")
	}
}

// Size against plain zstd at the same level, on a layer of a few large
// files and on one of many small files and a few large ones. Each regular
// file's contents start a frame, without the history of the bytes before
// them: that is the format's price, and no writer avoids it. The rest is
// the writer's choice; containers/storage's own compressor, which splits
// files every 64 KiB on average and gives the headers between files frames
// of their own, is the figure to stay well under.
func TestSize(t *testing.T) {
	for _, tc := range []struct {
		small, binaries int
		max             float64 // against plain zstd
	}{{0, 0, 1.01}, {300, 0, 1.12}, {300, 3, 1.05}} {
		tarball := layerTarWith(t, tc.small, tc.binaries)
		ours, _ := chunked(t, tarball, 3)
		var plain, lib bytes.Buffer
		w, _ := compress.NewWriter(&plain, compress.Zstd, compress.WithLevel(3))
		w.Write(tarball)
		w.Close()
		level := 3
		lw, err := compressor.ZstdCompressor(&lib, map[string]string{}, &level)
		if err != nil {
			t.Fatal(err)
		}
		lw.Write(tarball)
		if err := lw.Close(); err != nil {
			t.Fatal(err)
		}
		ratio, libRatio := float64(len(ours))/float64(plain.Len()), float64(lib.Len())/float64(plain.Len())
		t.Logf("%d small files, %d binaries: zstd %d bytes; zstd:chunked %d bytes (%.3f×), containers/storage's %d bytes (%.3f×)",
			tc.small, tc.binaries, plain.Len(), len(ours), ratio, lib.Len(), libRatio)
		if ratio > tc.max {
			t.Errorf("%d small files: zstd:chunked is %.3f× plain zstd, want at most %.2f×", tc.small, ratio, tc.max)
		}
		if tc.binaries > 0 && ratio > 1+(libRatio-1)*0.5 {
			t.Errorf("%d small files: zstd:chunked is %.3f× plain zstd, containers/storage's compressor %.3f×: want at most half its cost", tc.small, ratio, libRatio)
		}
	}
}

func TestBadInput(t *testing.T) {
	if _, err := zstdchunked.NewWriter(io.Discard, 23); err == nil || !strings.Contains(err.Error(), "level") {
		t.Errorf("level 23: %v", err)
	}
	w, err := zstdchunked.NewWriter(io.Discard, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte("not a tar "), 100))
	if err := w.Close(); err == nil {
		t.Error("a stream that is not a tar closed without an error")
	}
	if w.Annotations() != nil {
		t.Error("annotations after a failed Close")
	}
}
