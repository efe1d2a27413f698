package imageref

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func randomImage(t *testing.T, seed int64) v1.Image {
	t.Helper()
	img, err := random.Image(1024, 3, random.WithSource(rand.NewSource(seed)))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func randomIndex(t *testing.T, seed int64) v1.ImageIndex {
	t.Helper()
	idx, err := random.Index(512, 2, 3, random.WithSource(rand.NewSource(seed)))
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func mustParse(t *testing.T, s string) Ref {
	t.Helper()
	r, err := Parse(s, false)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustDigest(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func readAll(t *testing.T, open func() (io.ReadCloser, error)) []byte {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// layerTar returns an uncompressed layer: a tar holding one file of n
// pseudo-random bytes.
func layerTar(t *testing.T, seed int64, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(body)
	if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("file-%d", seed), Mode: 0o644, Size: int64(n), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// saveImage is one image of a hand-made `docker save` archive.
type saveImage struct {
	repoTags []string
	layers   [][]byte            // uncompressed layer tars, bottom first
	diffIDs  []v1.Hash           // defaults to the digests of layers
	compress func([]byte) []byte // optional: how the blobs are stored
}

// saveStyle is the layout of a hand-made `docker save` archive.
type saveStyle int

const (
	// legacy: "<id>/layer.tar", a repeated layer is a symlink to its first
	// copy, config "<hex>.json" (Docker before 25).
	legacy saveStyle = iota
	// docker25: "blobs/sha256/<hex>" for layers and config, LayerSources
	// listing uncompressed OCI layers, plus oci-layout (Docker 25+).
	docker25
)

// writeDockerSave writes a `docker save`-like archive without going through
// ggcr, so that the reader is tested against what Docker produces.
func writeDockerSave(t *testing.T, file string, style saveStyle, imgs ...saveImage) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(hdr *tar.Header, body []byte) {
		t.Helper()
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		hdr.Size = int64(len(body))
		hdr.Mode = 0o644
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]string{} // blob digest -> member name
	type entry struct {
		Config       string
		RepoTags     []string
		Layers       []string
		LayerSources map[v1.Hash]v1.Descriptor `json:",omitempty"`
	}
	var manifest []entry
	if style == docker25 {
		add(&tar.Header{Name: "oci-layout"}, []byte(`{"imageLayoutVersion":"1.0.0"}`))
	}
	for n, img := range imgs {
		diffIDs := img.diffIDs
		if diffIDs == nil {
			for _, l := range img.layers {
				diffIDs = append(diffIDs, sha(l))
			}
		}
		cfg := v1.ConfigFile{
			Architecture: "amd64",
			OS:           "linux",
			RootFS:       v1.RootFS{Type: "layers", DiffIDs: diffIDs},
			Config:       v1.Config{Env: []string{fmt.Sprintf("IMAGE=%d", n)}},
		}
		rawCfg, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		e := entry{RepoTags: img.repoTags}
		if style == docker25 {
			e.Config = "blobs/sha256/" + sha(rawCfg).Hex
			e.LayerSources = map[v1.Hash]v1.Descriptor{}
		} else {
			e.Config = sha(rawCfg).Hex + ".json"
		}
		add(&tar.Header{Name: e.Config}, rawCfg)
		for i, l := range img.layers {
			blob := l
			if img.compress != nil {
				blob = img.compress(l)
			}
			d := sha(blob)
			var member string
			switch style {
			case docker25:
				member = "blobs/sha256/" + d.Hex
				e.LayerSources[diffIDs[i]] = v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: int64(len(blob)), Digest: d}
				if _, ok := seen[d.String()]; !ok {
					add(&tar.Header{Name: member}, blob)
				}
			default:
				id := sha([]byte(fmt.Sprintf("v1 id %d/%d", n, i))).Hex
				member = id + "/layer.tar"
				if first, ok := seen[d.String()]; ok {
					add(&tar.Header{Name: id + "/", Typeflag: tar.TypeDir}, nil)
					add(&tar.Header{Name: member, Typeflag: tar.TypeSymlink, Linkname: "../" + first}, nil)
				} else {
					add(&tar.Header{Name: id + "/", Typeflag: tar.TypeDir}, nil)
					add(&tar.Header{Name: id + "/VERSION"}, []byte("1.0"))
					add(&tar.Header{Name: member}, blob)
				}
			}
			if _, ok := seen[d.String()]; !ok {
				seen[d.String()] = member
			}
			e.Layers = append(e.Layers, member)
		}
		manifest = append(manifest, e)
	}
	raw, err := json.Marshal(manifest)
	if err != nil {
		t.Fatal(err)
	}
	add(&tar.Header{Name: "manifest.json"}, raw)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkSameLayers checks that got has want's layers: same diff_ids and the
// same uncompressed bytes.
func checkSameLayers(t *testing.T, want, got v1.Image) {
	t.Helper()
	wl, err := want.Layers()
	if err != nil {
		t.Fatal(err)
	}
	gl, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(wl) != len(gl) {
		t.Fatalf("%d layers, want %d", len(gl), len(wl))
	}
	for i := range wl {
		wd, err := wl[i].DiffID()
		if err != nil {
			t.Fatal(err)
		}
		gd, err := gl[i].DiffID()
		if err != nil {
			t.Fatal(err)
		}
		if wd != gd {
			t.Errorf("layer %d: diff_id %s, want %s", i, gd, wd)
		}
		if !bytes.Equal(readAll(t, gl[i].Uncompressed), readAll(t, wl[i].Uncompressed)) {
			t.Errorf("layer %d: uncompressed bytes differ", i)
		}
	}
}

// checkConsistent checks what validate.Image checks for gzip layers, for
// layers of any compression (validate.Image gunzips every layer): each
// layer's Digest and Size match its Compressed bytes, its DiffID matches its
// Uncompressed bytes, and the manifest lists the layers' descriptors and
// the config.
func checkConsistent(t *testing.T, img v1.Image) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != len(layers) {
		t.Fatalf("manifest lists %d layers, image has %d", len(m.Layers), len(layers))
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.Digest != mustConfigName(t, img) {
		t.Errorf("manifest config digest %s, want %s", m.Config.Digest, mustConfigName(t, img))
	}
	for i, l := range layers {
		c := readAll(t, l.Compressed)
		u := readAll(t, l.Uncompressed)
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		diffID, err := l.DiffID()
		if err != nil {
			t.Fatal(err)
		}
		size, err := l.Size()
		if err != nil {
			t.Fatal(err)
		}
		mt, err := l.MediaType()
		if err != nil {
			t.Fatal(err)
		}
		if d != sha(c) || size != int64(len(c)) {
			t.Errorf("layer %d: Digest %s Size %d, Compressed() is %s, %d bytes", i, d, size, sha(c), len(c))
		}
		if diffID != sha(u) || cfg.RootFS.DiffIDs[i] != diffID {
			t.Errorf("layer %d: DiffID %s, config %s, Uncompressed() is %s", i, diffID, cfg.RootFS.DiffIDs[i], sha(u))
		}
		if got := m.Layers[i]; got.Digest != d || got.Size != size || got.MediaType != mt {
			t.Errorf("manifest layer %d is %+v, the layer says %s %d %s", i, got, d, size, mt)
		}
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	if mustDigest(t, img) != sha(raw) {
		t.Errorf("Digest() is not the digest of RawManifest()")
	}
}

func mustConfigName(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h
}
