package rewrite

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/manifest"
)

// The debug image (or index) names its slim one as its OCI 1.1 subject, so
// the referrers API (and, on registries without it, the referrers tag
// schema that remote.Write keeps) lists the debug image next to the slim
// one. The slim manifest is left as it is: its digest does not depend on
// its debug image. Docker schema 2 has no subject field.

// subject is the descriptor a referrer of the manifest desc carries.
func subject(desc v1.Descriptor) *v1.Descriptor {
	return &v1.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}
}

// debugSource is the slim manifest m, with the slim manifest (desc) as
// subject: what the debug image's manifest is built from.
func debugSource(m *v1.Manifest, desc v1.Descriptor, format manifest.Format) *v1.Manifest {
	if format != manifest.OCI {
		return m
	}
	c := *m
	c.Subject = subject(desc)
	return &c
}

// debugIndexSource is debugSource for the debug index of an index.
func debugIndexSource(im *v1.IndexManifest, desc v1.Descriptor, format manifest.Format) *v1.IndexManifest {
	if format != manifest.OCI {
		return im
	}
	c := *im
	c.Subject = subject(desc)
	return &c
}
