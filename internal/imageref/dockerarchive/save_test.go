package dockerarchive_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/internal/imageref/reftest"
)

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
				diffIDs = append(diffIDs, reftest.Sha(l))
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
			e.Config = "blobs/sha256/" + reftest.Sha(rawCfg).Hex
			e.LayerSources = map[v1.Hash]v1.Descriptor{}
		} else {
			e.Config = reftest.Sha(rawCfg).Hex + ".json"
		}
		add(&tar.Header{Name: e.Config}, rawCfg)
		for i, l := range img.layers {
			blob := l
			if img.compress != nil {
				blob = img.compress(l)
			}
			d := reftest.Sha(blob)
			var member string
			switch style {
			case docker25:
				member = "blobs/sha256/" + d.Hex
				e.LayerSources[diffIDs[i]] = v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: int64(len(blob)), Digest: d}
				if _, ok := seen[d.String()]; !ok {
					add(&tar.Header{Name: member}, blob)
				}
			default:
				id := reftest.Sha([]byte(fmt.Sprintf("v1 id %d/%d", n, i))).Hex
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
