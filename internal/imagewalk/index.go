package imagewalk

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/manifest"
)

// AnnotationReferenceType is where BuildKit marks an index entry that is
// not an image but an attestation manifest (value "attestation-manifest").
const AnnotationReferenceType = "vnd.docker.reference.type"

// IsAttestation reports whether the index entry d is an attestation, not
// an image to process: BuildKit's annotation says so, or its platform's os
// is "unknown".
func IsAttestation(d v1.Descriptor) bool {
	if d.Annotations[AnnotationReferenceType] == "attestation-manifest" {
		return true
	}
	return d.Platform != nil && d.Platform.OS == "unknown"
}

// IsImage reports whether the index entry d is an image to process: an
// image manifest that is not an attestation.
func IsImage(d v1.Descriptor) bool { return d.MediaType.IsImage() && !IsAttestation(d) }

// AnnotationZstdVariant marks, on an index entry, the zstd variant of an
// image that the index also holds in another compression (containers/image's
// convention, which --add-compression writes).
const AnnotationZstdVariant = "io.github.containers.compression.zstd"

// IsZstdVariant reports whether the index entry d is marked as the zstd
// variant of an image the index also holds in another compression.
func IsZstdVariant(d v1.Descriptor) bool { return d.Annotations[AnnotationZstdVariant] == "true" }

// PlatformName names the platform of an index entry in messages: its
// string, or "unknown platform" for an entry without one.
func PlatformName(p *v1.Platform) string {
	if p == nil {
		return "unknown platform"
	}
	return p.String()
}

// Child is an entry of an index that a walk visits.
type Child struct {
	// Position is the entry's place in the index manifest.
	Position int
	Desc     v1.Descriptor
	// Image is set for an image to process; false for an entry to carry
	// over unchanged (an attestation, an artifact).
	Image bool
}

// Children returns the entries of im to process, in the index's order: the
// images (IsImage) whose descriptor platform want selects (Match; an image
// whose descriptor has no platform is listed, its config decides), and,
// when others is set and want is empty, every other entry, with Image
// false. An index that lists an index is refused with
// manifest.ErrNestedIndex.
func Children(im *v1.IndexManifest, want []v1.Platform, others bool) ([]Child, error) {
	if err := manifest.CheckNotNested(im); err != nil {
		return nil, err
	}
	var out []Child
	for i, d := range im.Manifests {
		switch {
		case IsImage(d):
			if d.Platform != nil && !Match(want, *d.Platform) {
				continue
			}
			out = append(out, Child{Position: i, Desc: d, Image: true})
		case others && len(want) == 0:
			out = append(out, Child{Position: i, Desc: d})
		}
	}
	return out, nil
}

// Images returns the descriptors of the images Children lists (others
// left out).
func Images(im *v1.IndexManifest, want []v1.Platform) ([]v1.Descriptor, error) {
	cs, err := Children(im, want, false)
	if err != nil {
		return nil, err
	}
	out := make([]v1.Descriptor, len(cs))
	for i, c := range cs {
		out[i] = c.Desc
	}
	return out, nil
}
