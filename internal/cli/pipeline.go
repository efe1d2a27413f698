package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/run"
	"github.com/layerslim/layerslim/rewrite"
	"github.com/layerslim/layerslim/verify"
)

// job is one run of the pipeline as the command line gives it: SRC, DST
// and the flags; run turns it into the library's run.Options.
type job struct {
	src, dst string
	o        *pipelineOptions
	extra    []rewrite.Option
	dryRun   bool
	// debugTo is where the debug image goes ("" derives it from DST with
	// debugSuffix); debug false means no debug image.
	debug       bool
	debugTo     string
	debugSuffix string
	// verify, when set, checks the result against the source before
	// anything is written.
	verify *verify.Options
}

// fileReport is what --report writes.
type fileReport struct {
	Source  string         `json:"source"`
	Dest    string         `json:"destination"`
	Written string         `json:"written"`
	Debug   string         `json:"debugDestination,omitempty"`
	DryRun  bool           `json:"dryRun,omitempty"`
	Version string         `json:"version"`
	Report  rewrite.Report `json:"report"`
	// Digests maps every source manifest to its replacement; Signed is what
	// was found attached to the source (signatures, attestations, SBOMs).
	Digests map[v1.Hash]v1.Hash `json:"digests,omitempty"`
	Signed  *signedReport       `json:"signed,omitempty"`
}

func (j *job) run(cmd *cobra.Command) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	o := j.o
	stderr := cmd.ErrOrStderr()
	src, dst, dbgRef, err := j.refs()
	if err != nil {
		return err
	}
	if o.report != "" {
		if err := imageref.CheckWritableFile(o.report); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	r := &renderer{w: stderr, progress: o.progress}
	defer r.stop()
	res, err := run.Run(ctx, j.runOptions(src, dst, dbgRef, registryOptions(cmd, j.registry()), r))
	r.stop()
	if err != nil {
		return err
	}
	if res.Skipped != "" {
		return j.writeSkipReport(src, dst, res)
	}
	printSummary(stderr, res.Report)
	warnDroppedAttestations(stderr, res.Report)
	verb := "wrote"
	if j.dryRun {
		verb = "dry run, not written:"
	}
	if res.HasDebug {
		fmt.Fprintf(stderr, "%s debug image %s (%s)\n", verb, dbgRef, res.DebugWritten)
	}
	fmt.Fprintf(stderr, "%s %s (%s)\n", verb, dst, res.Written)
	renderSigned(stderr, src, dst, res.Signed, j.dryRun)
	if o.report != "" {
		fr := fileReport{Source: src.String(), Dest: dst.String(), Written: res.Written.String(), DryRun: j.dryRun, Version: Version, Report: res.Report}
		fr.Digests, fr.Signed = res.Digests, newSignedReport(res.Signed)
		if res.HasDebug {
			fr.Debug = dbgRef.String()
		}
		b, err := json.MarshalIndent(fr, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.report, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("writing report: %w", err)
		}
	}
	fmt.Fprintln(cmd.OutOrStdout(), res.Written)
	return nil
}

// runOptions are the library's options for j, with the parsed references,
// the registry options ro, and the reporter r.
func (j *job) runOptions(src, dst, dbgRef imageref.Ref, ro imageref.Options, r run.Reporter) run.Options {
	o := j.o
	return run.Options{
		Src: src, Dst: dst, Debug: dbgRef,
		Overwrite: o.overwrite, DryRun: j.dryRun,
		Registry: ro, Platforms: o.plats,
		Rewrite: j.options(),
		Signed:  o.policy, CopyReferrers: o.copyReferrers,
		Verify:   j.verify,
		Reporter: r,
	}
}

// registry is how j reads and writes registries, but for the TLS flags of
// the root command (see registryOptions).
func (j *job) registry() imageref.Options {
	return imageref.Options{Insecure: j.o.insecure, Jobs: j.o.jobs, UserAgent: "layerslim/" + Version}
}

// refs parses and checks j's source, destination and debug image.
func (j *job) refs() (src, dst, dbgRef imageref.Ref, err error) {
	o := j.o
	if src, err = imageref.Parse(j.src, o.insecure); err != nil {
		return src, dst, dbgRef, &UsageError{Err: fmt.Errorf("SRC: %w", err)}
	}
	if dst, err = imageref.Parse(j.dst, o.insecure); err != nil {
		return src, dst, dbgRef, &UsageError{Err: fmt.Errorf("DST: %w", err)}
	}
	if imageref.Same(src, dst) && !o.overwrite {
		return src, dst, dbgRef, usagef("DST %s names the same image as SRC; pass --overwrite to replace it", dst)
	}
	if err := o.checkDest(dst); err != nil {
		return src, dst, dbgRef, err
	}
	if j.debug {
		if dbgRef, err = debugRef(dst, j.debugTo, j.debugSuffix, o.insecure); err != nil {
			return src, dst, dbgRef, err
		}
		if err := o.checkDest(dbgRef); err != nil {
			return src, dst, dbgRef, err
		}
		if imageref.Same(src, dbgRef) {
			return src, dst, dbgRef, usagef("the debug image %s would replace SRC; choose another with --debug-to or --debug-suffix", dbgRef)
		}
		if imageref.Same(dst, dbgRef) || imageref.Same(dbgRef, dst) {
			return src, dst, dbgRef, usagef("the debug image %s would be replaced by DST %s; choose another with --debug-to or --debug-suffix", dbgRef, dst)
		}
	}
	return src, dst, dbgRef, nil
}

// options are j's rewrite options: those that shape the output, jobs and
// platforms. The job adds the debug image, where to spool and whom to
// report to.
func (j *job) options() []rewrite.Option {
	o := j.o
	return append([]rewrite.Option{
		rewrite.WithCompression(o.codec, o.level),
		rewrite.WithForce(o.force),
		rewrite.WithJobs(o.jobs),
		rewrite.WithPlatforms(o.plats...),
		rewrite.WithVersion(Version),
		rewrite.WithMaxLayerSize(o.limits.layer),
		rewrite.WithMaxSpool(o.limits.spool),
	}, append(o.variantOptions.options(), j.extra...)...)
}

// debugRef is where the debug image of dst goes: --debug-to, or dst with
// the suffix added to its tag (to the file name for a docker-archive).
func debugRef(dst imageref.Ref, to, suffix string, insecure bool) (imageref.Ref, error) {
	if to != "" {
		r, err := imageref.Parse(to, insecure)
		if err != nil {
			return r, &UsageError{Err: fmt.Errorf("--debug-to: %w", err)}
		}
		return r, nil
	}
	if suffix == "" {
		return dst, usagef("--debug-suffix must not be empty")
	}
	switch dst.Kind {
	case imageref.Registry:
		if _, ok := dst.Name.(name.Tag); !ok {
			return dst, usagef("DST %s is a digest: name the debug image with --debug-to, or pass --no-debug-image", dst)
		}
	case imageref.OCI:
		if dst.Digest.Hex != "" {
			return dst, usagef("DST %s is a digest: name the debug image with --debug-to, or pass --no-debug-image", dst)
		}
	}
	r, err := imageref.WithSuffix(dst, suffix, insecure)
	if err != nil {
		return r, &UsageError{Err: fmt.Errorf("debug image tag: %w", err)}
	}
	if r.Kind != imageref.Registry {
		// The tag (or file name) made with the suffix must parse back.
		if _, err := imageref.Parse(r.String(), insecure); err != nil {
			return r, &UsageError{Err: fmt.Errorf("--debug-suffix %q: debug image: %w", suffix, err)}
		}
	}
	return r, nil
}

// warnDroppedAttestations says which attestations the output index left out.
func warnDroppedAttestations(w io.Writer, r rewrite.Report) {
	for _, d := range r.Dropped {
		fmt.Fprintf(w, "warning: attestation %s dropped: it describes the source image %s, which the output replaces; attest the new image again\n",
			d.Digest, d.Annotations["vnd.docker.reference.digest"])
	}
}
