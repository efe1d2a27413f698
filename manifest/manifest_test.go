package manifest

import (
	"bytes"
	"encoding/json"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const config = `{"architecture":"amd64","os":"linux","x-unknown":{"kept":true},` +
	`"config":{"Entrypoint":["/app"]},` +
	`"rootfs":{"type":"layers","diff_ids":["sha256:1111111111111111111111111111111111111111111111111111111111111111","sha256:2222222222222222222222222222222222222222222222222222222222222222","sha256:3333333333333333333333333333333333333333333333333333333333333333"]},` +
	`"history":[{"created_by":"base"},{"created_by":"ENV X=1","empty_layer":true},{"created_by":"step 2"},{"created_by":"step 3","x-field":1}]}`

func hash(c byte) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: string(bytes.Repeat([]byte{c}, 64))}
}

func src() *v1.Manifest {
	return &v1.Manifest{SchemaVersion: 2, MediaType: types.DockerManifestSchema2,
		Config:      v1.Descriptor{MediaType: types.DockerConfigJSON},
		Annotations: map[string]string{"org.example": "kept"}}
}

func TestBuildImageKeepsConfigBytes(t *testing.T) {
	b, err := BuildImage(Image{Source: src(), Config: []byte(config), Format: OCI,
		Layers:  []v1.Descriptor{{MediaType: types.OCILayerZStd, Digest: hash('a'), Size: 1}},
		DiffIDs: []v1.Hash{hash('1'), hash('2'), hash('3')}, Annotations: Provenance(hash('9'), "compression=zstd", "v")})
	if err != nil {
		t.Fatal(err)
	}
	if string(b.Config) != config {
		t.Error("the config changed although the diff_ids did not")
	}
	var m v1.Manifest
	if err := json.Unmarshal(b.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("types %s / %s", m.MediaType, m.Config.MediaType)
	}
	if m.Annotations["org.example"] != "kept" || m.Annotations[AnnotationSourceDigest] != hash('9').String() {
		t.Errorf("annotations %v", m.Annotations)
	}
	d, _, _ := v1.SHA256(bytes.NewReader(b.Manifest))
	if d != b.Descriptor.Digest || b.Descriptor.Size != int64(len(b.Manifest)) {
		t.Error("descriptor does not describe the manifest")
	}
}

func TestBuildImageNewDiffIDsAndHistory(t *testing.T) {
	// Layers 2 and 3 (indexes 1 and 2) were merged into one.
	s := src()
	s.Annotations = nil // Docker schema 2 has none
	b, err := BuildImage(Image{Source: s, Config: []byte(config), Format: Docker,
		Layers:      []v1.Descriptor{{Digest: hash('a')}, {Digest: hash('b')}},
		DiffIDs:     []v1.Hash{hash('1'), hash('4')},
		EmptyLayers: map[int]bool{1: true}, AddHistory: "merged"})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Unknown map[string]bool `json:"x-unknown"`
		RootFS  struct {
			DiffIDs []v1.Hash `json:"diff_ids"`
		} `json:"rootfs"`
		History []map[string]any `json:"history"`
	}
	if err := json.Unmarshal(b.Config, &doc); err != nil {
		t.Fatal(err)
	}
	if !doc.Unknown["kept"] {
		t.Error("an unknown config field was lost")
	}
	if len(doc.RootFS.DiffIDs) != 2 || doc.RootFS.DiffIDs[1] != hash('4') {
		t.Errorf("diff_ids %v", doc.RootFS.DiffIDs)
	}
	nonEmpty := 0
	for _, h := range doc.History {
		if h["empty_layer"] != true {
			nonEmpty++
		}
	}
	if nonEmpty != 2 {
		t.Errorf("%d non-empty history entries for 2 layers: %v", nonEmpty, doc.History)
	}
	if doc.History[2]["empty_layer"] != true || doc.History[3]["x-field"] != float64(1) {
		t.Errorf("history %v", doc.History)
	}
	last := doc.History[len(doc.History)-1]
	if last["created_by"] != "merged" || last["empty_layer"] != true || last["created"] != nil {
		t.Errorf("added entry %v", last)
	}
	var m v1.Manifest
	json.Unmarshal(b.Manifest, &m)
	if m.MediaType != types.DockerManifestSchema2 || m.Config.MediaType != types.DockerConfigJSON {
		t.Errorf("docker format gave %s / %s", m.MediaType, m.Config.MediaType)
	}
}

func TestBuildIndex(t *testing.T) {
	children := []v1.Descriptor{
		{MediaType: types.OCIManifestSchema1, Digest: hash('a'), Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}},
		{MediaType: types.OCIManifestSchema1, Digest: hash('b'), Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}},
	}
	raw, desc, err := BuildIndex(Index{Source: &v1.IndexManifest{Annotations: map[string]string{"a": "b"}}, Format: OCI, Manifests: children,
		Annotations: Provenance(hash('9'), "o", "v")})
	if err != nil {
		t.Fatal(err)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex || len(im.Manifests) != 2 || im.Manifests[0].Platform.Architecture != "s390x" {
		t.Errorf("index %+v", im)
	}
	if im.Annotations["a"] != "b" || im.Annotations[AnnotationVersion] != "v" {
		t.Errorf("annotations %v", im.Annotations)
	}
	if d, _, _ := v1.SHA256(bytes.NewReader(raw)); d != desc.Digest {
		t.Error("descriptor digest")
	}
	if FormatOf(types.DockerManifestList) != Docker || FormatOf(types.OCIImageIndex) != OCI {
		t.Error("FormatOf")
	}
}
