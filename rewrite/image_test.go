package rewrite_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/manifest"
	"github.com/layerslim/layerslim/rewrite"
	"github.com/layerslim/layerslim/tarfilter"
	"github.com/layerslim/layerslim/verify"
)

// tarOf builds a tar of n files with semi-compressible content.
func tarOf(t testing.TB, seed uint64, n int) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	words := []string{"alpha", "beta", "gamma", "delta", "layer", "image", "zstd", "gzip", "\n"}
	files := make([]testenv.File, 0, n)
	for i := range n {
		var body strings.Builder
		for range 200 + rng.IntN(2000) {
			body.WriteString(words[rng.IntN(len(words))])
			body.WriteByte(' ')
		}
		files = append(files, testenv.File{Name: fmt.Sprintf("dir%d/file%d.txt", seed, i), Mode: 0o644,
			ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg, Body: []byte(body.String())})
	}
	return testenv.TarLayer(t, files)
}

func gzipLayer(t testing.TB, tarball_ []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarball_)), nil
	}, tarball.WithMediaType(types.DockerLayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// dockerImage is a Docker schema 2 image with gzip layers.
func dockerImage(t testing.TB, arch string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.DockerManifestSchema2)
	img = mutate.ConfigMediaType(img, types.DockerConfigJSON)
	for _, l := range layers {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: "test layer"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Entrypoint = []string{"/app"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func dockerIndex(t testing.TB, imgs map[string]v1.Image, order ...string) v1.ImageIndex {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.DockerManifestList)
	var adds []mutate.IndexAddendum
	for _, arch := range order {
		adds = append(adds, mutate.IndexAddendum{Add: imgs[arch], Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	return mutate.AppendManifests(idx, adds...)
}

func uncompressedDigest(t testing.TB, l v1.Layer) v1.Hash {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	codec, r, err := compress.Detect(rc)
	if err != nil {
		t.Fatal(err)
	}
	dr, err := compress.NewReader(codec, r)
	if err != nil {
		t.Fatal(err)
	}
	defer dr.Close()
	h := sha256.New()
	if _, err := io.Copy(h, dr); err != nil {
		t.Fatal(err)
	}
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
}

// checkImage asserts what every output must satisfy: blobs hash to their
// digests and sizes, layers decompress to their diff_ids, and media types
// match the codec.
func checkImage(t *testing.T, img v1.Image, codec compress.Codec) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != len(m.Layers) || len(cf.RootFS.DiffIDs) != len(m.Layers) {
		t.Fatalf("%d layers, %d descriptors, %d diff_ids", len(layers), len(m.Layers), len(cf.RootFS.DiffIDs))
	}
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		blob, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		d, n, _ := v1.SHA256(bytes.NewReader(blob))
		if d != m.Layers[i].Digest || n != m.Layers[i].Size {
			t.Errorf("layer %d: blob is %s/%d, descriptor says %s/%d", i, d, n, m.Layers[i].Digest, m.Layers[i].Size)
		}
		got, _, err := compress.Detect(bytes.NewReader(blob))
		if err != nil || got != codec {
			t.Errorf("layer %d: blob codec %s (%v), want %s", i, got, err, codec)
		}
		if c, _ := compress.MediaTypeCodec(m.Layers[i].MediaType); c != codec {
			t.Errorf("layer %d: media type %s does not say %s", i, m.Layers[i].MediaType, codec)
		}
		if ud := uncompressedDigest(t, l); ud != cf.RootFS.DiffIDs[i] {
			t.Errorf("layer %d decompresses to %s, config says %s", i, ud, cf.RootFS.DiffIDs[i])
		}
	}
	raw, _ := img.RawConfigFile()
	if d, _, _ := v1.SHA256(bytes.NewReader(raw)); d != m.Config.Digest {
		t.Errorf("config hashes to %s, manifest says %s", d, m.Config.Digest)
	}
}

func TestImageRecompressZstd(t *testing.T) {
	src := dockerImage(t, "amd64", gzipLayer(t, tarOf(t, 1, 40)), gzipLayer(t, tarOf(t, 2, 60)))
	res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()), rewrite.WithVersion("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	checkImage(t, res.Image, compress.Zstd)
	rewrite.CheckVerified(t, src, res, nil)

	m, _ := res.Image.Manifest()
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("zstd output has manifest %s, config %s; want OCI types", m.MediaType, m.Config.MediaType)
	}
	srcDigest, _ := src.Digest()
	if m.Annotations[manifest.AnnotationSourceDigest] != srcDigest.String() ||
		m.Annotations[manifest.AnnotationOptions] != "compression=zstd level=3" ||
		m.Annotations[manifest.AnnotationVersion] != "test" {
		t.Errorf("provenance annotations = %v", m.Annotations)
	}
	// Pure recompression: the config blob is the source's, byte for byte.
	want, _ := src.RawConfigFile()
	got, _ := res.Image.RawConfigFile()
	if !bytes.Equal(want, got) {
		t.Error("config blob changed")
	}
	for _, l := range res.Report.Images[0].Layers {
		if l.Action != rewrite.Recompressed || l.Source.Codec != compress.Gzip || l.Output.Codec != compress.Zstd {
			t.Errorf("layer report %+v", l)
		}
	}
}

func TestImageDeterministic(t *testing.T) {
	src := dockerImage(t, "amd64", gzipLayer(t, tarOf(t, 1, 40)), gzipLayer(t, tarOf(t, 2, 60)), gzipLayer(t, tarOf(t, 3, 10)))
	var digests []v1.Hash
	for _, o := range [][]rewrite.Option{
		{rewrite.WithJobs(1), rewrite.WithEncoderConcurrency(1)},
		{rewrite.WithJobs(4), rewrite.WithEncoderConcurrency(4)},
		{rewrite.WithJobs(2)},
	} {
		res, err := rewrite.Image(context.Background(), src, append(o, rewrite.WithTempDir(t.TempDir()))...)
		if err != nil {
			t.Fatal(err)
		}
		rewrite.CheckVerified(t, src, res, nil)
		d, _ := res.Image.Digest()
		digests = append(digests, d)
		res.Close()
	}
	for _, d := range digests[1:] {
		if d != digests[0] {
			t.Fatalf("digests differ across jobs and encoder concurrency: %v", digests)
		}
	}
}

func TestImageReuseAndForce(t *testing.T) {
	src := dockerImage(t, "arm64", gzipLayer(t, tarOf(t, 5, 20)))
	ctx := context.Background()
	first, err := rewrite.Image(ctx, src, rewrite.WithTempDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	rewrite.CheckVerified(t, src, first, nil)
	again, err := rewrite.Image(ctx, first.Image, rewrite.WithTempDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	l1 := first.Report.Images[0].Layers[0]
	l2 := again.Report.Images[0].Layers[0]
	if l2.Action != rewrite.Reused || l2.Output.Digest != l1.Output.Digest {
		t.Errorf("zstd layer recompressed to zstd: %+v", l2)
	}
	checkImage(t, again.Image, compress.Zstd)
	rewrite.CheckVerified(t, first.Image, again, nil)

	forced, err := rewrite.Image(ctx, first.Image, rewrite.WithTempDir(t.TempDir()), rewrite.WithForce(true))
	if err != nil {
		t.Fatal(err)
	}
	defer forced.Close()
	rewrite.CheckVerified(t, first.Image, forced, nil)
	if a := forced.Report.Images[0].Layers[0].Action; a != rewrite.Recompressed {
		t.Errorf("--force gave %s, want recompressed", a)
	}

	// gzip output of a Docker source reuses the gzip layers as they are,
	// and is OCI: its provenance annotations have no place in Docker
	// schema 2 (issue 11).
	gz, err := rewrite.Image(ctx, src, rewrite.WithTempDir(t.TempDir()), rewrite.WithCompression(compress.Gzip, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Close()
	checkImage(t, gz.Image, compress.Gzip)
	rewrite.CheckVerified(t, src, gz, nil)
	m, _ := gz.Image.Manifest()
	sm, _ := src.Manifest()
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON || m.Layers[0].MediaType != types.OCILayer ||
		m.Layers[0].Digest != sm.Layers[0].Digest || m.Annotations[manifest.AnnotationSourceDigest] == "" {
		t.Errorf("gzip output: manifest %s, config %s, layer %s %s, annotations %v", m.MediaType, m.Config.MediaType, m.Layers[0].MediaType, m.Layers[0].Digest, m.Annotations)
	}

	// zstd to gzip converts back, with OCI types kept from the OCI source.
	back, err := rewrite.Image(ctx, first.Image, rewrite.WithTempDir(t.TempDir()), rewrite.WithCompression(compress.Gzip, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	checkImage(t, back.Image, compress.Gzip)
	rewrite.CheckVerified(t, first.Image, back, nil)
	if m, _ := back.Image.Manifest(); m.MediaType != types.OCIManifestSchema1 || m.Layers[0].MediaType != types.OCILayer {
		t.Errorf("OCI zstd → gzip: manifest %s, layer %s", m.MediaType, m.Layers[0].MediaType)
	}

	none, err := rewrite.Image(ctx, src, rewrite.WithTempDir(t.TempDir()), rewrite.WithCompression(compress.None, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer none.Close()
	checkImage(t, none.Image, compress.None)
	rewrite.CheckVerified(t, src, none, nil)
}

// countingReporter counts LayerStarted events per digest.
type countingReporter struct {
	mu      sync.Mutex
	started map[v1.Hash]int
}

func (c *countingReporter) Report(e rewrite.Event) {
	if e.Kind != rewrite.LayerStarted {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started[e.Digest]++
}

func TestIndexPlatformsOrderAndSharedLayers(t *testing.T) {
	base := gzipLayer(t, tarOf(t, 10, 30))
	imgs := map[string]v1.Image{
		"amd64":   dockerImage(t, "amd64", base, gzipLayer(t, tarOf(t, 11, 5))),
		"arm64":   dockerImage(t, "arm64", base, gzipLayer(t, tarOf(t, 12, 5))),
		"s390x":   dockerImage(t, "s390x", base, gzipLayer(t, tarOf(t, 13, 5))),
		"ppc64le": dockerImage(t, "ppc64le", base, gzipLayer(t, tarOf(t, 14, 5))),
	}
	order := []string{"s390x", "amd64", "ppc64le", "arm64"}
	src := dockerIndex(t, imgs, order...)
	rep := &countingReporter{started: map[v1.Hash]int{}}
	res, err := rewrite.Index(context.Background(), src, rewrite.WithTempDir(t.TempDir()), rewrite.WithReporter(rep))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	rewrite.CheckVerified(t, src, res, nil)
	im, err := res.Index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex {
		t.Errorf("index media type %s", im.MediaType)
	}
	if len(im.Manifests) != len(order) {
		t.Fatalf("%d manifests, want %d", len(im.Manifests), len(order))
	}
	for i, d := range im.Manifests {
		if d.Platform == nil || d.Platform.Architecture != order[i] {
			t.Errorf("entry %d: platform %v, want %s", i, d.Platform, order[i])
		}
		img, err := res.Index.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, img, compress.Zstd)
		if got, _ := img.Digest(); got != d.Digest {
			t.Errorf("entry %d digest %s, image %s", i, d.Digest, got)
		}
	}
	bd, _ := base.Digest()
	if rep.started[bd] != 1 {
		t.Errorf("the shared base layer was processed %d times, want once", rep.started[bd])
	}

	sub, err := rewrite.Index(context.Background(), src, rewrite.WithTempDir(t.TempDir()),
		rewrite.WithPlatforms(v1.Platform{OS: "linux", Architecture: "arm64"}, v1.Platform{OS: "linux", Architecture: "s390x"}))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// verify leaves out the platforms the provenance annotation does.
	rewrite.CheckVerified(t, src, sub, nil)
	sim, _ := sub.Index.IndexManifest()
	var got []string
	for _, d := range sim.Manifests {
		got = append(got, d.Platform.Architecture)
	}
	if strings.Join(got, ",") != "s390x,arm64" {
		t.Errorf("--platform subset gave %v, want s390x,arm64 in source order", got)
	}
	if _, err := rewrite.Index(context.Background(), src, rewrite.WithTempDir(t.TempDir()),
		rewrite.WithPlatforms(v1.Platform{OS: "windows", Architecture: "amd64"})); err == nil {
		t.Error("a platform selection that matches nothing did not fail")
	}
}

// brokenLayer serves chosen bytes under another layer's descriptor.
type brokenLayer struct {
	v1.Layer
	blob []byte
}

func (b *brokenLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(b.blob)), nil
}

type brokenImage struct {
	v1.Image
	layers []v1.Layer
}

func (b *brokenImage) Layers() ([]v1.Layer, error) { return b.layers, nil }

func TestImageBadInput(t *testing.T) {
	good := gzipLayer(t, tarOf(t, 20, 30))
	rc, _ := good.Compressed()
	blob, _ := io.ReadAll(rc)
	src := dockerImage(t, "amd64", good)
	digest, _ := good.Digest()
	flipped := bytes.Clone(blob)
	flipped[len(flipped)/2] ^= 0x40
	tests := []struct {
		name string
		blob []byte
		want error
	}{
		{"truncated", blob[:len(blob)/2], nil},
		{"corrupt", flipped, nil},
		{"other content", func() []byte { rc, _ := gzipLayer(t, tarOf(t, 21, 3)).Compressed(); b, _ := io.ReadAll(rc); return b }(), rewrite.ErrDigestMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := &brokenImage{Image: src, layers: []v1.Layer{&brokenLayer{Layer: good, blob: tc.blob}}}
			_, err := rewrite.Image(context.Background(), img, rewrite.WithTempDir(t.TempDir()))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), digest.String()) || !strings.Contains(err.Error(), "linux/amd64") {
				t.Errorf("error %q does not name the platform and the layer", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v is not %v", err, tc.want)
			}
		})
	}
}

func TestImageUnknownMediaType(t *testing.T) {
	l := gzipLayer(t, tarOf(t, 30, 2))
	img := dockerImage(t, "amd64")
	img, err := mutate.Append(img, mutate.Addendum{Layer: l, MediaType: "application/vnd.example.weird"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = rewrite.Image(context.Background(), img, rewrite.WithTempDir(t.TempDir()))
	if !errors.Is(err, rewrite.ErrUnsupportedMediaType) || !strings.Contains(err.Error(), "application/vnd.example.weird") {
		t.Errorf("error = %v, want ErrUnsupportedMediaType naming the type", err)
	}
}

func TestImageNonDistributablePassesThrough(t *testing.T) {
	foreign := gzipLayer(t, tarOf(t, 40, 2))
	fd, _ := foreign.Digest()
	img := dockerImage(t, "amd64", gzipLayer(t, tarOf(t, 41, 3)))
	img, err := mutate.Append(img, mutate.Addendum{Layer: foreign, MediaType: types.DockerForeignLayer, URLs: []string{"https://example.invalid/layer"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := rewrite.Image(context.Background(), img, rewrite.WithTempDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	rewrite.CheckVerified(t, img, res, nil)
	m, _ := res.Image.Manifest()
	got := m.Layers[1]
	if got.Digest != fd || got.MediaType != types.OCIRestrictedLayer || len(got.URLs) != 1 {
		t.Errorf("foreign layer became %+v", got)
	}
	if a := res.Report.Images[0].Layers[1].Action; a != rewrite.PassedThrough {
		t.Errorf("action %s", a)
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	l1 := gzipLayer(t, tarOf(t, 50, 3))
	l2 := gzipLayer(t, tarOf(t, 51, 3))
	src := dockerImage(t, "amd64", l1, l2)
	res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()),
		rewrite.WithSquash(rewrite.SquashAll), rewrite.WithFilter(func(rewrite.Recorder) tarfilter.Filter { return tarfilter.Keep() }))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	rewrite.CheckVerified(t, src, res, nil)
	b, err := json.Marshal(res.Report)
	if err != nil {
		t.Fatal(err)
	}
	var back rewrite.Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("the report does not read back: %v\n%s", err, b)
	}
	if back.Images[0].Layers[0].Output != res.Report.Images[0].Layers[0].Output {
		t.Error("a layer's output blob changed in the round trip")
	}
}

// verify is the judge of the tests' outputs: it rejects what a caller's
// filter changes beyond the guarantee, in a plain rewrite and in a squash.
func TestVerifyRejectsWhatAFilterChanges(t *testing.T) {
	src := dockerImage(t, "amd64", gzipLayer(t, layerTar(t, "d:etc", "f:etc/keep=1")),
		gzipLayer(t, layerTar(t, "f:etc/gone=1", "f:etc/motd=hello", "f:app=bin@755")))
	for _, tc := range []struct {
		name   string
		filter tarfilter.FilterFunc
		what   string
	}{
		{"a file left out", func(ctx context.Context, e tarfilter.Entry, next tarfilter.Writer) error {
			if e.Header.Name == "etc/gone" {
				return nil
			}
			return next.WriteEntry(ctx, e)
		}, verify.WhatMissing},
		{"a body changed", func(ctx context.Context, e tarfilter.Entry, next tarfilter.Writer) error {
			if e.Header.Name == "etc/motd" {
				h := *e.Header
				h.Size = 5
				return next.WriteEntry(ctx, tarfilter.Entry{Header: &h, Body: strings.NewReader("hullo")})
			}
			return next.WriteEntry(ctx, e)
		}, verify.WhatContent},
		{"a mode changed", func(ctx context.Context, e tarfilter.Entry, next tarfilter.Writer) error {
			if e.Header.Name == "app" {
				h := *e.Header
				h.Mode = 0o4755
				e.Header = &h
			}
			return next.WriteEntry(ctx, e)
		}, verify.WhatMode},
	} {
		for _, squash := range []rewrite.SquashMode{rewrite.SquashNone, rewrite.SquashAll} {
			t.Run(tc.name+"-"+string(squash), func(t *testing.T) {
				res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()), rewrite.WithSquash(squash),
					rewrite.WithFilter(func(rewrite.Recorder) tarfilter.Filter { return tc.filter }))
				if err != nil {
					t.Fatal(err)
				}
				defer res.Close()
				rewrite.CheckRejected(t, src, res, nil, tc.what)
			})
		}
	}
}
