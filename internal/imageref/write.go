package imageref

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/layerslim/layerslim/internal/imageref/dockerarchive"
	"github.com/layerslim/layerslim/internal/imageref/ocilayout"
	"github.com/layerslim/layerslim/internal/imageref/registry"
)

// WriteImage writes img to ref and returns its digest.
//
// Blobs go first, then the manifest, then the name, so a failure never
// leaves a tag pointing at missing content:
//
//   - Registry: remote.Write, which uploads layers and config (mounting
//     layers that come from another repository of the same registry, as
//     *remote.MountableLayer from Open does) before it puts the manifest by
//     tag.
//   - OCI: the layout is created when DIR does not exist or is empty. The
//     blobs are written, then index.json gets an entry with
//     org.opencontainers.image.ref.name=TAG that replaces any entry with that
//     name, so a tag is never listed twice. Without a tag the entry has no
//     name and replaces an unnamed entry with the same digest. Each blob goes
//     to a temporary file, checked against its digest and linked to its name
//     (an existing blob is never rewritten, so the source's blobs are safe
//     when SRC and DST share a layout); index.json is replaced by a rename.
//     A run killed at any moment leaves a valid layout.
//   - DockerArchive: tarball.MultiRefWrite into a temporary file in FILE's
//     directory, renamed over FILE once complete: a failure leaves no partial
//     file, and a source archive at the same path is read, never written in
//     place. The image gets RepoTags [TAG], or none when no tag was given
//     (`docker load` then loads it untagged). The archive holds this image
//     only.
//
// A destination given by digest (host/repo@sha256:…, oci:DIR@sha256:…) is
// accepted only when it is img's digest. ctx cancels every write.
// Errors carry the reference: "writing oci:/x:tag: …".
func WriteImage(ctx context.Context, ref Ref, img v1.Image, o Options) (v1.Hash, error) {
	h, err := write(ctx, ref, image{img}, o)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing %s: %w", ref, err)
	}
	return h, nil
}

// WriteIndex writes idx to ref and returns its digest, as WriteImage does
// for an image: every child manifest and its blobs first, then the index,
// then the name. A docker-archive cannot hold an index: the error wraps
// ErrIndexUnsupported.
func WriteIndex(ctx context.Context, ref Ref, idx v1.ImageIndex, o Options) (v1.Hash, error) {
	h, err := write(ctx, ref, index{idx}, o)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing %s: %w", ref, err)
	}
	return h, nil
}

// written is what WriteImage or WriteIndex writes: an image or an index.
type written interface {
	manifest() remote.Taggable
	Digest() (v1.Hash, error)
}

type image struct{ v1.Image }

func (i image) manifest() remote.Taggable { return i.Image }

type index struct{ v1.ImageIndex }

func (i index) manifest() remote.Taggable { return i.ImageIndex }

func write(ctx context.Context, ref Ref, m written, o Options) (v1.Hash, error) {
	if err := ctx.Err(); err != nil {
		return v1.Hash{}, err
	}
	if _, isIndex := m.(index); isIndex && ref.Kind == DockerArchive {
		return v1.Hash{}, ErrIndexUnsupported
	}
	h, err := m.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	switch ref.Kind {
	case Registry:
		n, err := o.registryName(ref)
		if err != nil {
			return v1.Hash{}, err
		}
		if d, ok := n.(name.Digest); ok && d.DigestStr() != h.String() {
			return v1.Hash{}, fmt.Errorf("cannot write %s to a reference by digest %s", h, d.DigestStr())
		}
		return h, registry.Write(ctx, n, m.manifest(), o.client(), o.Jobs, o.Progress)
	case OCI:
		if ref.Digest != (v1.Hash{}) && ref.Digest != h {
			return v1.Hash{}, fmt.Errorf("cannot write %s to a reference by digest %s", h, ref.Digest)
		}
		if img, ok := m.(image); ok {
			return h, ocilayout.WriteImage(ctx, ref.Path, ref.Tag, img.Image, o.Jobs)
		}
		return h, ocilayout.WriteIndex(ctx, ref.Path, ref.Tag, m.(index).ImageIndex, o.Jobs)
	case DockerArchive:
		return h, dockerarchive.Write(ctx, ref.Path, ref.Tag, h, m.(image).Image, o.Progress)
	}
	return v1.Hash{}, fmt.Errorf("%w: unknown kind %v", ErrInvalidReference, ref.Kind)
}
