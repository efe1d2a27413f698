package rewrite_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/layerslim/layerslim/rewrite"
	"github.com/layerslim/layerslim/tarfilter"
)

// Issue 11, item 6: an image without layers is written with "layers": [].
func TestZeroLayerImageHasLayersArray(t *testing.T) {
	cf, _ := empty.Image.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	src, err := mutate.ConfigFile(empty.Image, cf)
	if err != nil {
		t.Fatal(err)
	}
	res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()),
		rewrite.WithFilter(func(rewrite.Recorder) tarfilter.Filter { return tarfilter.Keep() }))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	rewrite.CheckVerified(t, src, res, nil)
	raw, err := res.Image.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"layers":[]`) {
		t.Errorf("manifest %s", raw)
	}
}
