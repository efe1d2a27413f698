package signed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/manifest"
)

// maxArtifactManifest bounds the size of an artifact manifest read to
// classify it; a larger one is left as Other.
const maxArtifactManifest = 4 << 20

// lookups is how many subjects are looked up at once.
const lookups = 4

// Find lists what is attached to the manifests subjects in the place ref
// names: a registry repository (cosign tags and OCI referrers) or an OCI
// layout (index.json entries). A docker-archive has none. The order is that
// of subjects, then cosign tags (.sig, .att, .sbom), then referrers by digest.
// Errors name the lookup that failed.
func Find(ctx context.Context, ref imageref.Ref, o imageref.Options, subjects ...v1.Hash) ([]Artifact, error) {
	switch ref.Kind {
	case imageref.Registry:
		return findRemote(ctx, ref, o, subjects)
	case imageref.OCI:
		return findLayout(ref, subjects)
	}
	return nil, nil
}

func findRemote(ctx context.Context, ref imageref.Ref, o imageref.Options, subjects []v1.Hash) ([]Artifact, error) {
	n, _, err := o.Remote(ctx, ref)
	if err != nil {
		return nil, err
	}
	repo := n.Context()
	found := make([][]Artifact, len(subjects))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(lookups)
	for i, s := range subjects {
		g.Go(func() error {
			_, opts, err := o.Remote(gctx, ref)
			if err != nil {
				return err
			}
			found[i], err = findOne(repo, s, opts)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.Concat(found...), nil
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// findOne looks up the cosign tags and the referrers of one subject.
func findOne(repo name.Repository, s v1.Hash, opts []remote.Option) ([]Artifact, error) {
	var out []Artifact
	for _, cs := range cosignSuffixes {
		tag := repo.Tag(CosignTag(s, cs.suffix))
		d, err := remote.Head(tag, opts...)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("looking for cosign's %s: %w", tag, err)
		}
		out = append(out, Artifact{Subject: s, Kind: cs.kind, Via: ViaTag, Tag: tag.TagStr(), Digest: d.Digest, MediaType: d.MediaType})
	}
	dig := repo.Digest(s.String())
	idx, err := remote.Referrers(dig, opts...)
	if err != nil {
		return nil, fmt.Errorf("listing the referrers of %s: %w", dig, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("listing the referrers of %s: %w", dig, err)
	}
	refs := slices.Clone(im.Manifests)
	slices.SortFunc(refs, func(a, b v1.Descriptor) int { return compareHash(a.Digest, b.Digest) })
	for _, d := range refs {
		if slices.ContainsFunc(out, func(a Artifact) bool { return a.Digest == d.Digest }) {
			continue
		}
		if isDebugImage(d.Annotations) {
			continue
		}
		a := Artifact{Subject: s, Via: ViaReferrers, Digest: d.Digest, MediaType: d.MediaType, ArtifactType: d.ArtifactType}
		a.Kind = Classify(d.ArtifactType, d.Annotations)
		if a.Kind == Other && d.MediaType.IsImage() && d.Size <= maxArtifactManifest {
			// The listing did not say; the manifest may.
			if img, err := remote.Image(repo.Digest(d.Digest.String()), opts...); err == nil {
				if m, err := img.Manifest(); err == nil {
					a.Kind = classifyManifest(m)
					if m.ArtifactType != "" {
						// Some registries list the config media type instead.
						a.ArtifactType = m.ArtifactType
					}
				}
			}
		}
		out = append(out, a)
	}
	return out, nil
}

func compareHash(a, b v1.Hash) int {
	if c := bytes.Compare([]byte(a.Algorithm), []byte(b.Algorithm)); c != 0 {
		return c
	}
	return bytes.Compare([]byte(a.Hex), []byte(b.Hex))
}

// refNameAnnotation names an entry of an OCI layout's index.json.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// findLayout scans the entries of an OCI layout's index.json: entries named
// by a cosign tag of a subject (as "sha256-<hex>.sig" or "repo:sha256-<hex>.sig"),
// and manifests whose subject is one of subjects.
func findLayout(ref imageref.Ref, subjects []v1.Hash) ([]Artifact, error) {
	lp, err := layout.FromPath(ref.Path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ref, err)
	}
	root, err := lp.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ref, err)
	}
	im, err := root.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ref, err)
	}
	byKind := map[v1.Hash][]Artifact{}
	for _, d := range im.Manifests {
		rn := d.Annotations[refNameAnnotation]
		tag := rn
		if i := lastColonTag(rn); i >= 0 {
			tag = rn[i+1:]
		}
		if s, kind, ok := parseCosignTag(tag); ok && slices.Contains(subjects, s) {
			byKind[s] = append(byKind[s], Artifact{Subject: s, Kind: kind, Via: ViaTag, Tag: tag, Digest: d.Digest, MediaType: d.MediaType})
			continue
		}
		if !d.MediaType.IsImage() || d.Size > maxArtifactManifest || slices.Contains(subjects, d.Digest) {
			continue
		}
		raw, err := lp.Bytes(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("reading %s: manifest %s: %w", ref, d.Digest, err)
		}
		var m v1.Manifest
		if err := json.Unmarshal(raw, &m); err != nil || m.Subject == nil || !slices.Contains(subjects, m.Subject.Digest) {
			continue
		}
		if isDebugImage(m.Annotations) {
			continue
		}
		at := m.ArtifactType
		if at == "" {
			at = string(m.Config.MediaType)
		}
		s := m.Subject.Digest
		byKind[s] = append(byKind[s], Artifact{Subject: s, Kind: classifyManifest(&m), Via: ViaReferrers, Digest: d.Digest, MediaType: d.MediaType, ArtifactType: at})
	}
	var out []Artifact
	for _, s := range subjects {
		as := byKind[s]
		slices.SortStableFunc(as, func(a, b Artifact) int {
			if a.Via != b.Via {
				if a.Via == ViaTag {
					return -1
				}
				return 1
			}
			if a.Via == ViaTag {
				return suffixRank(a.Kind) - suffixRank(b.Kind)
			}
			return compareHash(a.Digest, b.Digest)
		})
		out = append(out, as...)
	}
	return out, nil
}

func suffixRank(k Kind) int {
	return slices.IndexFunc(cosignSuffixes, func(s struct {
		suffix string
		kind   Kind
	}) bool {
		return s.kind == k
	})
}

// lastColonTag is the index of the colon before the tag of a reference name
// such as "example.com:5000/app:tag", or -1.
func lastColonTag(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		switch s[i] {
		case ':':
			return i
		case '/':
			return -1
		}
	}
	return -1
}

// isDebugImage reports a debug image that rewrite made for its subject: it
// belongs to that digest alone, it is neither reported nor copied.
func isDebugImage(annotations map[string]string) bool {
	_, ok := annotations[manifest.AnnotationDebugFor]
	return ok
}
