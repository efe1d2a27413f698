package debugserve_test

import (
	"io"
	"log"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/manifest"
)

// On a registry with the referrers API, the debug image rewrite pushes is
// listed by the API itself, and no sha256-<hex> fallback tag is written;
// on one without, the fallback tag lists it (TestRegistryReferrers does the
// same against the real registry). Both are read as crane and oras read
// them, with remote.Referrers.
func TestReferrers(t *testing.T) {
	hello := buildProgram(t, "hello")
	for _, api := range []bool{true, false} {
		s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(api)))
		t.Cleanup(s.Close)
		repo := strings.TrimPrefix(s.URL, "http://") + "/app"
		files := []testenv.File{testenv.Dir("usr/"), testenv.Dir("usr/bin/"), {Name: hello.path, Mode: 0o755, Body: hello.bin}}
		img := testenv.Image(t, testenv.ImageSpec{Layers: [][]byte{testenv.TarLayer(t, files)}, OCI: true})
		if err := remote.Write(testenv.ParseRef(t, repo+":src"), img); err != nil {
			t.Fatal(err)
		}
		slimDigest := strings.TrimSpace(runCLI(t, "rewrite", repo+":src", repo+":slim", "--progress", "none"))
		debug, err := remote.Head(testenv.ParseRef(t, repo+":slim-debug"))
		if err != nil {
			t.Fatal(err)
		}
		d, err := name.NewDigest(repo+"@"+slimDigest, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Referrers(d)
		if err != nil {
			t.Fatal(err)
		}
		im, _ := idx.IndexManifest()
		if len(im.Manifests) != 1 || im.Manifests[0].Digest != debug.Digest || im.Manifests[0].Annotations[manifest.AnnotationDebugFor] != slimDigest {
			t.Errorf("referrers API %v: referrers of the slim image %+v, want the debug image %s", api, im.Manifests, debug.Digest)
		}
		tags, err := remote.List(d.Context())
		if err != nil {
			t.Fatal(err)
		}
		fallback := "sha256-" + strings.TrimPrefix(slimDigest, "sha256:")
		if got := slices.Contains(tags, fallback); got == api {
			t.Errorf("referrers API %v: fallback tag %s written: %v (tags %v)", api, fallback, got, tags)
		}
		// The slim image is not touched: it has no subject.
		sm, err := remote.Image(d)
		if err != nil {
			t.Fatal(err)
		}
		if m, _ := sm.Manifest(); m.Subject != nil {
			t.Errorf("the slim manifest has a subject %+v", m.Subject)
		}
	}
}
