package rewrite

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/internal/imagewalk"
)

// annotationReferenceDigest is where a BuildKit attestation manifest's index
// entry names the image it describes.
const annotationReferenceDigest = "vnd.docker.reference.digest"

// dropStaleAttestations removes from descs the attestation entries that
// describe a source image this run replaced by another digest: kept, they
// would point at an image the index no longer holds, and re-pointed they
// would claim a provenance (or an SBOM) for an image it does not describe.
// Attestations of images left unchanged stay. It returns what is kept and
// what was dropped.
func dropStaleAttestations(descs []v1.Descriptor, images []ImageReport) (kept, dropped []v1.Descriptor) {
	replaced := map[string]bool{}
	for _, ir := range images {
		if ir.SourceDigest != ir.OutputDigest {
			replaced[ir.SourceDigest.String()] = true
		}
	}
	for _, d := range descs {
		if imagewalk.IsAttestation(d) && replaced[d.Annotations[annotationReferenceDigest]] {
			dropped = append(dropped, d)
			continue
		}
		kept = append(kept, d)
	}
	return kept, dropped
}
