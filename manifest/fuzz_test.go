package manifest_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/manifest"
)

// FuzzManifest builds manifests, configs and indexes from arbitrary JSON
// taken as a source manifest, config or index, as a rewrite does with a
// hostile image's blobs. Nothing may panic; what builds must parse again,
// hash to its descriptor and carry the diff_ids it was given.
func FuzzManifest(f *testing.F) {
	// The sample image's manifests, configs and index.
	blobs, _ := filepath.Glob("../testdata/sample/blobs/sha256/*")
	for _, b := range blobs {
		if data, err := os.ReadFile(b); err == nil && len(data) < 4096 && bytes.HasPrefix(data, []byte("{")) {
			f.Add(data)
		}
	}
	if data, err := os.ReadFile("../testdata/sample/index.json"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{
		`null`, `{}`, `[]`, `{"rootfs":null}`, `{"rootfs":{"diff_ids":null}}`,
		`{"history":[null]}`, `{"history":[{"empty_layer":"yes"},{}]}`, `{"history":{}}`,
		`{"schemaVersion":2,"layers":[null],"config":{"mediaType":"x"}}`,
		`{"manifests":[{"digest":"sha256:00"}]}`,
	} {
		f.Add([]byte(s))
	}
	diffIDs := []v1.Hash{
		{Algorithm: "sha256", Hex: "1111111111111111111111111111111111111111111111111111111111111111"},
		{Algorithm: "sha256", Hex: "2222222222222222222222222222222222222222222222222222222222222222"},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &v1.Manifest{SchemaVersion: 2, MediaType: manifest.OCI.ManifestType()}
		if m, err := v1.ParseManifest(bytes.NewReader(data)); err == nil {
			src = m
		}
		for _, in := range []manifest.Image{
			{Source: src, SourceRaw: data, Config: data, Format: manifest.OCI, DiffIDs: diffIDs},
			{Source: src, SourceRaw: data, Config: data, Format: manifest.OCI, DiffIDs: diffIDs[:1], Merged: []int{0, 1}, AddHistory: "merged", AddLayerHistory: "debug"},
			{Source: src, Config: data, Format: manifest.Docker, DiffIDs: diffIDs[:1],
				EmptyLayers: map[int]bool{0: true, 2: true}, AddHistory: "merged", AddLayerHistory: "debug"},
			{Source: src, Config: data, Format: manifest.OCI, EmptyLayers: map[int]bool{0: true}},
		} {
			b, err := manifest.BuildImage(in)
			if err != nil {
				continue
			}
			checkBuilt(t, b, in.DiffIDs)
		}
		if idx, err := v1.ParseIndexManifest(bytes.NewReader(data)); err == nil {
			raw, desc, err := manifest.BuildIndex(manifest.Index{Source: idx, SourceRaw: data, Format: manifest.OCI, Manifests: idx.Manifests,
				Annotations: manifest.Provenance(diffIDs[0], "fuzz", "dev")})
			if err != nil {
				return
			}
			if d, n, _ := v1.SHA256(bytes.NewReader(raw)); d != desc.Digest || n != desc.Size {
				t.Fatalf("index descriptor %v does not match its %d bytes", desc, len(raw))
			}
			if _, err := v1.ParseIndexManifest(bytes.NewReader(raw)); err != nil {
				t.Fatalf("built index does not parse: %v", err)
			}
		}
		// An OCI layout's index.json with one entry replaced keeps
		// parsing, and ends with the new entry.
		desc := v1.Descriptor{MediaType: manifest.OCI.ManifestType(), Size: 1, Digest: diffIDs[1]}
		if out, err := manifest.ReplaceIndexEntries(data, desc, func(d v1.Descriptor) bool { return d.Size%2 == 0 }); err == nil {
			im, err := v1.ParseIndexManifest(bytes.NewReader(out))
			if err != nil {
				t.Fatalf("index.json %s does not parse: %v", out, err)
			}
			if n := len(im.Manifests); n == 0 || im.Manifests[n-1].Digest != desc.Digest {
				t.Fatalf("index.json %s lacks the new entry", out)
			}
		}
	})
}

func checkBuilt(t *testing.T, b *manifest.Built, diffIDs []v1.Hash) {
	t.Helper()
	if d, n, _ := v1.SHA256(bytes.NewReader(b.Manifest)); d != b.Descriptor.Digest || n != b.Descriptor.Size {
		t.Fatalf("manifest descriptor %v does not match its %d bytes", b.Descriptor, len(b.Manifest))
	}
	if d, n, _ := v1.SHA256(bytes.NewReader(b.Config)); d != b.ConfigDesc.Digest || n != b.ConfigDesc.Size {
		t.Fatalf("config descriptor %v does not match its %d bytes", b.ConfigDesc, len(b.Config))
	}
	if _, err := v1.ParseManifest(bytes.NewReader(b.Manifest)); err != nil {
		t.Fatalf("built manifest does not parse: %v", err)
	}
	var doc struct {
		RootFS struct {
			DiffIDs []v1.Hash `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(b.Config, &doc); err != nil {
		t.Fatalf("built config does not parse: %v", err)
	}
	if len(doc.RootFS.DiffIDs) != len(diffIDs) {
		t.Fatalf("built config has %d diff_ids, want %d", len(doc.RootFS.DiffIDs), len(diffIDs))
	}
	for i := range diffIDs {
		if doc.RootFS.DiffIDs[i] != diffIDs[i] {
			t.Fatalf("diff_id %d = %v, want %v", i, doc.RootFS.DiffIDs[i], diffIDs[i])
		}
	}
}
