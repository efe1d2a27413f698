package ocilayout

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/internal/blob"
	"github.com/layerslim/layerslim/internal/imageref/refio"
)

// An OCI layout is read the way ggcr's layout package reads it, with three
// differences that a layout made by someone else needs:
//
//   - every manifest, index and config is checked against the descriptor
//     that names it (digest by its own algorithm, and size) before it is
//     used; layers are checked as they stream (internal/blob);
//   - every JSON document has a size cap (below), so an index.json that is
//     a link to /dev/zero ends with an error, not with the memory;
//   - only regular files are read (symbolic links to them are followed): a
//     FIFO, a device or a directory is refused without blocking on it.

// ociLayout reads one layout directory.
type ociLayout string

func (l ociLayout) blobPath(h v1.Hash) (string, error) {
	if !safeDigest(h) {
		return "", fmt.Errorf("bad digest %q", h)
	}
	return filepath.Join(string(l), "blobs", h.Algorithm, h.Hex), nil
}

// blob opens the blob h.
func (l ociLayout) blob(h v1.Hash) (io.ReadCloser, error) {
	p, err := l.blobPath(h)
	if err != nil {
		return nil, err
	}
	return refio.OpenRegular(p)
}

// document reads the JSON blob desc names, of at most limit bytes, and
// checks it against desc.
func (l ociLayout) document(kind string, desc v1.Descriptor, limit int64) ([]byte, error) {
	p, err := l.blobPath(desc.Digest)
	if err != nil {
		return nil, err
	}
	what := kind + " " + desc.Digest.String()
	b, err := refio.ReadCapped(p, what, limit)
	if err != nil {
		return nil, err
	}
	if err := blob.Check(b, desc); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
}

// rootIndex reads index.json.
func (l ociLayout) rootIndex() (*ociIndex, error) {
	raw, err := refio.ReadCapped(filepath.Join(string(l), indexFile), indexFile, refio.MaxIndexJSONSize)
	if err != nil {
		return nil, err
	}
	if _, err := v1.ParseIndexManifest(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", filepath.Join(string(l), indexFile), err)
	}
	return &ociIndex{l: l, mediaType: types.OCIImageIndex, raw: raw}, nil
}

// ociIndex is index.json or an index blob of a layout.
type ociIndex struct {
	l         ociLayout
	mediaType types.MediaType
	raw       []byte
}

var _ v1.ImageIndex = (*ociIndex)(nil)

func (i *ociIndex) MediaType() (types.MediaType, error) { return i.mediaType, nil }
func (i *ociIndex) Digest() (v1.Hash, error)            { return partial.Digest(i) }
func (i *ociIndex) Size() (int64, error)                { return int64(len(i.raw)), nil }
func (i *ociIndex) RawManifest() ([]byte, error)        { return i.raw, nil }

func (i *ociIndex) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(i.raw))
}

func (i *ociIndex) find(h v1.Hash) (v1.Descriptor, error) {
	im, err := i.IndexManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	for _, d := range im.Manifests {
		if d.Digest == h {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("could not find descriptor in index: %s", h)
}

func (i *ociIndex) Image(h v1.Hash) (v1.Image, error) {
	desc, err := i.find(h)
	if err != nil {
		return nil, err
	}
	if !desc.MediaType.IsImage() {
		return nil, fmt.Errorf("unexpected media type for %v: %s", h, desc.MediaType)
	}
	raw, err := i.l.document("manifest", desc, refio.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&ociImage{l: i.l, desc: desc, raw: raw})
}

func (i *ociIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	desc, err := i.find(h)
	if err != nil {
		return nil, err
	}
	if !desc.MediaType.IsIndex() {
		return nil, fmt.Errorf("unexpected media type for %v: %s", h, desc.MediaType)
	}
	raw, err := i.l.document("index", desc, refio.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	if _, err := v1.ParseIndexManifest(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("parsing index %s: %w", h, err)
	}
	return &ociIndex{l: i.l, mediaType: desc.MediaType, raw: raw}, nil
}

// Blob opens an entry that is neither an image nor an index (an artifact).
func (i *ociIndex) Blob(h v1.Hash) (io.ReadCloser, error) { return i.l.blob(h) }

// ociImage is an image manifest of a layout, checked against its index
// entry when read.
type ociImage struct {
	l    ociLayout
	desc v1.Descriptor
	raw  []byte

	mu     sync.Mutex
	config []byte
	parsed *v1.Manifest              // parsed once: Layers asks for every layer
	blobs  map[v1.Hash]v1.Descriptor // config and layers by digest
}

var _ partial.CompressedImageCore = (*ociImage)(nil)

func (i *ociImage) MediaType() (types.MediaType, error) { return i.desc.MediaType, nil }
func (i *ociImage) RawManifest() ([]byte, error)        { return i.raw, nil }

// manifest parses the manifest once (callers do not change it), and
// indexes its blobs: ggcr's partial.Layers asks for each layer by digest,
// which was quadratic in the number of layers when each lookup parsed the
// manifest again.
func (i *ociImage) manifest() (*v1.Manifest, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.manifestLocked()
}

func (i *ociImage) manifestLocked() (*v1.Manifest, error) {
	if i.parsed != nil {
		return i.parsed, nil
	}
	m, err := v1.ParseManifest(bytes.NewReader(i.raw))
	if err != nil {
		return nil, err
	}
	i.blobs = make(map[v1.Hash]v1.Descriptor, len(m.Layers)+1)
	for _, d := range m.Layers {
		if _, ok := i.blobs[d.Digest]; !ok {
			i.blobs[d.Digest] = d
		}
	}
	if _, ok := i.blobs[m.Config.Digest]; !ok {
		i.blobs[m.Config.Digest] = m.Config
	}
	i.parsed = m
	return m, nil
}

// RawConfigFile reads the config once, checked against the manifest.
func (i *ociImage) RawConfigFile() ([]byte, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.config != nil {
		return i.config, nil
	}
	m, err := i.manifestLocked()
	if err != nil {
		return nil, err
	}
	b, err := i.l.document("config", m.Config, refio.MaxConfigSize)
	if err != nil {
		return nil, err
	}
	i.config = b
	return b, nil
}

func (i *ociImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	m, err := i.manifest()
	if err != nil {
		return nil, err
	}
	if h == m.Config.Digest {
		return &ociBlob{l: i.l, desc: m.Config}, nil
	}
	if d, ok := i.blobs[h]; ok {
		return &ociBlob{l: i.l, desc: d}, nil
	}
	return nil, fmt.Errorf("could not find layer in image: %s", h)
}

// ociBlob is a layer (or the config) of a layout image. Its bytes are
// checked by whoever streams them (internal/blob).
type ociBlob struct {
	l    ociLayout
	desc v1.Descriptor
}

func (b *ociBlob) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *ociBlob) Compressed() (io.ReadCloser, error)  { return b.l.blob(b.desc.Digest) }
func (b *ociBlob) Size() (int64, error)                { return b.desc.Size, nil }
func (b *ociBlob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }
func (b *ociBlob) Descriptor() (*v1.Descriptor, error) { return &b.desc, nil }

func (b *ociBlob) Exists() (bool, error) {
	p, err := b.l.blobPath(b.desc.Digest)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}
