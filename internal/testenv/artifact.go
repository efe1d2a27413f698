package testenv

import (
	"encoding/json"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types of the artifacts signing and SBOM tools attach to images.
const (
	EmptyConfigType         types.MediaType = "application/vnd.oci.empty.v1+json"
	CosignSimpleSigningType types.MediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	DSSEEnvelopeType        types.MediaType = "application/vnd.dsse.envelope.v1+json"
	SPDXType                                = "application/spdx+json"
)

// ArtifactLayer is one blob of an artifact.
type ArtifactLayer struct {
	MediaType   types.MediaType
	Data        []byte
	Annotations map[string]string
}

// ArtifactSpec describes an OCI artifact manifest for Artifact.
type ArtifactSpec struct {
	ArtifactType string // "" for none (cosign's tag-based artifacts have none)
	// ConfigMediaType and Config: the config blob; zero means the OCI empty
	// descriptor ({} of type application/vnd.oci.empty.v1+json).
	ConfigMediaType types.MediaType
	Config          []byte
	Layers          []ArtifactLayer
	Subject         *v1.Descriptor
	Annotations     map[string]string
}

// Artifact builds the OCI image manifest spec describes, in memory, as
// `oras attach`, `cosign attach` and the like push it.
func Artifact(t testing.TB, spec ArtifactSpec) v1.Image {
	t.Helper()
	cfg, cfgType := spec.Config, spec.ConfigMediaType
	if cfgType == "" {
		cfg, cfgType = []byte("{}"), EmptyConfigType
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  spec.ArtifactType,
		Config:        v1.Descriptor{MediaType: cfgType, Size: int64(len(cfg)), Digest: sha256Hash(cfg)},
		Layers:        []v1.Descriptor{},
		Subject:       spec.Subject,
		Annotations:   spec.Annotations,
	}
	img := &memImage{mediaType: types.OCIManifestSchema1, configType: cfgType, rawConfig: cfg}
	for _, l := range spec.Layers {
		h := sha256Hash(l.Data)
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: l.MediaType, Size: int64(len(l.Data)), Digest: h, Annotations: l.Annotations})
		img.layers = append(img.layers, &memLayer{blob: l.Data, tar: l.Data, digest: h, diffID: h, mediaType: l.MediaType})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("testenv.Artifact: %v", err)
	}
	img.rawManifest = raw
	return img
}

// CosignSignature is the manifest cosign pushes at the tag
// sha256-<hex>.sig for a signature of subject: one simple-signing payload
// layer carrying the signature as an annotation (not a valid signature;
// layerslim only has to find it).
func CosignSignature(t testing.TB, repo string, subject v1.Hash) v1.Image {
	t.Helper()
	payload := `{"critical":{"identity":{"docker-reference":"` + repo + `"},"image":{"docker-manifest-digest":"` + subject.String() + `"},"type":"cosign container image signature"},"optional":null}`
	return Artifact(t, ArtifactSpec{
		ConfigMediaType: types.OCIConfigJSON,
		Config:          []byte(`{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":["` + sha256Hash([]byte(payload)).String() + `"]}}`),
		Layers: []ArtifactLayer{{
			MediaType:   CosignSimpleSigningType,
			Data:        []byte(payload),
			Annotations: map[string]string{"dev.cosignproject.cosign/signature": "MEUCIQDtestsignature"},
		}},
	})
}

// SBOMReferrer is an SPDX SBOM attached to subject as an OCI referrer (as
// `oras attach --artifact-type application/spdx+json` pushes it), holding doc.
func SBOMReferrer(t testing.TB, subject v1.Descriptor, doc string) v1.Image {
	t.Helper()
	s := v1.Descriptor{MediaType: subject.MediaType, Size: subject.Size, Digest: subject.Digest}
	return Artifact(t, ArtifactSpec{
		ArtifactType: SPDXType,
		Layers:       []ArtifactLayer{{MediaType: SPDXType, Data: []byte(doc), Annotations: map[string]string{"org.opencontainers.image.title": "sbom.spdx.json"}}},
		Subject:      &s,
	})
}
