package ocilayout

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/internal/imageref/refio"
)

// RefNameAnnotation names an entry of an OCI layout's index.json: its tag.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// Open reads, and never writes, what oci:dir[:tag|@digest] names: the
// index.json entry whose org.opencontainers.image.ref.name is tag (or, when
// no entry has exactly that name, ends in ":"+tag, as in
// "example.com/app:1.0"), or the manifest with that digest (searched in
// nested indexes too), or the only entry when neither is given. It returns
// the entry's descriptor and either an image or an index. Errors wrap
// refio.ErrNotFound or refio.ErrAmbiguous and list what there is.
func Open(dir, tag string, digest v1.Hash) (desc v1.Descriptor, img v1.Image, idx v1.ImageIndex, err error) {
	root, err := ociLayout(dir).rootIndex()
	if errors.Is(err, fs.ErrNotExist) {
		return desc, nil, nil, fmt.Errorf("%w: no OCI image layout (index.json) in %s", refio.ErrNotFound, dir)
	}
	if err != nil {
		return desc, nil, nil, err
	}
	if err := checkLayoutFile(dir); err != nil {
		return desc, nil, nil, err
	}
	parent, desc, err := selectLayoutEntry(root, tag, digest)
	if err != nil {
		return desc, nil, nil, err
	}
	switch mt := desc.MediaType; {
	case mt.IsIndex():
		idx, err = parent.ImageIndex(desc.Digest)
	case mt.IsImage():
		img, err = parent.Image(desc.Digest)
	default:
		err = fmt.Errorf("%w %q for %s", refio.ErrUnsupportedMediaType, mt, desc.Digest)
	}
	if err != nil {
		return desc, nil, nil, err
	}
	return desc, img, idx, nil
}

// BlobPath is where the blob h is, or would be, in the layout at dir.
func BlobPath(dir string, h v1.Hash) (string, error) {
	return ociLayout(dir).blobPath(h)
}

// selectLayoutEntry finds the descriptor ref names in an OCI layout, and the
// index that lists it.
func selectLayoutEntry(root v1.ImageIndex, tag string, digest v1.Hash) (v1.ImageIndex, v1.Descriptor, error) {
	im, err := root.IndexManifest()
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	switch {
	case digest != (v1.Hash{}):
		parent, desc, err := findDigest(root, digest, 0)
		if err != nil {
			return nil, v1.Descriptor{}, err
		}
		if parent == nil {
			return nil, v1.Descriptor{}, fmt.Errorf("%w: no manifest %s in the layout (available: %s)", refio.ErrNotFound, digest, available(im.Manifests))
		}
		return parent, desc, nil
	case tag != "":
		var exact, named []v1.Descriptor
		for _, d := range im.Manifests {
			rn := d.Annotations[RefNameAnnotation]
			switch {
			case rn == tag:
				exact = append(exact, d)
			case tagOf(rn) == tag:
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
			return nil, v1.Descriptor{}, fmt.Errorf("%w: tag %q is not in the layout (available: %s)", refio.ErrNotFound, tag, available(im.Manifests))
		case 1:
			return root, cands[0], nil
		}
		return nil, v1.Descriptor{}, fmt.Errorf("%w: tag %q names %d different manifests: %s", refio.ErrAmbiguous, tag, len(cands), available(cands))
	}
	switch len(im.Manifests) {
	case 0:
		return nil, v1.Descriptor{}, fmt.Errorf("%w: the layout holds no image", refio.ErrNotFound)
	case 1:
		return root, im.Manifests[0], nil
	}
	return nil, v1.Descriptor{}, fmt.Errorf("%w: the layout holds %d entries, name one with oci:DIR:TAG or oci:DIR@DIGEST (available: %s)", refio.ErrAmbiguous, len(im.Manifests), available(im.Manifests))
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
		if rn := d.Annotations[RefNameAnnotation]; rn != "" {
			names = append(names, rn)
		} else {
			names = append(names, "@"+d.Digest.String())
		}
	}
	return strings.Join(names, ", ")
}
