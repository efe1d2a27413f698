package verify_test

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/verify"
)

// bigLayer is an uncompressed layer of two large files, one of them
// starting with the ELF magic, that is never held in memory: every read
// regenerates it.
type bigLayer struct {
	fileSize int64
	digest   v1.Hash
	size     int64
}

func (g *bigLayer) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	rng := rand.New(rand.NewPCG(1, 2))
	chunk := make([]byte, 1<<20)
	for _, name := range []string{"big.bin", "big.elf"} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: g.fileSize, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		for n := int64(0); n < g.fileSize; n += int64(len(chunk)) {
			for j := 0; j < len(chunk); j += 8 {
				v := rng.Uint64()
				for k := range 8 {
					chunk[j+k] = byte(v >> (8 * k))
				}
			}
			if n == 0 && name == "big.elf" {
				copy(chunk, "\x7fELF\x02\x01\x01")
			}
			if _, err := tw.Write(chunk); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

func (g *bigLayer) Compressed() (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(g.writeTar(pw)) }()
	return pr, nil
}

func (g *bigLayer) Uncompressed() (io.ReadCloser, error) { return g.Compressed() }
func (g *bigLayer) Digest() (v1.Hash, error)             { return g.digest, nil }
func (g *bigLayer) DiffID() (v1.Hash, error)             { return g.digest, nil }
func (g *bigLayer) Size() (int64, error)                 { return g.size, nil }
func (g *bigLayer) MediaType() (types.MediaType, error)  { return types.OCIUncompressedLayer, nil }

func newBigLayer(t *testing.T, fileSize int64) *bigLayer {
	t.Helper()
	g := &bigLayer{fileSize: fileSize}
	h := sha256.New()
	rc, _ := g.Compressed()
	n, err := io.Copy(h, rc)
	if err != nil {
		t.Fatal(err)
	}
	g.digest, g.size = v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}, n
	return g
}

// The heap used to verify must not grow with file sizes: file bodies are
// hashed as they stream, and an ELF file goes to a temporary file.
func TestMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("streams a few hundred MiB")
	}
	measure := func(fileSize int64) uint64 {
		c := config()
		img, err := mutate.ConfigFile(empty.Image, &c)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, newBigLayer(t, fileSize)); err != nil {
			t.Fatal(err)
		}
		tmp := t.TempDir()
		return testenv.PeakHeap(func() {
			res, err := verify.Image(context.Background(), img, img, verify.Options{Jobs: 1, TempDir: tmp})
			if err != nil {
				t.Fatal(err)
			}
			if res.Violations != 0 || res.Paths != 3 {
				t.Errorf("%d paths, differences %+v", res.Paths, res.Differences)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("%d spool files left", len(left))
			}
		})
	}
	small := measure(16 << 20)
	large := measure(128 << 20)
	t.Logf("peak heap: %d MiB for two 16 MiB files, %d MiB for two 128 MiB files", small>>20, large>>20)
	if large > 48<<20 {
		t.Errorf("peak heap %d MiB for two 128 MiB files, want under 48 MiB", large>>20)
	}
	if large > small+16<<20 {
		t.Errorf("heap grew with file size: %d MiB → %d MiB", small>>20, large>>20)
	}
}

// manyLayer is an uncompressed layer of many empty files in a thousand
// directories (as bench/scale -files writes), regenerated on every read.
type manyLayer struct {
	bigLayer
	files int
}

func (g *manyLayer) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	for j := range g.files {
		name := fmt.Sprintf("d/%03d/f%d", j%1000, j)
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
	}
	return tw.Close()
}

func (g *manyLayer) Compressed() (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(g.writeTar(pw)) }()
	return pr, nil
}

func (g *manyLayer) Uncompressed() (io.ReadCloser, error) { return g.Compressed() }

func newManyLayer(t *testing.T, files int) *manyLayer {
	t.Helper()
	g := &manyLayer{files: files}
	h := sha256.New()
	rc, _ := g.Compressed()
	n, err := io.Copy(h, rc)
	if err != nil {
		t.Fatal(err)
	}
	g.digest, g.size = v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}, n
	return g
}

// The heap used to verify must not grow with the number of files either:
// each layer's records are sorted by path on disk, and the merged
// filesystems are compared as they are read.
func TestMemoryIsBoundedInFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("verifies images of 50k and 200k files")
	}
	measure := func(files int) uint64 {
		c := config()
		img, err := mutate.ConfigFile(empty.Image, &c)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, newManyLayer(t, files)); err != nil {
			t.Fatal(err)
		}
		tmp := t.TempDir()
		return testenv.PeakHeap(func() {
			res, err := verify.Image(context.Background(), img, img, verify.Options{Jobs: 1, TempDir: tmp})
			if err != nil {
				t.Fatal(err)
			}
			if want := files + 1002; res.Violations != 0 || res.Paths != want {
				t.Errorf("%d paths (want %d), %d violations", res.Paths, want, res.Violations)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("%d temporary files left", len(left))
			}
		})
	}
	small := measure(50_000)
	large := measure(200_000)
	t.Logf("peak heap: %d MiB for 50k files, %d MiB for 200k files", small>>20, large>>20)
	if large > small+16<<20 {
		t.Errorf("heap grew with the number of files: %d MiB → %d MiB", small>>20, large>>20)
	}
}
