package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/spf13/pflag"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/run"
	"github.com/layerslim/layerslim/internal/signed"
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

// signedReport is the "signed" part of the --report file.
type signedReport struct {
	Policy signed.Policy `json:"policy"`
	// Action: "none" (nothing signed found), "warned" or "skipped".
	Action      string            `json:"action"`
	Artifacts   []signed.Artifact `json:"artifacts"`
	LookupError string            `json:"lookupError,omitempty"`
}

// renderSignedCheck says what the job found attached to the source before
// it rewrites anything: a lookup that failed (under warn), or signatures
// that stop the job (fail) or skip it (skip).
func renderSignedCheck(w io.Writer, src imageref.Ref, sc *run.Signed) {
	if sc.LookupErr != nil {
		fmt.Fprintf(w, "layerslim: warning: could not look for signatures of %s (if it is signed, the signatures will not verify for the new digest): %v\n", src, sc.LookupErr)
		return
	}
	binding := sc.Binding()
	if len(binding) == 0 {
		return
	}
	switch sc.Policy {
	case signed.Fail:
		fmt.Fprintf(w, "layerslim: %s is signed; its signatures and attestations would not verify for the rewritten digest:\n", src)
		signed.List(w, sc.Found, sc.Labels)
	case signed.Skip:
		fmt.Fprintf(w, "layerslim: %s is signed (%s); --signed=skip: skipped, nothing written\n", src, signed.Count(binding))
		signed.List(w, sc.Found, sc.Labels)
	}
}

// newSignedReport is the "signed" part of the --report file.
func newSignedReport(sc *run.Signed) *signedReport {
	r := &signedReport{Policy: sc.Policy, Action: "none", Artifacts: sc.Found}
	if r.Artifacts == nil {
		r.Artifacts = []signed.Artifact{}
	}
	if sc.LookupErr != nil {
		r.LookupError = sc.LookupErr.Error()
	}
	if len(sc.Binding()) > 0 {
		r.Action = "warned"
		if sc.Skip() {
			r.Action = "skipped"
		}
	}
	return r
}

// writeSkipReport writes the --report of a run skipped by --signed=skip.
func (j *job) writeSkipReport(src, dst imageref.Ref, res *run.Result) error {
	if j.o.report == "" {
		return nil
	}
	fr := struct {
		Source  string        `json:"source"`
		Dest    string        `json:"destination"`
		Skipped string        `json:"skipped"`
		Version string        `json:"version"`
		Signed  *signedReport `json:"signed"`
	}{src.String(), dst.String(), res.Skipped, Version, newSignedReport(res.Signed)}
	b, err := json.MarshalIndent(fr, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(j.o.report, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}

// renderSigned says what became of what is attached to the source once the
// image is written: SBOMs copied (or, in a dry run, that would be), and
// signatures that will not verify, with how to sign again.
func renderSigned(w io.Writer, src, dst imageref.Ref, sc *run.Signed, dryRun bool) {
	if len(sc.Found) == 0 {
		return
	}
	if sc.Copy && dryRun {
		if n := len(slices.DeleteFunc(slices.Clone(sc.Found), func(a signed.Artifact) bool { return a.Kind != signed.SBOM })); n > 0 {
			fmt.Fprintf(w, "dry run: --copy-referrers would copy %d SBOM(s) of %s to the new digest at %s\n", n, src, dst)
		}
	}
	if sc.Copy && !dryRun {
		if n := sc.Copied; n > 0 {
			fmt.Fprintf(w, "copied %d SBOM(s) of %s to the new digest at %s\n", n, src, dst)
		}
		for _, a := range sc.Found {
			if a.CopyError != "" {
				fmt.Fprintf(w, "layerslim: warning: SBOM %s of %s not copied: %s\n", a.Name(), a.Subject, a.CopyError)
			}
		}
	}
	binding := sc.Binding()
	if len(binding) == 0 {
		fmt.Fprintf(w, "note: %s has %s attached to the old digest (not signatures; --copy-referrers copies SBOMs):\n", src, signed.Count(sc.Found))
		signed.List(w, sc.Found, sc.Labels)
		return
	}
	fmt.Fprintf(w, "layerslim: warning: %s is signed (%s); the signatures and attestations name the old digest and will not verify for the new one:\n", src, signed.Count(binding))
	signed.List(w, sc.Found, sc.Labels)
	repo := ""
	if dst.Kind == imageref.Registry {
		repo = dst.Name.Context().Name()
	}
	fmt.Fprintln(w, "Sign the output again, for example:")
	for _, c := range signed.Resign(sc.Found, repo) {
		fmt.Fprintln(w, "  "+c)
	}
	if repo == "" {
		fmt.Fprintf(w, "  (after pushing %s to a registry: the digests stay the same)\n", dst)
	}
	fmt.Fprintln(w, `The report's "digests" map lists every old → new digest.`)
	if !sc.Copy && slices.ContainsFunc(sc.Found, func(a signed.Artifact) bool { return a.Kind == signed.SBOM }) {
		fmt.Fprintln(w, "--copy-referrers attaches copies of the SBOMs to the new digest.")
	}
}

// renderer draws a job's events: what was found signed, progress, the
// verify table; with batch set, also the end of each image (what became
// of its signatures), which a single run renders after its summary.
type renderer struct {
	w        io.Writer
	progress string // the --progress mode; "" for no progress display
	batch    bool

	prog *progress
}

func (r *renderer) Report(e run.Event) {
	switch e := e.(type) {
	case run.SignedChecked:
		renderSignedCheck(r.w, e.Src, e.Signed)
	case run.Started:
		if r.progress != "" {
			r.prog = newProgress(r.w, r.progress)
		}
	case run.Progress:
		if r.prog != nil {
			r.prog.Report(e.Event)
		}
	case run.Rewritten:
		r.stop()
	case run.Verified:
		_ = renderVerify(r.w, e.Results, false, false) // the job fails on violations
	case run.Finished:
		if r.batch {
			renderSigned(r.w, e.Src, e.Dst, e.Result.Signed, false)
		}
	}
}

// stop ends the progress display, if any; it is safe to call more than once.
func (r *renderer) stop() {
	if r.prog != nil {
		r.prog.stop()
	}
}
