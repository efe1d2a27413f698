package imageref

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/layerslim/layerslim/internal/imageref/dockerarchive"
	"github.com/layerslim/layerslim/internal/imageref/ocilayout"
	"github.com/layerslim/layerslim/internal/imageref/registry"
	"github.com/layerslim/layerslim/manifest"
)

// Source is what a reference names: exactly one of Image or Index is set.
type Source struct {
	Ref Ref
	// Descriptor describes the manifest or index read: digest, media type and
	// size, plus the annotations of its index.json entry for an OCI layout.
	Descriptor v1.Descriptor
	Image      v1.Image
	Index      v1.ImageIndex
}

// Named is the reference to what s holds as a write would name it: for an
// OCI layout read without a tag or digest, the tag of the one entry it
// found (oci:DIR whose only entry is v1 is oci:DIR:v1), so that Same sees
// that writing oci:DIR:v1 would replace it. Otherwise s.Ref.
func (s *Source) Named() Ref {
	r := s.Ref
	if r.Kind == OCI && r.Tag == "" && r.Digest == (v1.Hash{}) {
		r.Tag = s.Descriptor.Annotations[ocilayout.RefNameAnnotation]
	}
	return r
}

// Open reads, and never writes, the image or index that ref names.
//
//   - Registry: remote.Get, then an image or an index by media type. Layers
//     read later use ctx too.
//   - OCI: the index.json entry whose org.opencontainers.image.ref.name is
//     ref.Tag (or, when no entry has exactly that name, ends in ":"+ref.Tag,
//     as in "example.com/app:1.0"), or the manifest with digest ref.Digest
//     (searched in nested indexes too), or the only entry when neither is
//     given. Errors wrap ErrNotFound or ErrAmbiguous and list what there is.
//   - DockerArchive: the image tagged ref.Tag, or the only image, presented
//     with its layer blobs exactly as stored (see package dockerarchive): a
//     `docker save` layer is uncompressed and stays so, no gzip on the fly.
//
// Errors carry the reference: "reading oci:/x:tag: …".
func Open(ctx context.Context, ref Ref, o Options) (*Source, error) {
	s, err := open(ctx, ref, o)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ref, err)
	}
	return s, nil
}

func open(ctx context.Context, ref Ref, o Options) (*Source, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &Source{Ref: ref}
	var err error
	switch ref.Kind {
	case Registry:
		var n name.Reference
		if n, err = o.registryName(ref); err != nil {
			return nil, err
		}
		s.Descriptor, s.Image, s.Index, err = registry.Open(ctx, n, o.client())
	case OCI:
		s.Descriptor, s.Image, s.Index, err = ocilayout.Open(ref.Path, ref.Tag, ref.Digest)
	case DockerArchive:
		if s.Image, err = dockerarchive.Open(ref.Path, ref.Tag); err != nil {
			return nil, err
		}
		var desc *v1.Descriptor
		if desc, err = partial.Descriptor(s.Image); err == nil {
			s.Descriptor = *desc
		}
	default:
		return nil, fmt.Errorf("%w: unknown kind %v", ErrInvalidReference, ref.Kind)
	}
	if err == nil && s.Index != nil {
		err = checkNotNested(s.Index)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// checkNotNested refuses an index that lists an index (see
// manifest.ErrNestedIndex), before any work.
func checkNotNested(ii v1.ImageIndex) error {
	im, err := ii.IndexManifest()
	if err != nil {
		return err
	}
	return manifest.CheckNotNested(im)
}
