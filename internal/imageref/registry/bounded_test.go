package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/imageref/refio"
	"github.com/layerslim/layerslim/internal/imageref/reftest"
)

// A registry image whose manifest gives its config more than MaxConfigSize
// bytes is refused before the config is read.
func TestRegistryConfigOverTheCap(t *testing.T) {
	host, _ := reftest.NewRegistry(t)
	cfg := v1.Descriptor{MediaType: types.OCIConfigJSON, Size: refio.MaxConfigSize + 1,
		Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg, Layers: []v1.Descriptor{}}
	raw, _ := json.Marshal(m)
	ref, err := name.ParseReference(host+"/big:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(ref, rawManifest{raw, types.OCIManifestSchema1}); err != nil {
		t.Fatal(err)
	}
	src, err := imageref.Open(context.Background(), reftest.MustParse(t, host+"/big:v1"), imageref.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Image.RawConfigFile(); !errors.Is(err, imageref.ErrTooLarge) {
		t.Errorf("RawConfigFile() = %v, want ErrTooLarge", err)
	}
	if _, err := src.Image.ConfigFile(); !errors.Is(err, imageref.ErrTooLarge) {
		t.Errorf("ConfigFile() = %v, want ErrTooLarge", err)
	}
}

type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }
