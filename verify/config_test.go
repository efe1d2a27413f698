package verify_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/verify"
)

// TestConfigDigestChecked: a config blob that does not match the
// manifest's descriptor is refused (as rewrite refuses it), on either
// side, and the error names the side, the image and the config.
func TestConfigDigestChecked(t *testing.T) {
	img := imageOf(t, nil, base())
	digest, _ := img.Digest()
	m, _ := img.Manifest()
	for _, c := range []struct {
		role     string
		src, dst v1.Image
	}{
		{"source", testenv.BadConfig(img), img},
		{"output", img, testenv.BadConfig(img)},
	} {
		_, err := verify.Image(context.Background(), c.src, c.dst, verify.Options{})
		if !errors.Is(err, verify.ErrDigestMismatch) {
			t.Fatalf("%s config damaged: %v, want ErrDigestMismatch", c.role, err)
		}
		for _, want := range []string{"reading " + c.role + " image " + digest.String(), "config " + m.Config.Digest.String()} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s config damaged: %q does not say %q", c.role, err, want)
			}
		}
	}
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: testenv.BadConfig(img),
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	good := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img,
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	if _, err := verify.Index(context.Background(), good, idx, verify.Options{}); !errors.Is(err, verify.ErrDigestMismatch) || !strings.Contains(err.Error(), "output image "+digest.String()) {
		t.Errorf("an index image with a damaged config: %v", err)
	}
}
