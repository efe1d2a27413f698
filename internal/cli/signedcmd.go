package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/spf13/pflag"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/signed"
	"github.com/layerslim/layerslim/rewrite"
)

// signedFlags are --signed and --copy-referrers, shared by every command
// that writes an image.
type signedFlags struct {
	signedPolicy  string
	copyReferrers bool

	policy signed.Policy
}

func (o *signedFlags) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.signedPolicy, "signed", "warn", "when SRC has signatures or attestations, which will not verify for the new digest: warn (write, and say how to re-sign), skip (write nothing, exit 0) or fail (write nothing, exit 1)")
	f.BoolVar(&o.copyReferrers, "copy-referrers", false, "attach a copy of SRC's SBOMs (OCI referrers and cosign .sbom tags) to the new digest at DST (registries only)")
}

func (o *signedFlags) validate() error {
	p, err := signed.ParsePolicy(o.signedPolicy)
	if err != nil {
		return &UsageError{Err: fmt.Errorf("--signed: %w", err)}
	}
	o.policy = p
	return nil
}

// signedCheck is what was found attached to the source, and what became of it.
type signedCheck struct {
	policy    signed.Policy
	copy      bool
	found     []signed.Artifact
	lookupErr error
	labels    map[v1.Hash]string
}

// signedReport is the "signed" part of the --report file.
type signedReport struct {
	Policy signed.Policy `json:"policy"`
	// Action: "none" (nothing signed found), "warned" or "skipped".
	Action      string            `json:"action"`
	Artifacts   []signed.Artifact `json:"artifacts"`
	LookupError string            `json:"lookupError,omitempty"`
}

// checkSigned looks for what is attached to the source manifests and
// applies the policy before anything is rewritten or written: fail returns
// an error, skip says so in the result. A lookup that fails stops skip and
// fail (they cannot tell), and is a warning under warn.
func (j *job) checkSigned(ctx context.Context, w io.Writer, src imageref.Ref, source *imageref.Source, ro imageref.Options) (*signedCheck, error) {
	o := j.o
	sc := &signedCheck{policy: o.policy, copy: o.copyReferrers, labels: map[v1.Hash]string{}}
	if sc.policy == "" {
		sc.policy = signed.Warn
	}
	subjects, err := signed.Subjects(source, o.plats)
	if err == nil {
		sc.found, err = signed.Find(ctx, src, ro, subjects...)
	}
	if err != nil {
		if sc.policy != signed.Warn {
			return nil, fmt.Errorf("looking for signatures of %s: %w; with --signed=%s nothing is written unless the lookup succeeds", src, err, sc.policy)
		}
		sc.lookupErr = err
		fmt.Fprintf(w, "layerslim: warning: could not look for signatures of %s (if it is signed, the signatures will not verify for the new digest): %v\n", src, err)
		return sc, nil
	}
	sc.labelSource(source)
	binding := signed.Binding(sc.found)
	if len(binding) == 0 {
		return sc, nil
	}
	switch sc.policy {
	case signed.Fail:
		fmt.Fprintf(w, "layerslim: %s is signed; its signatures and attestations would not verify for the rewritten digest:\n", src)
		signed.List(w, sc.found, sc.labels)
		return nil, fmt.Errorf("%s is signed (%s): --signed=fail, nothing written", src, signed.Count(binding))
	case signed.Skip:
		fmt.Fprintf(w, "layerslim: %s is signed (%s); --signed=skip: skipped, nothing written\n", src, signed.Count(binding))
		signed.List(w, sc.found, sc.labels)
	}
	return sc, nil
}

// labelSource names the source manifests for messages.
func (sc *signedCheck) labelSource(source *imageref.Source) {
	if source.Index == nil {
		sc.labels[source.Descriptor.Digest] = "the image"
		return
	}
	sc.labels[source.Descriptor.Digest] = "the index"
	if im, err := source.Index.IndexManifest(); err == nil {
		for _, d := range im.Manifests {
			if d.Platform != nil {
				sc.labels[d.Digest] = d.Platform.String()
			}
		}
	}
}

func (sc *signedCheck) skip() bool {
	return sc.policy == signed.Skip && len(signed.Binding(sc.found)) > 0
}

func (sc *signedCheck) report() *signedReport {
	r := &signedReport{Policy: sc.policy, Action: "none", Artifacts: sc.found}
	if r.Artifacts == nil {
		r.Artifacts = []signed.Artifact{}
	}
	if sc.lookupErr != nil {
		r.LookupError = sc.lookupErr.Error()
	}
	if len(signed.Binding(sc.found)) > 0 {
		r.Action = "warned"
		if sc.skip() {
			r.Action = "skipped"
		}
	}
	return r
}

// writeSkipReport writes the --report of a run skipped by --signed=skip.
func (j *job) writeSkipReport(src, dst imageref.Ref, sc *signedCheck) error {
	if j.o.report == "" {
		return nil
	}
	fr := struct {
		Source  string        `json:"source"`
		Dest    string        `json:"destination"`
		Skipped string        `json:"skipped"`
		Version string        `json:"version"`
		Signed  *signedReport `json:"signed"`
	}{src.String(), dst.String(), "the source is signed and --signed=skip", Version, sc.report()}
	b, err := json.MarshalIndent(fr, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(j.o.report, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}

// afterWrite records the new digests in what was found, copies SBOMs when
// asked (not in a dry run), and warns about signatures that will not verify.
func (sc *signedCheck) afterWrite(ctx context.Context, w io.Writer, src, dst imageref.Ref, res *rewrite.Result, ro imageref.Options, dryRun bool) {
	if len(sc.found) == 0 {
		return
	}
	digests := signed.Digests(res.Report)
	for i := range sc.found {
		if n, ok := digests[sc.found[i].Subject]; ok {
			sc.found[i].NewSubject = &n
		}
	}
	if sc.copy && dryRun {
		if n := len(slices.DeleteFunc(slices.Clone(sc.found), func(a signed.Artifact) bool { return a.Kind != signed.SBOM })); n > 0 {
			fmt.Fprintf(w, "dry run: --copy-referrers would copy %d SBOM(s) of %s to the new digest at %s\n", n, src, dst)
		}
	}
	if sc.copy && !dryRun {
		if n := signed.CopySBOMs(ctx, src, dst, ro, sc.found, newDescriptors(res)); n > 0 {
			fmt.Fprintf(w, "copied %d SBOM(s) of %s to the new digest at %s\n", n, src, dst)
		}
		for _, a := range sc.found {
			if a.CopyError != "" {
				fmt.Fprintf(w, "layerslim: warning: SBOM %s of %s not copied: %s\n", a.Name(), a.Subject, a.CopyError)
			}
		}
	}
	binding := signed.Binding(sc.found)
	if len(binding) == 0 {
		fmt.Fprintf(w, "note: %s has %s attached to the old digest (not signatures; --copy-referrers copies SBOMs):\n", src, signed.Count(sc.found))
		signed.List(w, sc.found, sc.labels)
		return
	}
	fmt.Fprintf(w, "layerslim: warning: %s is signed (%s); the signatures and attestations name the old digest and will not verify for the new one:\n", src, signed.Count(binding))
	signed.List(w, sc.found, sc.labels)
	repo := ""
	if dst.Kind == imageref.Registry {
		repo = dst.Name.Context().Name()
	}
	fmt.Fprintln(w, "Sign the output again, for example:")
	for _, c := range signed.Resign(sc.found, repo) {
		fmt.Fprintln(w, "  "+c)
	}
	if repo == "" {
		fmt.Fprintf(w, "  (after pushing %s to a registry: the digests stay the same)\n", dst)
	}
	fmt.Fprintln(w, `The report's "digests" map lists every old → new digest.`)
	if !sc.copy && slices.ContainsFunc(sc.found, func(a signed.Artifact) bool { return a.Kind == signed.SBOM }) {
		fmt.Fprintln(w, "--copy-referrers attaches copies of the SBOMs to the new digest.")
	}
}

// newDescriptors maps each rewritten source manifest to the descriptor of
// its replacement.
func newDescriptors(res *rewrite.Result) map[v1.Hash]v1.Descriptor {
	out := map[v1.Hash]v1.Descriptor{}
	var top partial.Describable = res.Image
	if res.Index != nil {
		top = res.Index
	}
	if d, err := partial.Descriptor(top); err == nil {
		out[res.Report.SourceDigest] = v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}
	}
	if res.Index == nil {
		return out
	}
	im, err := res.Index.IndexManifest()
	if err != nil {
		return out
	}
	for _, ir := range res.Report.Images {
		for _, d := range im.Manifests {
			if d.Digest == ir.OutputDigest {
				out[ir.SourceDigest] = v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}
			}
		}
	}
	return out
}
