package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/internal/imageref/refio"
)

// ggcr's registry layers look their descriptor up in the image manifest,
// parsed again, on every call (Compressed, Size, MediaType, DiffID): with
// N layers a rewrite parsed a manifest of N entries N times over. The
// wrappers below parse it once and answer from that, and open each blob
// through one shared remote.Puller; the layers stay *remote.MountableLayer
// so that a write to another repository of the registry still mounts them.

// registryImage is a registry image whose layers answer from its manifest
// and config parsed once.
type registryImage struct {
	v1.Image
	layers []v1.Layer
	config v1.Descriptor
}

// RawConfigFile refuses a config that its manifest says is larger than
// MaxConfigSize before reading it (ggcr would read what the descriptor
// says into memory); ggcr checks its digest.
func (i *registryImage) RawConfigFile() ([]byte, error) {
	if i.config.Size > refio.MaxConfigSize {
		return nil, fmt.Errorf("config %s: %w: the manifest says %d bytes, more than the %d allowed", i.config.Digest, refio.ErrTooLarge, i.config.Size, refio.MaxConfigSize)
	}
	return i.Image.RawConfigFile()
}

func (i *registryImage) ConfigFile() (*v1.ConfigFile, error) {
	b, err := i.RawConfigFile()
	if err != nil {
		return nil, err
	}
	return v1.ParseConfigFile(bytes.NewReader(b))
}

func newRegistryImage(ctx context.Context, img v1.Image, repo name.Repository, puller *remote.Puller) (v1.Image, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	// The config is read when a diff_id is first asked for, not here:
	// opening reads nothing but the manifest.
	diffIDs := sync.OnceValues(func() ([]v1.Hash, error) {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		return cf.RootFS.DiffIDs, nil
	})
	orig, err := img.Layers()
	if err != nil {
		return nil, err
	}
	if len(orig) != len(m.Layers) {
		return img, nil // let the rewrite say what is wrong
	}
	out := &registryImage{Image: img, layers: make([]v1.Layer, len(orig)), config: m.Config}
	for i, l := range orig {
		rl := &registryLayer{Layer: l, desc: m.Layers[i], index: i, diffIDs: diffIDs}
		d := m.Layers[i].Digest
		rl.open = func() (io.ReadCloser, error) {
			pl, err := puller.Layer(ctx, repo.Digest(d.String()))
			if err != nil {
				return nil, err
			}
			return pl.Compressed()
		}
		out.layers[i] = rl
		if ml, ok := l.(*remote.MountableLayer); ok {
			rl.Layer = ml.Layer
			out.layers[i] = &remote.MountableLayer{Layer: rl, Reference: ml.Reference}
		}
	}
	return out, nil
}

func (i *registryImage) Layers() ([]v1.Layer, error) {
	return append([]v1.Layer(nil), i.layers...), nil
}

func (i *registryImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	for _, l := range i.layers {
		if d, _ := l.Digest(); d == h {
			return l, nil
		}
	}
	return i.Image.LayerByDigest(h) // the config
}

func (i *registryImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	for _, l := range i.layers {
		if d, err := l.DiffID(); err == nil && d == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("no layer with diff_id %s", h)
}

// Descriptor and ConfigLayer keep what ggcr's image gives (the index
// entry's descriptor, a mountable config).
func (i *registryImage) Descriptor() (*v1.Descriptor, error) { return partial.Descriptor(i.Image) }
func (i *registryImage) ConfigLayer() (v1.Layer, error)      { return partial.ConfigLayer(i.Image) }

// registryLayer is a layer of a registryImage.
type registryLayer struct {
	v1.Layer // ggcr's: Uncompressed, and foreign or inline blobs
	desc     v1.Descriptor
	index    int                       // in the manifest
	diffIDs  func() ([]v1.Hash, error) // the config's, read once
	open     func() (io.ReadCloser, error)
}

func (l *registryLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *registryLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *registryLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

func (l *registryLayer) Descriptor() (*v1.Descriptor, error) {
	d := l.desc
	return &d, nil
}

func (l *registryLayer) DiffID() (v1.Hash, error) {
	ids, err := l.diffIDs()
	if err != nil {
		return v1.Hash{}, err
	}
	if l.index < len(ids) {
		return ids[l.index], nil
	}
	return l.Layer.DiffID()
}

// Compressed fetches the blob from the repository; a foreign layer (whose
// URLs ggcr tries) or an inline one goes through ggcr's layer.
func (l *registryLayer) Compressed() (io.ReadCloser, error) {
	if !l.desc.MediaType.IsDistributable() || l.desc.Data != nil || len(l.desc.URLs) > 0 {
		return l.Layer.Compressed()
	}
	return l.open()
}

// registryIndex is a registry index whose images are registryImages.
type registryIndex struct {
	inner  v1.ImageIndex
	ctx    context.Context
	repo   name.Repository
	puller *remote.Puller
}

func (i *registryIndex) MediaType() (types.MediaType, error)       { return i.inner.MediaType() }
func (i *registryIndex) Digest() (v1.Hash, error)                  { return i.inner.Digest() }
func (i *registryIndex) Size() (int64, error)                      { return i.inner.Size() }
func (i *registryIndex) IndexManifest() (*v1.IndexManifest, error) { return i.inner.IndexManifest() }
func (i *registryIndex) RawManifest() ([]byte, error)              { return i.inner.RawManifest() }
func (i *registryIndex) Descriptor() (*v1.Descriptor, error)       { return partial.Descriptor(i.inner) }

func (i *registryIndex) Image(h v1.Hash) (v1.Image, error) {
	img, err := i.inner.Image(h)
	if err != nil {
		return nil, err
	}
	return newRegistryImage(i.ctx, img, i.repo, i.puller)
}

func (i *registryIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	ii, err := i.inner.ImageIndex(h)
	if err != nil {
		return nil, err
	}
	return &registryIndex{inner: ii, ctx: i.ctx, repo: i.repo, puller: i.puller}, nil
}

// Layer is ggcr's (an index entry that is neither image nor index).
func (i *registryIndex) Layer(h v1.Hash) (v1.Layer, error) {
	if wl, ok := i.inner.(interface {
		Layer(v1.Hash) (v1.Layer, error)
	}); ok {
		return wl.Layer(h)
	}
	return nil, fmt.Errorf("no layer %s in the index", h)
}
