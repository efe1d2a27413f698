package rewrite_test

import (
	"context"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/rewrite"
)

// checkDual asserts the shape of a dual-compression index: per platform (in
// want's order) one non-zstd entry, then, after all of those, one zstd
// entry per platform carrying the containers/image annotation; entries of
// one platform share their config and diff_ids. It returns the entries.
func checkDual(t *testing.T, idx v1.ImageIndex, first compress.Codec, want ...string) []v1.Descriptor {
	t.Helper()
	if err := validate.Index(idx, validate.Fast); err != nil {
		t.Fatalf("validate.Index: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex {
		t.Errorf("index media type %s, want an OCI index", im.MediaType)
	}
	if len(im.Manifests) != 2*len(want) {
		t.Fatalf("%d entries, want %d", len(im.Manifests), 2*len(want))
	}
	configs := map[string]v1.Hash{}
	for i, d := range im.Manifests {
		arch := want[i%len(want)]
		zstd := i >= len(want)
		if d.Platform == nil || d.Platform.Architecture != arch {
			t.Errorf("entry %d: platform %v, want %s", i, d.Platform, arch)
		}
		if got := d.Annotations[rewrite.AnnotationZstdVariant]; (got == "true") != zstd || (!zstd && got != "") {
			t.Errorf("entry %d: annotation %q = %q, zstd entry %v", i, rewrite.AnnotationZstdVariant, got, zstd)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		codec := compress.Gzip
		if zstd {
			codec = compress.Zstd
		}
		checkImage(t, img, codec)
		if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
			t.Errorf("entry %d: manifest type %s, want OCI", i, mt)
		}
		cn, _ := img.ConfigName()
		if c, ok := configs[arch]; ok && c != cn {
			t.Errorf("%s: the two variants have different configs %s and %s", arch, c, cn)
		}
		configs[arch] = cn
	}
	return im.Manifests
}

func TestAddCompressionSingleImage(t *testing.T) {
	src := dockerImage(t, "amd64", gzipLayer(t, tarOf(t, 1, 20)), gzipLayer(t, tarOf(t, 2, 30)))
	for _, tc := range []struct{ codec, add compress.Codec }{{compress.Zstd, compress.Gzip}, {compress.Gzip, compress.Zstd}} {
		t.Run(string(tc.codec)+"+"+string(tc.add), func(t *testing.T) {
			rep := &countingReporter{started: map[v1.Hash]int{}}
			res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()),
				rewrite.WithCompression(tc.codec, 0), rewrite.WithAddCompression(tc.add, 0), rewrite.WithReporter(rep))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Close()
			if res.Image != nil || res.Index == nil {
				t.Fatal("a single image with an added compression did not give an index")
			}
			checkDual(t, res.Index, compress.Gzip, "amd64")
			rewrite.CheckVerified(t, src, res, nil)
			if d, _ := res.Index.Digest(); res.Report.OutputDigest != d {
				t.Errorf("report says %s, index is %s", res.Report.OutputDigest, d)
			}
			if len(res.Report.Images) != 1 || len(res.Report.Variants) != 1 || res.Report.Variants[0].Layers[0].Output.Codec != tc.add {
				t.Errorf("report: %d images, %d variants", len(res.Report.Images), len(res.Report.Variants))
			}
			for d, n := range rep.started {
				if n != 1 {
					t.Errorf("layer %s was read %d times, want once for both codecs", d, n)
				}
			}
			if !strings.Contains(res.Report.Options, "add-compression="+string(tc.add)) {
				t.Errorf("options %q do not record the added compression", res.Report.Options)
			}
		})
	}
}

func TestAddCompressionDeterministicAndSameAsSingle(t *testing.T) {
	src := dockerImage(t, "amd64", gzipLayer(t, tarOf(t, 3, 40)))
	run := func(opts ...rewrite.Option) *rewrite.Result {
		res, err := rewrite.Image(context.Background(), src, append([]rewrite.Option{rewrite.WithTempDir(t.TempDir()), rewrite.WithForce(true)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Close() })
		rewrite.CheckVerified(t, src, res, nil)
		return res
	}
	a := run(rewrite.WithAddCompression(compress.Gzip, 0), rewrite.WithJobs(1), rewrite.WithEncoderConcurrency(1))
	b := run(rewrite.WithAddCompression(compress.Gzip, 0), rewrite.WithJobs(4), rewrite.WithEncoderConcurrency(3))
	if a.Report.OutputDigest != b.Report.OutputDigest {
		t.Errorf("digests differ with jobs: %s and %s", a.Report.OutputDigest, b.Report.OutputDigest)
	}
	// Each variant's layers are the bytes a single-codec run writes.
	z, g := run(), run(rewrite.WithCompression(compress.Gzip, 0))
	zl, _ := z.Image.Layers()
	gl, _ := g.Image.Layers()
	im, _ := a.Index.IndexManifest()
	for i, want := range []v1.Layer{gl[0], zl[0]} {
		img, _ := a.Index.Image(im.Manifests[i].Digest)
		ls, _ := img.Layers()
		got, _ := ls[0].Digest()
		w, _ := want.Digest()
		if got != w {
			t.Errorf("entry %d: layer %s, a single-codec run writes %s", i, got, w)
		}
	}
}

func TestAddCompressionIndexAndDebug(t *testing.T) {
	base := gzipLayer(t, tarOf(t, 10, 10))
	bin := helloBinary(t, "amd64")
	imgs := map[string]v1.Image{
		"amd64": dockerImage(t, "amd64", base, gzipLayer(t, testenv.TarLayer(t, []testenv.File{{Name: "bin/hello", Mode: 0o755, Body: bin}}))),
		"arm64": dockerImage(t, "arm64", base, gzipLayer(t, tarOf(t, 12, 5))),
	}
	src := dockerIndex(t, imgs, "arm64", "amd64")
	// An attestation-like entry is kept among the non-zstd entries.
	res, err := rewrite.Index(context.Background(), src, rewrite.WithTempDir(t.TempDir()),
		rewrite.WithAddCompression(compress.Gzip, 0), rewrite.WithStrip(elf.Unneeded), rewrite.WithDebugImage(true))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	checkDual(t, res.Index, compress.Gzip, "arm64", "amd64")
	rewrite.CheckVerified(t, src, res, nil)
	if res.DebugIndex == nil {
		t.Fatal("no debug index")
	}
	dbg := checkDual(t, res.DebugIndex, compress.Gzip, "arm64", "amd64")
	// The debug image of each variant is its slim image plus one layer, or
	// the slim image itself where nothing was split (arm64 has no ELF file).
	slim, _ := res.Index.IndexManifest()
	for i, d := range dbg {
		if d.Digest == slim.Manifests[i].Digest {
			if d.Platform == nil || d.Platform.Architecture != "arm64" {
				t.Errorf("debug entry %d (%v) is its slim image, but it has a program to split", i, d.Platform)
			}
			continue
		}
		di, _ := res.DebugIndex.Image(d.Digest)
		si, _ := res.Index.Image(slim.Manifests[i].Digest)
		dl, _ := di.Layers()
		sl, _ := si.Layers()
		if len(dl) != len(sl)+1 {
			t.Errorf("debug entry %d: %d layers, slim %d", i, len(dl), len(sl))
		}
		for j := range sl {
			a, _ := sl[j].Digest()
			b, _ := dl[j].Digest()
			if a != b {
				t.Errorf("debug entry %d layer %d: %s, slim has %s", i, j, b, a)
			}
		}
	}
	if len(res.Report.Variants) != 2 {
		t.Errorf("%d variants in the report, want 2", len(res.Report.Variants))
	}
}

func TestAddCompressionRerunKeepsOnePerCompression(t *testing.T) {
	imgs := map[string]v1.Image{
		"amd64": dockerImage(t, "amd64", gzipLayer(t, tarOf(t, 20, 10))),
		"arm64": dockerImage(t, "arm64", gzipLayer(t, tarOf(t, 21, 10))),
	}
	src := dockerIndex(t, imgs, "amd64", "arm64")
	first, err := rewrite.Index(context.Background(), src, rewrite.WithTempDir(t.TempDir()), rewrite.WithAddCompression(compress.Gzip, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	rewrite.CheckVerified(t, src, first, nil)
	for _, tc := range []struct {
		name string
		opts []rewrite.Option
		n    int
	}{
		{"dual again", []rewrite.Option{rewrite.WithAddCompression(compress.Gzip, 0)}, 4},
		{"gzip first", []rewrite.Option{rewrite.WithCompression(compress.Gzip, 0), rewrite.WithAddCompression(compress.Zstd, 0)}, 4},
		{"zstd only", nil, 2},
		{"gzip only", []rewrite.Option{rewrite.WithCompression(compress.Gzip, 0)}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			again, err := rewrite.Index(context.Background(), first.Index, append([]rewrite.Option{rewrite.WithTempDir(t.TempDir())}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			rewrite.CheckVerified(t, first.Index, again, nil)
			rewrite.CheckVerified(t, src, again, nil)
			if tc.n == 4 {
				checkDual(t, again.Index, compress.Gzip, "amd64", "arm64")
			}
			im, _ := again.Index.IndexManifest()
			if len(im.Manifests) != tc.n {
				t.Errorf("%d entries, want %d", len(im.Manifests), tc.n)
			}
			for _, d := range im.Manifests {
				img, _ := again.Index.Image(d.Digest)
				ls, _ := img.Layers()
				mt, _ := ls[0].MediaType()
				c, _ := compress.MediaTypeCodec(mt)
				if tc.n == 2 && d.Annotations[rewrite.AnnotationZstdVariant] != "" {
					t.Errorf("a single-compression index keeps the zstd variant annotation on %s (%s)", d.Platform, c)
				}
			}
			if len(again.Report.DroppedVariants) != 2 {
				t.Errorf("report lists %d dropped variants, want 2", len(again.Report.DroppedVariants))
			}
		})
	}
}

func TestAddCompressionBadOptions(t *testing.T) {
	src := dockerImage(t, "amd64", gzipLayer(t, tarOf(t, 1, 2)))
	for _, tc := range []struct {
		name string
		opts []rewrite.Option
		want string
	}{
		{"same codec", []rewrite.Option{rewrite.WithAddCompression(compress.Zstd, 0)}, "is the compression itself"},
		{"unknown codec", []rewrite.Option{rewrite.WithAddCompression("lz4", 0)}, "want gzip or zstd"},
		{"none added", []rewrite.Option{rewrite.WithAddCompression(compress.None, 0)}, "want gzip or zstd"},
		{"none primary", []rewrite.Option{rewrite.WithCompression(compress.None, 0), rewrite.WithAddCompression(compress.Zstd, 0)}, "gzip or zstd, not none"},
		{"bad level", []rewrite.Option{rewrite.WithAddCompression(compress.Gzip, 12)}, "level 12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rewrite.Image(context.Background(), src, append([]rewrite.Option{rewrite.WithTempDir(t.TempDir())}, tc.opts...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}
