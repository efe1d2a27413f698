package imagewalk_test

import (
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/internal/blob"
	"github.com/layerslim/layerslim/internal/imagewalk"
	"github.com/layerslim/layerslim/internal/testenv"
)

func testImage(t *testing.T) v1.Image {
	return testenv.GzipImage(t, plat("linux/arm64"), testenv.TarLayer(t, []testenv.File{testenv.Reg("a", "x")}))
}

func TestRead(t *testing.T) {
	img := testImage(t)
	got, err := imagewalk.Read(img)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	if got.Digest != d || len(got.Blobs) != 1 || got.Config.Architecture != "arm64" {
		t.Errorf("Read = %+v", got)
	}
	ls, err := got.Layers()
	if err != nil || len(ls) != 1 || ls[0].DiffID != got.Config.RootFS.DiffIDs[0] || ls[0].Desc.Digest != got.Manifest.Layers[0].Digest {
		t.Errorf("Layers = %+v, %v", ls, err)
	}
}

func TestReadRefusesAConfigOtherThanItsDigest(t *testing.T) {
	img := testImage(t)
	m, _ := img.Manifest()
	_, err := imagewalk.Read(testenv.BadConfig(img))
	if !errors.Is(err, blob.ErrDigestMismatch) || !strings.Contains(err.Error(), m.Config.Digest.String()) {
		t.Errorf("Read of a damaged config: %v, want a digest mismatch naming %s", err, m.Config.Digest)
	}
}

// TestPlatformFromConfig pins the config's platform: os.version counts
// (rewrite and analyze left it out, verify did not), so a selection by
// os.version applies to a single image as to an index entry.
func TestPlatformFromConfig(t *testing.T) {
	img := testImage(t)
	cf, _ := img.ConfigFile()
	cf.OS, cf.Architecture, cf.OSVersion = "windows", "amd64", "10.0.17763.1"
	img, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	got, err := imagewalk.Read(img)
	if err != nil {
		t.Fatal(err)
	}
	want := v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.1"}
	if p := got.Platform(nil); !p.Equals(want) {
		t.Errorf("Platform(nil) = %+v, want %+v", p, want)
	}
	entry := plat("linux/amd64")
	if p := got.Platform(&entry); !p.Equals(entry) {
		t.Errorf("the index entry's platform comes first: %+v", p)
	}
	if imagewalk.Match([]v1.Platform{{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348.1"}}, got.Platform(nil)) {
		t.Error("another os.version selected the image")
	}
}

func TestLayersRefuses(t *testing.T) {
	img := testImage(t)
	got, err := imagewalk.Read(img)
	if err != nil {
		t.Fatal(err)
	}
	short := *got
	cf := *got.Config
	cf.RootFS.DiffIDs = nil
	short.Config = &cf
	if _, err := short.Layers(); err == nil || !strings.Contains(err.Error(), "0 diff_ids") {
		t.Errorf("a config without diff_ids: %v", err)
	}
	weird := *got
	m := *got.Manifest
	m.Layers = append([]v1.Descriptor(nil), m.Layers...)
	m.Layers[0].MediaType = types.MediaType("application/vnd.example.weird")
	weird.Manifest = &m
	if _, err := weird.Layers(); !errors.Is(err, imagewalk.ErrUnsupportedMediaType) || !strings.Contains(err.Error(), "layer 1 (") {
		t.Errorf("a layer of an unknown type: %v", err)
	}
	foreign := weird
	m2 := m
	m2.Layers = append([]v1.Descriptor(nil), m.Layers...)
	m2.Layers[0].MediaType = types.DockerForeignLayer
	foreign.Manifest = &m2
	if _, err := foreign.Layers(); err != nil {
		t.Errorf("a non-distributable layer is passed through unread: %v", err)
	}
}
