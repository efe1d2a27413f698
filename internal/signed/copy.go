package signed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/layerslim/layerslim/internal/imageref"
)

// ErrCopyUnsupported: --copy-referrers copies between registries only.
var ErrCopyUnsupported = errors.New("referrers are copied from a registry source to a registry destination only")

// CopySBOMs attaches a copy of every SBOM in arts to the new digest of its
// subject in dst's repository, and records the outcome in arts (CopiedTo or
// CopyError). newDescs maps each old subject digest to the descriptor of
// the manifest that replaced it, which must already be written at dst.
//
//   - A referrer is copied as the same manifest with subject set to the new
//     manifest (so its digest changes); its blobs are mounted from the
//     source repository, or copied from another registry. go-containerregistry
//     updates the sha256-<hex> referrers tag where the registry has no
//     referrers API.
//   - A cosign .sbom tag is copied unchanged to the new digest's .sbom tag.
//
// Signatures and attestations are never copied: they are signed statements
// about the old digest. CopySBOMs returns how many were copied; a failure
// to copy one is recorded in it and does not stop the others.
func CopySBOMs(ctx context.Context, src, dst imageref.Ref, o imageref.Options, arts []Artifact, newDescs map[v1.Hash]v1.Descriptor) int {
	copied := 0
	for i := range arts {
		a := &arts[i]
		if a.Kind != SBOM {
			continue
		}
		nd, ok := newDescs[a.Subject]
		if !ok {
			a.CopyError = "its subject was not rewritten (left out by --platform)"
			continue
		}
		if src.Kind != imageref.Registry || dst.Kind != imageref.Registry {
			a.CopyError = ErrCopyUnsupported.Error()
			continue
		}
		to, err := copyOne(ctx, src, dst, o, *a, nd)
		if err != nil {
			a.CopyError = err.Error()
			continue
		}
		a.CopiedTo = to
		copied++
	}
	return copied
}

func copyOne(ctx context.Context, src, dst imageref.Ref, o imageref.Options, a Artifact, nd v1.Descriptor) (string, error) {
	sn, sopts, err := o.Remote(ctx, src)
	if err != nil {
		return "", err
	}
	dn, _, err := o.Remote(ctx, dst)
	if err != nil {
		return "", err
	}
	srcRepo, dstRepo := sn.Context(), dn.Context()
	if !a.MediaType.IsImage() {
		return "", fmt.Errorf("%s is not an image manifest (%s)", a.Digest, a.MediaType)
	}
	from := srcRepo.Digest(a.Digest.String())
	img, err := remote.Image(from, sopts...)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", from, err)
	}
	var to name.Reference
	if a.Via == ViaTag {
		to = dstRepo.Tag(CosignTag(nd.Digest, ".sbom"))
	} else {
		img, err = withSubject(img, v1.Descriptor{MediaType: nd.MediaType, Size: nd.Size, Digest: nd.Digest})
		if err != nil {
			return "", fmt.Errorf("re-attaching %s: %w", from, err)
		}
		h, err := img.Digest()
		if err != nil {
			return "", err
		}
		to = dstRepo.Digest(h.String())
	}
	if _, err := imageref.WriteImage(ctx, imageref.Ref{Kind: imageref.Registry, Name: to}, img, o); err != nil {
		return "", err
	}
	return to.String(), nil
}

// subjectImage is an artifact manifest with a new subject; everything else
// (config, layers, which remote mounts) comes from the original.
type subjectImage struct {
	v1.Image
	raw []byte
}

func withSubject(img v1.Image, subject v1.Descriptor) (v1.Image, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	if m["subject"], err = json.Marshal(subject); err != nil {
		return nil, err
	}
	out, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &subjectImage{Image: img, raw: out}, nil
}

func (s *subjectImage) RawManifest() ([]byte, error) { return s.raw, nil }
func (s *subjectImage) Size() (int64, error)         { return int64(len(s.raw)), nil }
func (s *subjectImage) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(s.raw))
	return h, err
}
func (s *subjectImage) Manifest() (*v1.Manifest, error) {
	var m v1.Manifest
	if err := json.Unmarshal(s.raw, &m); err != nil {
		return nil, err
	}
	return &m, nil
}
