package signed

import (
	"fmt"
	"io"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Count says how many artifacts of each kind as holds: "1 signature, 2 SBOMs".
func Count(as []Artifact) string {
	var parts []string
	for _, k := range []Kind{Signature, Attestation, SBOM, Other} {
		n := 0
		for _, a := range as {
			if a.Kind == k {
				n++
			}
		}
		if n == 0 {
			continue
		}
		name := string(k)
		switch {
		case k == SBOM:
			name = "SBOM"
		case k == Other:
			name = "other artifact"
		}
		if n > 1 {
			name += "s"
		}
		parts = append(parts, fmt.Sprintf("%d %s", n, name))
	}
	return strings.Join(parts, ", ")
}

// List writes as grouped by subject, one line each, with the subject's new
// digest where it is known. labels names subjects ("index", "linux/amd64").
func List(w io.Writer, as []Artifact, labels map[v1.Hash]string) {
	var subjects []v1.Hash
	for _, a := range as {
		if !slices.Contains(subjects, a.Subject) {
			subjects = append(subjects, a.Subject)
		}
	}
	for _, s := range subjects {
		head := "  " + s.String()
		if l := labels[s]; l != "" {
			head += " (" + l + ")"
		}
		var ns *v1.Hash
		for _, a := range as {
			if a.Subject == s && a.NewSubject != nil {
				ns = a.NewSubject
			}
		}
		if ns != nil {
			head += " → " + ns.String()
		}
		fmt.Fprintln(w, head+":")
		for _, a := range as {
			if a.Subject != s {
				continue
			}
			line := fmt.Sprintf("    %-11s %s", a.Kind, a.Name())
			switch {
			case a.CopiedTo != "":
				line += ", copied to " + a.CopiedTo
			case a.CopyError != "":
				line += ", not copied: " + a.CopyError
			}
			fmt.Fprintln(w, line)
		}
	}
}

// Resign returns the commands that would sign the rewritten manifests again
// for what as held: cosign sign for cosign signatures and sigstore bundles,
// cosign attest for attestations, notation sign for Notary signatures.
// repo is where the output lives ("registry.example/app"); "" when it is not
// a registry, and the commands then say to push it first.
func Resign(as []Artifact, repo string) []string {
	if repo == "" {
		repo = "REGISTRY/REPO"
	}
	var out []string
	add := func(s string) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, a := range as {
		if !a.Kind.Binds() || a.NewSubject == nil {
			continue
		}
		ref := repo + "@" + a.NewSubject.String()
		switch {
		case a.Kind == Attestation:
			add("cosign attest --type PREDICATE_TYPE --predicate FILE " + ref)
		case strings.Contains(strings.ToLower(a.ArtifactType), "notary"):
			add("notation sign " + ref)
		default:
			add("cosign sign " + ref)
		}
	}
	return out
}
