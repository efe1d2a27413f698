package imagewalk

import (
	"bytes"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/internal/blob"
)

// ErrUnsupportedMediaType is wrapped by Image.Layers' error for a layer
// of a media type layerslim does not read.
var ErrUnsupportedMediaType = errors.New("unsupported layer media type")

// Image is an image read as far as its manifest and config.
type Image struct {
	Image    v1.Image
	Digest   v1.Hash // of the manifest
	Manifest *v1.Manifest
	// RawConfig is the config blob, checked against Manifest.Config.
	RawConfig []byte
	Config    *v1.ConfigFile
	// Blobs are the layers as the image gives them, one per
	// Manifest.Layers entry.
	Blobs []v1.Layer
}

// Layer is a layer of an image with what the manifest and config say of it.
type Layer struct {
	Layer  v1.Layer
	Desc   v1.Descriptor // from the manifest
	DiffID v1.Hash       // from the config; zero if unknown
}

// Read reads img's manifest and config, checks the config blob against
// the manifest's descriptor (digest and size), and lists its layers. The
// errors name the blob that failed; callers name the image.
func Read(img v1.Image) (*Image, error) {
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	mf, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading config %s: %w", mf.Config.Digest, err)
	}
	if err := blob.Check(raw, mf.Config); err != nil {
		return nil, fmt.Errorf("config %s (%d bytes): %w", mf.Config.Digest, mf.Config.Size, err)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing config %s: %w", mf.Config.Digest, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading layers: %w", err)
	}
	if len(layers) != len(mf.Layers) {
		return nil, fmt.Errorf("image has %d layers but its manifest lists %d", len(layers), len(mf.Layers))
	}
	return &Image{Image: img, Digest: digest, Manifest: mf, RawConfig: raw, Config: cf, Blobs: layers}, nil
}

// Platform is the platform of the image: entry, the platform its index
// entry gives, when not nil; else its config's os, architecture, variant
// and os.version.
func (i *Image) Platform(entry *v1.Platform) v1.Platform {
	if entry != nil {
		return *entry
	}
	c := i.Config
	return v1.Platform{OS: c.OS, Architecture: c.Architecture, Variant: c.Variant, OSVersion: c.OSVersion}
}

// Layers pairs each layer with its descriptor and diff_id. It fails when
// the config does not list one diff_id per layer, or a layer's media type
// is one layerslim does not read (non-distributable layers, which are
// passed through unread, are let through).
func (i *Image) Layers() ([]Layer, error) {
	mf := i.Manifest
	ids := i.Config.RootFS.DiffIDs
	if len(ids) != len(mf.Layers) {
		return nil, fmt.Errorf("manifest lists %d layers but the config has %d diff_ids", len(mf.Layers), len(ids))
	}
	out := make([]Layer, len(mf.Layers))
	for n, d := range mf.Layers {
		if !compress.NonDistributable(d.MediaType) {
			if _, known := compress.MediaTypeCodec(d.MediaType); !known {
				return nil, fmt.Errorf("layer %d (%s): %w %q", n+1, d.Digest, ErrUnsupportedMediaType, d.MediaType)
			}
		}
		out[n] = Layer{Layer: i.Blobs[n], Desc: d, DiffID: ids[n]}
	}
	return out, nil
}
