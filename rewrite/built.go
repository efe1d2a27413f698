package rewrite

import (
	"bytes"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/manifest"
)

// builtImage is an output image: a serialized manifest and config around
// layers that are already final (spooled, or source blobs reused). Its
// layers are handed out as they are, so registry layers stay mountable.
type builtImage struct {
	b      *manifest.Built
	layers []v1.Layer
}

var _ v1.Image = (*builtImage)(nil)

func (i *builtImage) Layers() ([]v1.Layer, error)         { return i.layers, nil }
func (i *builtImage) MediaType() (types.MediaType, error) { return i.b.Descriptor.MediaType, nil }
func (i *builtImage) Size() (int64, error)                { return i.b.Descriptor.Size, nil }
func (i *builtImage) ConfigName() (v1.Hash, error)        { return i.b.ConfigDesc.Digest, nil }
func (i *builtImage) RawConfigFile() ([]byte, error)      { return i.b.Config, nil }
func (i *builtImage) Digest() (v1.Hash, error)            { return i.b.Descriptor.Digest, nil }
func (i *builtImage) RawManifest() ([]byte, error)        { return i.b.Manifest, nil }
func (i *builtImage) ConfigFile() (*v1.ConfigFile, error) {
	return v1.ParseConfigFile(bytes.NewReader(i.b.Config))
}
func (i *builtImage) Manifest() (*v1.Manifest, error) {
	var m v1.Manifest
	if err := json.Unmarshal(i.b.Manifest, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

func (i *builtImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	if h == i.b.ConfigDesc.Digest {
		return partial.ConfigLayer(i)
	}
	for n, d := range i.b.ManifestObj.Layers {
		if d.Digest == h {
			return i.layers[n], nil
		}
	}
	return nil, fmt.Errorf("layer %s not in image", h)
}

func (i *builtImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	for _, l := range i.layers {
		d, err := l.DiffID()
		if err != nil {
			return nil, err
		}
		if d == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("layer with diff_id %s not in image", h)
}

// builtIndex is an output index over built (or kept) children.
type builtIndex struct {
	raw     []byte
	desc    v1.Descriptor
	images  map[v1.Hash]v1.Image
	indexes map[v1.Hash]v1.ImageIndex
}

var _ v1.ImageIndex = (*builtIndex)(nil)

func (x *builtIndex) MediaType() (types.MediaType, error) { return x.desc.MediaType, nil }
func (x *builtIndex) Digest() (v1.Hash, error)            { return x.desc.Digest, nil }
func (x *builtIndex) Size() (int64, error)                { return x.desc.Size, nil }
func (x *builtIndex) RawManifest() ([]byte, error)        { return x.raw, nil }
func (x *builtIndex) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(x.raw))
}

func (x *builtIndex) Image(h v1.Hash) (v1.Image, error) {
	if img, ok := x.images[h]; ok {
		return img, nil
	}
	return nil, fmt.Errorf("image %s not in index", h)
}

func (x *builtIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	if idx, ok := x.indexes[h]; ok {
		return idx, nil
	}
	return nil, fmt.Errorf("index %s not in index", h)
}
