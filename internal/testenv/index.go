package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// IndexSpec describes an index for Index.
type IndexSpec struct {
	// Images in the order the index lists them. Their platforms come from
	// their configs (os, architecture, variant, os.version, os.features).
	Images []v1.Image
	// OCI makes an OCI image index; otherwise a Docker manifest list.
	OCI bool
	// Annotations of the index (OCI only).
	Annotations map[string]string
}

// MultiArchIndex is a Docker manifest list of imgs, platforms in the given order.
func MultiArchIndex(t testing.TB, imgs ...v1.Image) v1.ImageIndex {
	t.Helper()
	return Index(t, IndexSpec{Images: imgs})
}

// OCIMultiArchIndex is an OCI image index of imgs, platforms in the given order.
func OCIMultiArchIndex(t testing.TB, imgs ...v1.Image) v1.ImageIndex {
	t.Helper()
	return Index(t, IndexSpec{Images: imgs, OCI: true})
}

// Index builds the index spec describes, in memory; the same spec always gives
// the same digest.
func Index(t testing.TB, spec IndexSpec) v1.ImageIndex {
	t.Helper()
	idx, err := buildIndex(spec)
	if err != nil {
		t.Fatalf("testenv.Index: %v", err)
	}
	return idx
}

func buildIndex(spec IndexSpec) (*memIndex, error) {
	mt := types.DockerManifestList
	if spec.OCI {
		mt = types.OCIImageIndex
	} else if len(spec.Annotations) > 0 {
		return nil, fmt.Errorf("annotations need an OCI index (set OCI)")
	}
	idx := &memIndex{mediaType: mt, images: map[v1.Hash]v1.Image{}}
	im := v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     mt,
		Manifests:     []v1.Descriptor{},
		Annotations:   spec.Annotations,
	}
	for i, img := range spec.Images {
		d, err := img.Digest()
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		size, err := img.Size()
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		imt, err := img.MediaType()
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		im.Manifests = append(im.Manifests, v1.Descriptor{
			MediaType: imt,
			Size:      size,
			Digest:    d,
			Platform: &v1.Platform{
				Architecture: cf.Architecture,
				OS:           cf.OS,
				OSVersion:    cf.OSVersion,
				OSFeatures:   cf.OSFeatures,
				Variant:      cf.Variant,
			},
		})
		idx.images[d] = img
	}
	raw, err := json.MarshalIndent(im, "", "   ")
	if err != nil {
		return nil, err
	}
	idx.raw = raw
	return idx, nil
}

// memIndex is an index held in memory over in-memory (or any) images.
type memIndex struct {
	mediaType types.MediaType
	raw       []byte
	images    map[v1.Hash]v1.Image
}

var _ v1.ImageIndex = (*memIndex)(nil)

func (x *memIndex) MediaType() (types.MediaType, error) { return x.mediaType, nil }
func (x *memIndex) Digest() (v1.Hash, error)            { return sha256Hash(x.raw), nil }
func (x *memIndex) Size() (int64, error)                { return int64(len(x.raw)), nil }
func (x *memIndex) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(x.raw))
}
func (x *memIndex) RawManifest() ([]byte, error) { return bytes.Clone(x.raw), nil }

func (x *memIndex) Image(h v1.Hash) (v1.Image, error) {
	if img, ok := x.images[h]; ok {
		return img, nil
	}
	return nil, fmt.Errorf("index has no image %s", h)
}

func (x *memIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	return nil, fmt.Errorf("index has no child index %s", h)
}
