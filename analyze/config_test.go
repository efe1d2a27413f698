package analyze_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/layerslim/layerslim/analyze"
	"github.com/layerslim/layerslim/internal/testenv"
)

// TestConfigDigestChecked: analyze refuses a config blob that does not
// match the manifest's descriptor, as rewrite does. For an index the error
// names the platform and the image; the caller of Image names its image.
func TestConfigDigestChecked(t *testing.T) {
	img := imageOfTars(t, testenv.TarLayer(t, []testenv.File{file("a", 10)}))
	digest, _ := img.Digest()
	m, _ := img.Manifest()
	_, err := analyze.Image(context.Background(), testenv.BadConfig(img), analyze.Options{})
	if !errors.Is(err, analyze.ErrDigestMismatch) || !strings.Contains(err.Error(), "config "+m.Config.Digest.String()) {
		t.Errorf("a damaged config: %v, want ErrDigestMismatch naming the config", err)
	}
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: testenv.BadConfig(img),
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	_, err = analyze.Index(context.Background(), idx, analyze.Options{})
	if !errors.Is(err, analyze.ErrDigestMismatch) || !strings.Contains(err.Error(), "linux/amd64 ("+digest.String()+")") {
		t.Errorf("an index image with a damaged config: %v, want ErrDigestMismatch naming platform and image", err)
	}
}
