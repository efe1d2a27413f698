package rewrite_test

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/rewrite"
)

// genLayer is a gzip layer of a large generated tar that is never held in
// memory: every read regenerates it.
type genLayer struct {
	size           int64 // bytes of file content in the tar
	digest, diffID v1.Hash
	csize          int64
}

func (g *genLayer) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	rng := rand.New(rand.NewPCG(7, 7))
	chunk := make([]byte, 1<<20)
	const fileSize = 8 << 20
	for i := int64(0); i*fileSize < g.size; i++ {
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/%04d.bin", i), Mode: 0o644, Size: fileSize, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		for n := 0; n < fileSize; n += len(chunk) {
			// Half random, half repeated: compressible like real files.
			for j := 0; j < len(chunk)/2; j += 8 {
				v := rng.Uint64()
				for k := range 8 {
					chunk[j+k] = byte(v >> (8 * k))
				}
			}
			if _, err := tw.Write(chunk); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

func (g *genLayer) Compressed() (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() {
		zw, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
		err := g.writeTar(zw)
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

func (g *genLayer) Uncompressed() (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(g.writeTar(pw)) }()
	return pr, nil
}

func (g *genLayer) Digest() (v1.Hash, error)            { return g.digest, nil }
func (g *genLayer) DiffID() (v1.Hash, error)            { return g.diffID, nil }
func (g *genLayer) Size() (int64, error)                { return g.csize, nil }
func (g *genLayer) MediaType() (types.MediaType, error) { return types.DockerLayer, nil }

func newGenLayer(t testing.TB, size int64) *genLayer {
	t.Helper()
	g := &genLayer{size: size}
	hash := func(rc io.ReadCloser) (v1.Hash, int64) {
		defer rc.Close()
		h := sha256.New()
		n, err := io.Copy(h, rc)
		if err != nil {
			t.Fatal(err)
		}
		return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}, n
	}
	rc, _ := g.Compressed()
	g.digest, g.csize = hash(rc)
	rc, _ = g.Uncompressed()
	g.diffID, _ = hash(rc)
	return g
}

// The heap used to recompress a layer must not grow with the layer: a
// layer four times larger costs about the same memory, and it stays within
// issue 15's budget of 96 MiB + 24 MiB per encoder (core), with one
// encoder and with four.
func TestLayerMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("streams a few hundred MiB")
	}
	measure := func(size int64, encoders int, check bool) uint64 {
		img := dockerImage(t, "amd64", newGenLayer(t, size))
		var res *rewrite.Result
		peak := testenv.PeakHeap(func() {
			var err error
			res, err = rewrite.Image(context.Background(), img, rewrite.WithTempDir(t.TempDir()), rewrite.WithJobs(1), rewrite.WithEncoderConcurrency(encoders))
			if err != nil {
				t.Fatal(err)
			}
		})
		if got := res.Report.Images[0].Layers[0].UncompressedBytes; got < size {
			t.Fatalf("read %d uncompressed bytes, want at least %d", got, size)
		}
		if check {
			rewrite.CheckVerified(t, img, res, nil)
		}
		res.Close()
		return peak
	}
	small := measure(96<<20, 1, true) // six frames: the pipeline is full
	large := measure(256<<20, 1, false)
	four := measure(256<<20, 4, false)
	t.Logf("peak heap, 1 encoder: %d MiB for a 96 MiB layer, %d MiB for a 256 MiB layer; 4 encoders: %d MiB", small>>20, large>>20, four>>20)
	if limit := uint64(96+24) << 20; large > limit {
		t.Errorf("peak heap %d MiB for a 256 MiB layer and 1 encoder, want at most %d MiB", large>>20, limit>>20)
	}
	if limit := uint64(96+4*24) << 20; four > limit {
		t.Errorf("peak heap %d MiB for a 256 MiB layer and 4 encoders, want at most %d MiB", four>>20, limit>>20)
	}
	// Which buffers are live at the sampled moments varies by about a
	// frame with timing.
	if large > small+compress.ZstdFrameSize+8<<20 {
		t.Errorf("heap grew with layer size: %d MiB → %d MiB", small>>20, large>>20)
	}
}

// BenchmarkRecompressLayer measures the whole pipeline on one gzip layer:
// verify, gunzip, hash, zstd -3, hash, spool. Profile it with
// go test ./rewrite -run '^$' -bench RecompressLayer -cpuprofile cpu.prof
func BenchmarkRecompressLayer(b *testing.B) {
	g := &genLayer{size: 128 << 20}
	path := filepath.Join(b.TempDir(), "layer.tar.gz")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	rc, _ := g.Compressed()
	if _, err := io.Copy(f, rc); err != nil {
		b.Fatal(err)
	}
	f.Close()
	l, err := tarball.LayerFromFile(path, tarball.WithMediaType(types.DockerLayer))
	if err != nil {
		b.Fatal(err)
	}
	img := dockerImage(b, "amd64", l)
	b.SetBytes(g.size)
	b.ResetTimer()
	for range b.N {
		res, err := rewrite.Image(context.Background(), img, rewrite.WithTempDir(b.TempDir()), rewrite.WithJobs(1))
		if err != nil {
			b.Fatal(err)
		}
		res.Close()
	}
}
