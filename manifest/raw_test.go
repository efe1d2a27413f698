package manifest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Issue 11, item 6: a manifest without layers says "layers": [], and the
// fields of a source manifest layerslim does not write are kept.
func TestBuildImageLayersArrayAndUnknownFields(t *testing.T) {
	raw := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[],` +
		`"artifactType":"application/x.example","x-vendor":{"b":[1, 2],"a":"z"},"annotations":{"k":"v"}}`)
	var srcM v1.Manifest
	if err := json.Unmarshal(raw, &srcM); err != nil {
		t.Fatal(err)
	}
	b, err := BuildImage(Image{Source: &srcM, SourceRaw: raw, Config: []byte(`{"rootfs":{"type":"layers","diff_ids":[]}}`), Format: OCI})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b.Manifest, &doc); err != nil {
		t.Fatalf("%v: %s", err, b.Manifest)
	}
	for k, want := range map[string]string{"layers": `[]`, "artifactType": `"application/x.example"`, "x-vendor": `{"b":[1,2],"a":"z"}`} {
		if got := string(doc[k]); got != want {
			t.Errorf("%s = %s, want %s (manifest %s)", k, got, want, b.Manifest)
		}
	}
	// Without unknown fields the bytes are what they always were.
	b2, err := BuildImage(Image{Source: &v1.Manifest{}, Config: []byte(`{}`), Format: OCI})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b2.Manifest), `"layers":[]`) || strings.Contains(string(b2.Manifest), "null") {
		t.Errorf("manifest %s", b2.Manifest)
	}
}

func TestBuildIndexKeepsUnchangedEntries(t *testing.T) {
	raw := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","x-top":true,"manifests":[` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"` + hash('a').String() + `","x-entry":"kept"},` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":2,"digest":"` + hash('b').String() + `","x-entry":"gone"}]}`)
	var im v1.IndexManifest
	if err := json.Unmarshal(raw, &im); err != nil {
		t.Fatal(err)
	}
	changed := im.Manifests[1]
	changed.Digest, changed.Size = hash('c'), 3
	out, _, err := BuildIndex(Index{Source: &im, SourceRaw: raw, Format: OCI, Manifests: []v1.Descriptor{im.Manifests[0], changed}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if !strings.Contains(s, `"x-entry":"kept"`) || strings.Contains(s, `"x-entry":"gone"`) || !strings.Contains(s, `"x-top":true`) {
		t.Errorf("index %s", s)
	}
	if _, err := v1.ParseIndexManifest(strings.NewReader(s)); err != nil {
		t.Error(err)
	}
}

func TestReplaceIndexEntries(t *testing.T) {
	raw := []byte(`{"schemaVersion":2,"manifests":[` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"` + hash('a').String() + `","annotations":{"org.opencontainers.image.ref.name":"a"},"x-entry":1},` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":2,"digest":"` + hash('b').String() + `","annotations":{"org.opencontainers.image.ref.name":"b"}}],"x-top":"t"}`)
	desc := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: 3, Digest: hash('c'), Annotations: map[string]string{"org.opencontainers.image.ref.name": "b"}}
	out, err := ReplaceIndexEntries(raw, desc, func(d v1.Descriptor) bool { return d.Annotations["org.opencontainers.image.ref.name"] == "b" })
	if err != nil {
		t.Fatal(err)
	}
	im, err := v1.ParseIndexManifest(strings.NewReader(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 || im.Manifests[1].Digest != hash('c') || im.MediaType != types.OCIImageIndex {
		t.Errorf("index %s", out)
	}
	var compact strings.Builder
	for _, f := range strings.Fields(string(out)) {
		compact.WriteString(f)
	}
	if !strings.Contains(compact.String(), `"x-entry":1`) || !strings.Contains(compact.String(), `"x-top":"t"`) {
		t.Errorf("unknown fields lost: %s", out)
	}
}

// Issue 11, item 4: Docker schema 2 has no annotations, so an annotated
// output is OCI, and a Docker manifest or list with annotations is refused.
func TestDockerKeptToItsSchema(t *testing.T) {
	if OutputFormat(Docker, true, true) != OCI || OutputFormat(Docker, true, false) != Docker || OutputFormat(Docker, false, false) != OCI || OutputFormat(OCI, true, false) != OCI {
		t.Error("OutputFormat")
	}
	_, err := BuildImage(Image{Source: &v1.Manifest{}, Config: []byte(`{}`), Format: Docker, Annotations: Provenance(hash('1'), "o", "v")})
	if !errors.Is(err, ErrDockerAnnotations) {
		t.Errorf("BuildImage: %v", err)
	}
	_, _, err = BuildIndex(Index{Source: &v1.IndexManifest{Annotations: map[string]string{"a": "b"}}, Format: Docker})
	if !errors.Is(err, ErrDockerAnnotations) {
		t.Errorf("BuildIndex: %v", err)
	}
}
