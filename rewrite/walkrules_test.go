package rewrite_test

import (
	"context"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/rewrite"
)

// TestIndexWalkRules pins, through rewrite, the rules of internal/imagewalk
// that changed when the copies were merged: an entry whose os is "unknown"
// is an attestation (kept as it is, not rewritten) whatever its arch, and
// a wanted linux/arm64/v8 selects linux/arm64 without a variant.
func TestIndexWalkRules(t *testing.T) {
	amd := dockerImage(t, "amd64", gzipLayer(t, tarOf(t, 21, 5)))
	arm := dockerImage(t, "arm64", gzipLayer(t, tarOf(t, 22, 5)))
	odd := dockerImage(t, "amd64", gzipLayer(t, tarOf(t, 23, 5)))
	src := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.DockerManifestList),
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: odd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "unknown", Architecture: "amd64"}}},
	)
	res, err := rewrite.Index(context.Background(), src, rewrite.WithTempDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	oddDigest, _ := odd.Digest()
	if len(res.Report.Images) != 2 || len(res.Report.Kept) != 1 || res.Report.Kept[0].Digest != oddDigest {
		t.Errorf("unknown/amd64 must be kept as it is: %d rewritten, kept %v", len(res.Report.Images), res.Report.Kept)
	}

	sub, err := rewrite.Index(context.Background(), src, rewrite.WithTempDir(t.TempDir()),
		rewrite.WithPlatforms(v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	im, _ := sub.Index.IndexManifest()
	if len(im.Manifests) != 1 || im.Manifests[0].Platform.Architecture != "arm64" {
		t.Errorf("linux/arm64/v8 selected %v, want the linux/arm64 entry", im.Manifests)
	}
	if !strings.Contains(sub.Report.Options, "platforms=linux/arm64/v8") {
		t.Errorf("options %q do not record the selection", sub.Report.Options)
	}
}

// TestImageOSVersion pins that a wanted os.version applies to a single
// image by its config (rewrite ignored os.version before).
func TestImageOSVersion(t *testing.T) {
	img := dockerImage(t, "amd64", gzipLayer(t, tarOf(t, 24, 5)))
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.OSVersion = "windows", "10.0.17763.1"
	img, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	want := func(v string) rewrite.Option {
		return rewrite.WithPlatforms(v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: v})
	}
	if _, err := rewrite.Image(context.Background(), img, rewrite.WithTempDir(t.TempDir()), want("10.0.20348.1")); err == nil || !strings.Contains(err.Error(), "windows/amd64:10.0.17763.1") {
		t.Errorf("another os.version: %v, want a refusal naming the image's platform", err)
	}
	res, err := rewrite.Image(context.Background(), img, rewrite.WithTempDir(t.TempDir()), want("10.0.17763.1"))
	if err != nil {
		t.Fatal(err)
	}
	res.Close()
}
