package rewrite_test

import (
	"context"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/compress/zstdchunked"
	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/rewrite"
)

func chunkedAnnotated(d v1.Descriptor) bool {
	for _, k := range []string{zstdchunked.AnnotationManifestChecksum, zstdchunked.AnnotationManifestPosition, zstdchunked.AnnotationTarSplitPosition} {
		if d.Annotations[k] == "" {
			return false
		}
	}
	return true
}

func TestZstdChunkedImage(t *testing.T) {
	src := dockerImage(t, "amd64", gzipLayer(t, tarOf(t, 1, 30)), gzipLayer(t, tarOf(t, 2, 10)))
	run := func(opts ...rewrite.Option) *rewrite.Result {
		res, err := rewrite.Image(context.Background(), src, append([]rewrite.Option{rewrite.WithTempDir(t.TempDir()), rewrite.WithZstdChunked(true)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Close() })
		return res
	}
	res := run()
	checkImage(t, res.Image, compress.Zstd) // diff_ids unchanged: the same tar bytes
	rewrite.CheckVerified(t, src, res, nil)
	m, _ := res.Image.Manifest()
	for i, d := range m.Layers {
		if !chunkedAnnotated(d) {
			t.Errorf("layer %d lacks the zstd:chunked annotations: %v", i, d.Annotations)
		}
	}
	if again := run(rewrite.WithJobs(1), rewrite.WithEncoderConcurrency(1)); again.Report.OutputDigest != res.Report.OutputDigest {
		t.Errorf("digest changed with jobs: %s, %s", again.Report.OutputDigest, res.Report.OutputDigest)
	}
	// A zstd layer no filter changes is chunked, not reused.
	plain, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	rewrite.CheckVerified(t, src, plain, nil)
	again, err := rewrite.Image(context.Background(), plain.Image, rewrite.WithTempDir(t.TempDir()), rewrite.WithZstdChunked(true))
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	rewrite.CheckVerified(t, plain.Image, again, nil)
	am, _ := again.Image.Manifest()
	for i := range m.Layers {
		if am.Layers[i].Digest != m.Layers[i].Digest || !chunkedAnnotated(am.Layers[i]) {
			t.Errorf("layer %d: chunking the zstd image gave %s, chunking the gzip source %s", i, am.Layers[i].Digest, m.Layers[i].Digest)
		}
	}
	if _, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()), rewrite.WithZstdChunked(true), rewrite.WithCompression(compress.Gzip, 0)); err == nil {
		t.Error("zstd:chunked with gzip only did not fail")
	}
}

func TestZstdChunkedDualAndDebug(t *testing.T) {
	bin := helloBinary(t, "amd64")
	src := dockerImage(t, "amd64", gzipLayer(t, testenv.TarLayer(t, []testenv.File{{Name: "bin/hello", Mode: 0o755, Body: bin}})))
	res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()), rewrite.WithZstdChunked(true),
		rewrite.WithAddCompression(compress.Gzip, 0), rewrite.WithStrip(elf.Unneeded), rewrite.WithDebugImage(true))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	rewrite.CheckVerified(t, src, res, nil)
	for _, idx := range []v1.ImageIndex{res.Index, res.DebugIndex} {
		entries := checkDual(t, idx, compress.Gzip, "amd64")
		for i, e := range entries {
			img, _ := idx.Image(e.Digest)
			m, _ := img.Manifest()
			for _, d := range m.Layers {
				if chunkedAnnotated(d) != (i == 1) {
					t.Errorf("entry %d (zstd %v): layer annotations %v", i, i == 1, d.Annotations)
				}
			}
		}
	}
}
