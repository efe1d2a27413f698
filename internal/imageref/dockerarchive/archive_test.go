package dockerarchive_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/klauspost/compress/zstd"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/imageref/reftest"
)

// checkUncompressedView checks that every layer of img is presented as
// stored by `docker save`: uncompressed media type, Compressed() bytes equal
// to Uncompressed() bytes and to want, Digest() = DiffID(), Size() = length.
// ggcr's own tarball image would gzip here.
func checkUncompressedView(t *testing.T, img v1.Image, want [][]byte) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != len(want) {
		t.Fatalf("%d layers, want %d", len(layers), len(want))
	}
	for i, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			t.Fatal(err)
		}
		if mt != types.DockerUncompressedLayer {
			t.Errorf("layer %d: media type %s, want %s", i, mt, types.DockerUncompressedLayer)
		}
		c := reftest.ReadAll(t, l.Compressed)
		u := reftest.ReadAll(t, l.Uncompressed)
		if !bytes.Equal(c, u) || !bytes.Equal(u, want[i]) {
			t.Errorf("layer %d: Compressed() (%d bytes) and Uncompressed() (%d bytes) are not the stored %d bytes", i, len(c), len(u), len(want[i]))
		}
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		diffID, err := l.DiffID()
		if err != nil {
			t.Fatal(err)
		}
		if d != diffID || d != reftest.Sha(want[i]) {
			t.Errorf("layer %d: digest %s, diff_id %s, want both %s", i, d, diffID, reftest.Sha(want[i]))
		}
		size, err := l.Size()
		if err != nil {
			t.Fatal(err)
		}
		if size != int64(len(want[i])) {
			t.Errorf("layer %d: size %d, want %d", i, size, len(want[i]))
		}
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.DockerManifestSchema2 || m.Config.MediaType != types.DockerConfigJSON {
		t.Errorf("manifest media types %s, %s; want Docker schema 2", m.MediaType, m.Config.MediaType)
	}
	for i, d := range m.Layers {
		if d.MediaType != types.DockerUncompressedLayer || d.Digest != reftest.Sha(want[i]) || d.Size != int64(len(want[i])) {
			t.Errorf("manifest layer %d: %+v", i, d)
		}
	}
	reftest.CheckConsistent(t, img)
}

func TestArchiveDockerSave(t *testing.T) {
	ctx := context.Background()
	l1, l2, l3 := reftest.LayerTar(t, 1, 3000), reftest.LayerTar(t, 2, 100), reftest.LayerTar(t, 3, 70000)
	for _, style := range []saveStyle{legacy, docker25} {
		t.Run([]string{"legacy", "docker25"}[style], func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "save.tar")
			// l1 twice: legacy archives link the second copy to the first.
			writeDockerSave(t, file, style,
				saveImage{repoTags: []string{"example.com/app:1.0", "app:latest"}, layers: [][]byte{l1, l2, l1}},
				saveImage{repoTags: []string{"other:2"}, layers: [][]byte{l3}},
			)
			src, err := imageref.Open(ctx, reftest.MustParse(t, "docker-archive:"+file+":example.com/app:1.0"), imageref.Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkUncompressedView(t, src.Image, [][]byte{l1, l2, l1})
			if src.Descriptor.Digest != reftest.MustDigest(t, src.Image) || src.Descriptor.MediaType != types.DockerManifestSchema2 {
				t.Errorf("descriptor %+v does not describe the image", src.Descriptor)
			}

			// RepoTags compare by full name, as in ggcr: "app" is app:latest.
			src, err = imageref.Open(ctx, reftest.MustParse(t, "docker-archive:"+file+":app"), imageref.Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkUncompressedView(t, src.Image, [][]byte{l1, l2, l1})
			src, err = imageref.Open(ctx, reftest.MustParse(t, "docker-archive:"+file+":other:2"), imageref.Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkUncompressedView(t, src.Image, [][]byte{l3})

			_, err = imageref.Open(ctx, reftest.MustParse(t, "docker-archive:"+file), imageref.Options{})
			if !errors.Is(err, imageref.ErrAmbiguous) || !strings.Contains(err.Error(), "example.com/app:1.0, app:latest, other:2") {
				t.Errorf("Open without tag: %v, want ErrAmbiguous listing the tags", err)
			}
			_, err = imageref.Open(ctx, reftest.MustParse(t, "docker-archive:"+file+":nope:1"), imageref.Options{})
			if !errors.Is(err, imageref.ErrNotFound) {
				t.Errorf("Open(nope:1): %v, want ErrNotFound", err)
			}
		})
	}
}

func TestArchiveUncompressedRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	layers := [][]byte{reftest.LayerTar(t, 1, 5000), reftest.LayerTar(t, 2, 10)}
	in := filepath.Join(dir, "in.tar")
	writeDockerSave(t, in, legacy, saveImage{layers: layers})
	src, err := imageref.Open(ctx, reftest.MustParse(t, "docker-archive:"+in), imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := reftest.MustDigest(t, src.Image)

	// Written back, the layers stay uncompressed ("<diff_id>.tar") and the
	// image keeps its digest.
	out := filepath.Join(dir, "out.tar")
	got, err := imageref.WriteImage(ctx, reftest.MustParse(t, "docker-archive:"+out+":app:1"), src.Image, imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("WriteImage returned %s, want %s", got, want)
	}
	again, err := imageref.Open(ctx, reftest.MustParse(t, "docker-archive:"+out+":app:1"), imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if reftest.MustDigest(t, again.Image) != want {
		t.Errorf("rewritten archive has digest %s, want %s", reftest.MustDigest(t, again.Image), want)
	}
	checkUncompressedView(t, again.Image, layers)

	// To an OCI layout too.
	if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, "oci:"+filepath.Join(dir, "layout")+":x"), src.Image, imageref.Options{}); err != nil {
		t.Fatal(err)
	}
	fromLayout, err := imageref.Open(ctx, reftest.MustParse(t, "oci:"+filepath.Join(dir, "layout")+":x"), imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if reftest.MustDigest(t, fromLayout.Image) != want {
		t.Errorf("OCI copy has digest %s, want %s", reftest.MustDigest(t, fromLayout.Image), want)
	}
}

func TestArchiveImageRoundTrip(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "img.tar")
	img := reftest.RandomImage(t, 5)
	want := reftest.MustDigest(t, img)
	got, err := imageref.WriteImage(ctx, reftest.MustParse(t, "docker-archive:"+file+":example.com/app:1.0"), img, imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("WriteImage returned %s, want %s", got, want)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || len(m[0].RepoTags) != 1 || m[0].RepoTags[0] != "example.com/app:1.0" {
		t.Errorf("manifest.json = %+v, want one image tagged example.com/app:1.0", m)
	}

	for _, s := range []string{"docker-archive:" + file, "docker-archive:" + file + ":example.com/app:1.0"} {
		src, err := imageref.Open(ctx, reftest.MustParse(t, s), imageref.Options{})
		if err != nil {
			t.Fatal(err)
		}
		reftest.CheckSameLayers(t, img, src.Image)
		// random.Image's layers are gzip: stored so, presented so, same digest.
		if reftest.MustDigest(t, src.Image) != want {
			t.Errorf("Open(%s) digest %s, want %s", s, reftest.MustDigest(t, src.Image), want)
		}
		if err := validate.Image(src.Image); err != nil {
			t.Errorf("validate: %v", err)
		}
	}
}

func TestArchiveUntagged(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "img.tar")
	img := reftest.RandomImage(t, 6)
	if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, "docker-archive:"+file), img, imageref.Options{}); err != nil {
		t.Fatal(err)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || len(m[0].RepoTags) != 0 {
		t.Errorf("manifest.json = %+v, want one image without RepoTags", m)
	}
	src, err := imageref.Open(ctx, reftest.MustParse(t, "docker-archive:"+file), imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if reftest.MustDigest(t, src.Image) != reftest.MustDigest(t, img) {
		t.Errorf("untagged archive digest %s, want %s", reftest.MustDigest(t, src.Image), reftest.MustDigest(t, img))
	}
}

func TestArchiveCompressedBlobs(t *testing.T) {
	ctx := context.Background()
	raw := [][]byte{reftest.LayerTar(t, 8, 4000), reftest.LayerTar(t, 9, 300)}
	var layers []v1.Layer
	for _, b := range raw {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
			tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), layers...)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "zstd.tar")
	want, err := imageref.WriteImage(ctx, reftest.MustParse(t, "docker-archive:"+file+":z:1"), img, imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := imageref.Open(ctx, reftest.MustParse(t, "docker-archive:"+file), imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := src.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range got {
		if mt, _ := l.MediaType(); mt != types.OCILayerZStd {
			t.Errorf("layer %d: media type %s, want zstd", i, mt)
		}
		if c := reftest.ReadAll(t, l.Compressed); !bytes.Equal(c, reftest.ReadAll(t, layers[i].Compressed)) {
			t.Errorf("layer %d: Compressed() is not the stored zstd blob", i)
		}
		if u := reftest.ReadAll(t, l.Uncompressed); !bytes.Equal(u, raw[i]) {
			t.Errorf("layer %d: Uncompressed() differs", i)
		}
	}
	if mt, _ := src.Image.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s, want OCI (zstd layers)", mt)
	}
	if reftest.MustDigest(t, src.Image) != want {
		t.Errorf("digest %s, want %s", reftest.MustDigest(t, src.Image), want)
	}
	reftest.CheckConsistent(t, src.Image)
}

// archiveLayers opens the docker-archive file and returns its image and
// the image's layers.
func archiveLayers(t *testing.T, file string) (v1.Image, []v1.Layer) {
	t.Helper()
	src, err := imageref.Open(context.Background(), reftest.MustParse(t, "docker-archive:"+file), imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := src.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return src.Image, ls
}

func TestArchiveGzipBlobWithoutDigestName(t *testing.T) {
	// A legacy-named ("<id>/layer.tar") gzip blob: the digest is hashed once,
	// on demand.
	raw := reftest.LayerTar(t, 10, 2000)
	gz, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
	if err != nil {
		t.Fatal(err)
	}
	blob := reftest.ReadAll(t, gz.Compressed)
	file := filepath.Join(t.TempDir(), "gz.tar")
	writeDockerSave(t, file, legacy, saveImage{layers: [][]byte{raw}, diffIDs: []v1.Hash{reftest.Sha(raw)}, compress: func([]byte) []byte { return blob }})
	img, ls := archiveLayers(t, file)
	if d := reftest.MustDigest(t, ls[0]); d != reftest.Sha(blob) {
		t.Errorf("digest %s, want %s", d, reftest.Sha(blob))
	}
	if mt, _ := ls[0].MediaType(); mt != types.DockerLayer {
		t.Errorf("media type %s, want %s", mt, types.DockerLayer)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("validate: %v", err)
	}
}

func TestArchiveDigestMismatch(t *testing.T) {
	l := reftest.LayerTar(t, 11, 1000)
	file := filepath.Join(t.TempDir(), "bad.tar")
	writeDockerSave(t, file, legacy, saveImage{layers: [][]byte{l}, diffIDs: []v1.Hash{reftest.Sha([]byte("something else"))}})
	_, ls := archiveLayers(t, file)
	rc, err := ls[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadAll(rc); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Errorf("reading a layer whose diff_id is wrong: %v, want a digest error", err)
	}
}

func TestArchiveIndexRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "idx.tar")
	_, err := imageref.WriteIndex(context.Background(), reftest.MustParse(t, "docker-archive:"+file), reftest.RandomIndex(t, 1), imageref.Options{})
	if !errors.Is(err, imageref.ErrIndexUnsupported) || !strings.Contains(err.Error(), "--platform") {
		t.Errorf("WriteIndex to a docker-archive: %v, want ErrIndexUnsupported", err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("a refused write created %s", file)
	}
}

func TestArchiveSamePathAndAtomicWrite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "app.tar")
	writeDockerSave(t, file, legacy, saveImage{repoTags: []string{"app:1"}, layers: [][]byte{reftest.LayerTar(t, 1, 2000), reftest.LayerTar(t, 2, 3000)}})

	// Read from and write to the same file: the source is never written in place.
	src, err := imageref.Open(ctx, reftest.MustParse(t, "docker-archive:"+file+":app:1"), imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := reftest.MustDigest(t, src.Image)
	if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, "docker-archive:"+file+":app:2"), src.Image, imageref.Options{}); err != nil {
		t.Fatal(err)
	}
	again, err := imageref.Open(ctx, reftest.MustParse(t, "docker-archive:"+file+":app:2"), imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if reftest.MustDigest(t, again.Image) != want {
		t.Errorf("rewritten in place: digest %s, want %s", reftest.MustDigest(t, again.Image), want)
	}

	// A write that fails leaves the file as it was and no temporary file.
	before, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := again.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	broken, err := mutate.AppendLayers(empty.Image, reftest.FailingLayer{Layer: ls[0]})
	if err != nil {
		t.Fatal(err)
	}
	_, err = imageref.WriteImage(ctx, reftest.MustParse(t, "docker-archive:"+file+":app:3"), broken, imageref.Options{})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") || !strings.HasPrefix(err.Error(), "writing docker-archive:"+file+":app:3: ") {
		t.Fatalf("failing write: %v", err)
	}
	after, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("a failed write changed %s", file)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != 1 {
		var names []string
		for _, de := range des {
			names = append(names, de.Name())
		}
		t.Errorf("directory holds %v, want only app.tar", names)
	}
}

func TestArchiveProgress(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.tar")
	updates := make(chan v1.Update, 1<<16)
	if _, err := imageref.WriteImage(context.Background(), reftest.MustParse(t, "docker-archive:"+file), reftest.RandomImage(t, 1), imageref.Options{Progress: updates}); err != nil {
		t.Fatal(err)
	}
	close(updates) // still ours to close
	var last v1.Update
	n := 0
	for u := range updates {
		if u.Error == nil {
			last = u
		}
		n++
	}
	if n == 0 || last.Total == 0 || last.Complete != last.Total {
		t.Errorf("%d updates, last %+v; want progress up to the total", n, last)
	}
}

// Layer blobs are told apart by compress.Sniff, the rule the rest of
// layerslim uses: a zstd blob that starts with a skippable frame is zstd
// (it was taken for an uncompressed tar), and an lz4, xz or bzip2 blob is
// refused at Open with an error naming the layer (it was taken for an
// uncompressed tar and failed later on its digest).
func TestArchiveCodecIsCompressSniff(t *testing.T) {
	ctx := context.Background()
	raw := reftest.LayerTar(t, 11, 500)
	var zst bytes.Buffer
	zw, err := zstd.NewWriter(&zst)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(raw)
	zw.Close()
	skippable := append([]byte{0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 'l', 's', 'l', 'm'}, zst.Bytes()...)
	lz4 := append([]byte{0x04, 0x22, 0x4d, 0x18}, raw...)

	dir := t.TempDir()
	file := filepath.Join(dir, "skippable.tar")
	writeDockerSave(t, file, legacy, saveImage{layers: [][]byte{raw}, diffIDs: []v1.Hash{reftest.Sha(raw)}, compress: func([]byte) []byte { return skippable }})
	_, ls := archiveLayers(t, file)
	if mt, _ := ls[0].MediaType(); mt != types.OCILayerZStd {
		t.Errorf("a zstd blob with a skippable frame has media type %s, want %s", mt, types.OCILayerZStd)
	}
	// Uncompressed decodes it with compress.NewReader, as every reader of
	// layerslim does (ggcr's decoder, used before, does not know skippable
	// frames and gave wrong bytes).
	if u := reftest.ReadAll(t, ls[0].Uncompressed); !bytes.Equal(u, raw) {
		t.Errorf("Uncompressed() of a zstd blob with a skippable frame: %d bytes, not the %d of the tar", len(u), len(raw))
	}

	file = filepath.Join(dir, "lz4.tar")
	writeDockerSave(t, file, legacy, saveImage{layers: [][]byte{raw}, diffIDs: []v1.Hash{reftest.Sha(raw)}, compress: func([]byte) []byte { return lz4 }})
	_, err = imageref.Open(ctx, reftest.MustParse(t, "docker-archive:"+file), imageref.Options{})
	if !errors.Is(err, compress.ErrUnsupported) || !strings.Contains(err.Error(), "layer 0") || !strings.Contains(err.Error(), "lz4") {
		t.Errorf("Open of an archive with an lz4 layer = %v, want compress.ErrUnsupported naming layer 0 and lz4", err)
	}

	whole := filepath.Join(dir, "save.tar.xz")
	os.WriteFile(whole, append([]byte{0xfd, '7', 'z', 'X', 'Z', 0x00}, raw...), 0o644)
	_, err = imageref.Open(ctx, reftest.MustParse(t, "docker-archive:"+whole), imageref.Options{})
	if !errors.Is(err, compress.ErrUnsupported) || !strings.Contains(err.Error(), "compressed as a whole") {
		t.Errorf("Open of an xz-compressed archive = %v, want compress.ErrUnsupported, compressed as a whole", err)
	}
}
