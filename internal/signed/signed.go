// Package signed finds what is attached to a source image by digest —
// signatures, attestations, SBOMs — which a rewrite leaves behind: they name
// the old manifest digest, so they do not verify for the new one.
//
// Two conventions are looked up, for the source manifest and, for an index,
// for each child manifest too:
//
//   - cosign's tags in the same repository: sha256-<hex>.sig (signature),
//     .att (attestation), .sbom (SBOM);
//   - OCI referrers: manifests whose subject is the digest, through the
//     registry's referrers API or, where the registry has none, the
//     sha256-<hex> referrers tag schema (go-containerregistry falls back by
//     itself). In an OCI image layout, the index.json entries whose manifest
//     has that subject, and entries named by cosign's tags.
//
// A docker-archive holds no such artifacts.
//
// Find lists them; a Policy says what a run does when signatures or
// attestations are found; CopySBOMs re-attaches SBOMs to the new digest.
package signed

import (
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Kind classifies an attached artifact.
type Kind string

// The kinds of artifact.
const (
	// Signature: a cosign signature, a sigstore bundle, a Notary signature.
	Signature Kind = "signature"
	// Attestation: an in-toto statement (cosign .att, DSSE envelope, a
	// sigstore bundle with a predicate type).
	Attestation Kind = "attestation"
	// SBOM: SPDX, CycloneDX or syft documents (cosign .sbom).
	SBOM Kind = "sbom"
	// Other: an artifact of a type layerslim does not know.
	Other Kind = "other"
)

// Binds reports whether an artifact of this kind is a signed statement about
// its subject, which stops verifying when the digest changes. Only these
// make a source "signed" for the Policy; an SBOM or another artifact alone
// is reported, not acted on.
func (k Kind) Binds() bool { return k == Signature || k == Attestation }

// How an artifact was found.
const (
	ViaTag       = "cosign-tag" // cosign's sha256-<hex>.sig/.att/.sbom tags
	ViaReferrers = "referrers"  // OCI referrers: the API, the tag schema, or an OCI layout entry with a subject
)

// Artifact is one thing attached to a source manifest.
type Artifact struct {
	// Subject is the source manifest it is attached to.
	Subject v1.Hash `json:"subject"`
	Kind    Kind    `json:"kind"`
	// Via is ViaTag or ViaReferrers.
	Via string `json:"via"`
	// Tag is the cosign tag (ViaTag only).
	Tag string `json:"tag,omitempty"`
	// Digest is the artifact's own manifest.
	Digest       v1.Hash         `json:"digest"`
	MediaType    types.MediaType `json:"mediaType,omitempty"`
	ArtifactType string          `json:"artifactType,omitempty"`

	// NewSubject is the rewritten manifest's digest, once known.
	NewSubject *v1.Hash `json:"newSubject,omitempty"`
	// CopiedTo names the copy attached to NewSubject (--copy-referrers).
	CopiedTo string `json:"copiedTo,omitempty"`
	// CopyError says why it was not copied, when a copy was asked for.
	CopyError string `json:"copyError,omitempty"`
}

// Name is how a message names the artifact: its tag or its digest, and its type.
func (a Artifact) Name() string {
	if a.Via == ViaTag {
		return a.Tag + " (cosign tag)"
	}
	t := a.ArtifactType
	if t == "" {
		t = string(a.MediaType)
	}
	return fmt.Sprintf("referrer %s (%s)", a.Digest, t)
}

// Binding returns the artifacts that are signed statements (Kind.Binds).
func Binding(as []Artifact) []Artifact {
	var out []Artifact
	for _, a := range as {
		if a.Kind.Binds() {
			out = append(out, a)
		}
	}
	return out
}

// Policy says what to do with a source that has signatures or attestations.
type Policy string

// The policies.
const (
	// Warn rewrites and writes, and warns that the signatures will not
	// verify for the new digest, with how to sign it again.
	Warn Policy = "warn"
	// Skip writes nothing and succeeds, saying so.
	Skip Policy = "skip"
	// Fail writes nothing and fails.
	Fail Policy = "fail"
)

// ParsePolicy parses warn, skip or fail.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case Warn, Skip, Fail:
		return p, nil
	}
	return "", fmt.Errorf("%q: want warn, skip or fail", s)
}

// cosignSuffixes are cosign's tag suffixes and what they hold.
var cosignSuffixes = []struct {
	suffix string
	kind   Kind
}{{".sig", Signature}, {".att", Attestation}, {".sbom", SBOM}}

// CosignTag is cosign's tag for what it attaches to h with suffix
// (".sig", ".att" or ".sbom"): sha256-<hex><suffix>.
func CosignTag(h v1.Hash, suffix string) string {
	return h.Algorithm + "-" + h.Hex + suffix
}

// parseCosignTag is the inverse of CosignTag.
func parseCosignTag(tag string) (v1.Hash, Kind, bool) {
	for _, s := range cosignSuffixes {
		rest, ok := strings.CutSuffix(tag, s.suffix)
		if !ok {
			continue
		}
		alg, hex, ok := strings.Cut(rest, "-")
		if !ok {
			return v1.Hash{}, "", false
		}
		h, err := v1.NewHash(alg + ":" + hex)
		if err != nil {
			return v1.Hash{}, "", false
		}
		return h, s.kind, true
	}
	return v1.Hash{}, "", false
}

// Annotations cosign and sigstore put on bundle referrers.
const (
	bundlePredicateType = "dev.sigstore.bundle.predicateType"
	cosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"
)

// Classify tells the kind of an artifact from its artifact type (or, for
// older artifacts, its config or layer media type) and annotations.
func Classify(artifactType string, annotations map[string]string) Kind {
	t := strings.ToLower(artifactType)
	switch {
	case t == "":
		return Other
	case strings.HasPrefix(t, "application/vnd.dev.sigstore.bundle"):
		if p := annotations[bundlePredicateType]; p != "" && p != cosignSignPredicate {
			return Attestation
		}
		return Signature
	case strings.HasPrefix(t, "application/vnd.in-toto"),
		strings.HasPrefix(t, "application/vnd.dsse.envelope"),
		strings.HasPrefix(t, "application/vnd.dev.cosign.artifact.att"),
		strings.HasPrefix(t, "application/vnd.dev.cosign.attestation"):
		return Attestation
	case strings.Contains(t, "spdx"),
		strings.Contains(t, "cyclonedx"),
		strings.Contains(t, "syft"),
		strings.HasPrefix(t, "application/vnd.dev.cosign.artifact.sbom"):
		return SBOM
	case strings.HasPrefix(t, "application/vnd.dev.cosign."),
		strings.HasPrefix(t, "application/vnd.cncf.notary.signature"),
		strings.HasPrefix(t, "application/vnd.cncf.notary.v2.signature"):
		return Signature
	}
	return Other
}

// classifyManifest classifies an artifact manifest whose artifact type did
// not tell: by its config media type, then by its layers' media types.
func classifyManifest(m *v1.Manifest) Kind {
	if k := Classify(m.ArtifactType, m.Annotations); k != Other {
		return k
	}
	if k := Classify(string(m.Config.MediaType), m.Annotations); k != Other {
		return k
	}
	for _, l := range m.Layers {
		if k := Classify(string(l.MediaType), l.Annotations); k != Other {
			return k
		}
	}
	return Other
}
