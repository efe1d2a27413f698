package signed_test

import (
	"context"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/signed"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/manifest"
)

// debugImageOf is a debug image as rewrite writes it for slim: annotated
// with dev.layerslim.debug-for, slim as its subject.
func debugImageOf(t *testing.T, slim v1.Image) v1.Image {
	t.Helper()
	d, err := partial.Descriptor(slim)
	if err != nil {
		t.Fatal(err)
	}
	dbg := mutate.Annotations(sourceImage(t, "debug"), map[string]string{manifest.AnnotationDebugFor: d.Digest.String()}).(v1.Image)
	return mutate.Subject(dbg, v1.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}).(v1.Image)
}

// A debug image attached to its slim image as a referrer is layerslim's
// own: neither reported nor copied as an artifact of the slim image, with
// or without the referrers API, and in an OCI layout.
func TestFindSkipsDebugImages(t *testing.T) {
	slim := testenv.Image(t, testenv.ImageSpec{Layers: [][]byte{testenv.TarLayer(t, []testenv.File{testenv.Reg("etc/app", "slim")})}, OCI: true})
	sd, _ := slim.Digest()
	sdesc, _ := partial.Descriptor(slim)
	sbom := testenv.SBOMReferrer(t, *sdesc, spdxDoc)
	dbg := debugImageOf(t, slim)
	for _, referrers := range []bool{true, false} {
		repo := memRegistry(t, referrers) + "/app"
		for tag, img := range map[string]v1.Image{"slim": slim, "slim-debug": dbg} {
			if err := remote.Write(testenv.ParseRef(t, repo+":"+tag), img); err != nil {
				t.Fatal(err)
			}
		}
		testenv.PushArtifactByDigest(t, sbom, repo)
		as, err := signed.Find(context.Background(), ref(t, repo+":slim"), imageref.Options{}, sd)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != 1 || as[0].Kind != signed.SBOM {
			t.Errorf("referrers API %v: found %+v, want the SBOM only", referrers, as)
		}
	}

	dir := filepath.Join(t.TempDir(), "oci")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	lp.AppendImage(slim, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "slim"}))
	lp.AppendImage(dbg, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "slim-debug"}))
	lp.AppendImage(sbom)
	as, err := signed.Find(context.Background(), ref(t, "oci:"+dir+":slim"), imageref.Options{}, sd)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].Kind != signed.SBOM {
		t.Errorf("OCI layout: found %+v, want the SBOM only", as)
	}
}
