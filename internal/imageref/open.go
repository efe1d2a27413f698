package imageref

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"

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
		r.Tag = s.Descriptor.Annotations[refNameAnnotation]
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
//     with its layer blobs exactly as stored (see the package's archive
//     reader): a `docker save` layer is uncompressed and stays so, no gzip
//     on the fly.
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
	switch ref.Kind {
	case Registry:
		return openRemote(ctx, ref, o)
	case OCI:
		return openLayout(ref)
	case DockerArchive:
		img, err := openArchive(ref.Path, ref.Tag)
		if err != nil {
			return nil, err
		}
		desc, err := partial.Descriptor(img)
		if err != nil {
			return nil, err
		}
		return &Source{Ref: ref, Descriptor: *desc, Image: img}, nil
	}
	return nil, fmt.Errorf("%w: unknown kind %v", ErrInvalidReference, ref.Kind)
}

func openRemote(ctx context.Context, ref Ref, o Options) (*Source, error) {
	n, err := o.registryName(ref)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(n, o.remoteOptions(ctx)...)
	if err != nil {
		return nil, o.registryError(ctx, n.Context(), err)
	}
	s := &Source{Ref: ref, Descriptor: desc.Descriptor}
	puller, err := remote.NewPuller(o.remoteOptions(ctx)...)
	if err != nil {
		return nil, err
	}
	switch mt := desc.MediaType; {
	case mt.IsIndex():
		s.Index, err = desc.ImageIndex()
		if err == nil {
			err = checkNotNested(s.Index)
		}
		if err == nil {
			s.Index = &registryIndex{inner: s.Index, ctx: ctx, repo: n.Context(), puller: puller}
		}
	case mt.IsImage():
		s.Image, err = desc.Image()
		if err == nil {
			s.Image, err = newRegistryImage(ctx, s.Image, n.Context(), puller)
		}
	default:
		err = fmt.Errorf("%w %q", ErrUnsupportedMediaType, mt)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

func openLayout(ref Ref) (*Source, error) {
	root, err := ociLayout(ref.Path).rootIndex()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no OCI image layout (index.json) in %s", ErrNotFound, ref.Path)
	}
	if err != nil {
		return nil, err
	}
	if err := checkLayoutFile(ref.Path); err != nil {
		return nil, err
	}
	parent, desc, err := selectLayoutEntry(root, ref)
	if err != nil {
		return nil, err
	}
	s := &Source{Ref: ref, Descriptor: desc}
	switch mt := desc.MediaType; {
	case mt.IsIndex():
		s.Index, err = parent.ImageIndex(desc.Digest)
		if err == nil {
			err = checkNotNested(s.Index)
		}
	case mt.IsImage():
		s.Image, err = parent.Image(desc.Digest)
	default:
		err = fmt.Errorf("%w %q for %s", ErrUnsupportedMediaType, mt, desc.Digest)
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

// selectLayoutEntry finds the descriptor ref names in an OCI layout, and the
// index that lists it.
func selectLayoutEntry(root v1.ImageIndex, ref Ref) (v1.ImageIndex, v1.Descriptor, error) {
	im, err := root.IndexManifest()
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	switch {
	case ref.Digest != (v1.Hash{}):
		parent, desc, err := findDigest(root, ref.Digest, 0)
		if err != nil {
			return nil, v1.Descriptor{}, err
		}
		if parent == nil {
			return nil, v1.Descriptor{}, fmt.Errorf("%w: no manifest %s in the layout (available: %s)", ErrNotFound, ref.Digest, available(im.Manifests))
		}
		return parent, desc, nil
	case ref.Tag != "":
		var exact, named []v1.Descriptor
		for _, d := range im.Manifests {
			rn := d.Annotations[refNameAnnotation]
			switch {
			case rn == ref.Tag:
				exact = append(exact, d)
			case tagOf(rn) == ref.Tag:
				named = append(named, d)
			}
		}
		cands := exact
		if len(cands) == 0 {
			cands = named
		}
		cands = uniqueDigests(cands)
		switch len(cands) {
		case 0:
			return nil, v1.Descriptor{}, fmt.Errorf("%w: tag %q is not in the layout (available: %s)", ErrNotFound, ref.Tag, available(im.Manifests))
		case 1:
			return root, cands[0], nil
		}
		return nil, v1.Descriptor{}, fmt.Errorf("%w: tag %q names %d different manifests: %s", ErrAmbiguous, ref.Tag, len(cands), available(cands))
	}
	switch len(im.Manifests) {
	case 0:
		return nil, v1.Descriptor{}, fmt.Errorf("%w: the layout holds no image", ErrNotFound)
	case 1:
		return root, im.Manifests[0], nil
	}
	return nil, v1.Descriptor{}, fmt.Errorf("%w: the layout holds %d entries, name one with oci:DIR:TAG or oci:DIR@DIGEST (available: %s)", ErrAmbiguous, len(im.Manifests), available(im.Manifests))
}

// maxIndexDepth bounds the search for a digest through nested indexes.
const maxIndexDepth = 8

// findDigest looks for h among the entries of ii and, depth first, of the
// indexes it lists. It returns a nil index when h is nowhere.
func findDigest(ii v1.ImageIndex, h v1.Hash, depth int) (v1.ImageIndex, v1.Descriptor, error) {
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	for _, d := range im.Manifests {
		if d.Digest == h {
			return ii, d, nil
		}
	}
	if depth >= maxIndexDepth {
		return nil, v1.Descriptor{}, nil
	}
	for _, d := range im.Manifests {
		if !d.MediaType.IsIndex() {
			continue
		}
		child, err := ii.ImageIndex(d.Digest)
		if err != nil {
			return nil, v1.Descriptor{}, err
		}
		if p, desc, err := findDigest(child, h, depth+1); err != nil || p != nil {
			return p, desc, err
		}
	}
	return nil, v1.Descriptor{}, nil
}

// tagOf returns the tag of a full reference such as "example.com/app:1.0",
// or "" when refName has none.
func tagOf(refName string) string {
	i := strings.LastIndex(refName, ":")
	if i <= 0 || strings.Contains(refName[i+1:], "/") {
		return ""
	}
	return refName[i+1:]
}

func uniqueDigests(ds []v1.Descriptor) []v1.Descriptor {
	var out []v1.Descriptor
	seen := map[v1.Hash]bool{}
	for _, d := range ds {
		if !seen[d.Digest] {
			seen[d.Digest] = true
			out = append(out, d)
		}
	}
	return out
}

// available lists index.json entries for an error message: their ref.name,
// or "@digest" for unnamed ones.
func available(ds []v1.Descriptor) string {
	if len(ds) == 0 {
		return "none"
	}
	names := make([]string, 0, len(ds))
	for _, d := range ds {
		if rn := d.Annotations[refNameAnnotation]; rn != "" {
			names = append(names, rn)
		} else {
			names = append(names, "@"+d.Digest.String())
		}
	}
	return strings.Join(names, ", ")
}
