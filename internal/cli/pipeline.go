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
	"github.com/layerslim/layerslim/internal/signed"
	"github.com/layerslim/layerslim/rewrite"
)

// job is one run of the pipeline: read SRC, rewrite, write DST (and the
// debug image before it).
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
	verify func(ctx context.Context, src *imageref.Source, res *rewrite.Result) error
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
	ro := registryOptions(cmd, j.registry())
	source, err := imageref.Open(ctx, src, ro)
	if err != nil {
		return err
	}
	if err := j.checkSource(source, dst, dbgRef); err != nil {
		return err
	}
	if !j.dryRun {
		if err := imageref.CheckLayersPresent(source, dst); err != nil {
			return fmt.Errorf("%s → %s: %w", src, dst, err)
		}
	}
	sc, err := j.checkSigned(ctx, stderr, src, source, ro)
	if err != nil {
		return err
	}
	if sc.skip() {
		return j.writeSkipReport(src, dst, sc)
	}
	if err := checkWrite(ctx, j.dryRun, ro, dst, dbgRef); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "layerslim-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	prog := newProgress(stderr, o.progress)
	defer prog.stop()
	opts := append(j.options(), rewrite.WithTempDir(tmp), rewrite.WithReporter(prog))
	out, err := j.execute(ctx, source, dst, dbgRef, ro, opts, prog.stop)
	if err != nil {
		return err
	}
	defer out.res.Close()
	res, written, debugWritten := out.res, out.written, out.debugWritten
	hasDebug := out.hasDebug()
	printSummary(stderr, res.Report)
	warnDroppedAttestations(stderr, res.Report)
	verb := "wrote"
	if j.dryRun {
		verb = "dry run, not written:"
	}
	if hasDebug {
		if j.dryRun {
			debugWritten = *res.Report.DebugDigest
		}
		fmt.Fprintf(stderr, "%s debug image %s (%s)\n", verb, dbgRef, debugWritten)
	}
	fmt.Fprintf(stderr, "%s %s (%s)\n", verb, dst, written)
	sc.afterWrite(ctx, stderr, src, dst, res, ro, j.dryRun)
	if o.report != "" {
		fr := fileReport{Source: src.String(), Dest: dst.String(), Written: written.String(), DryRun: j.dryRun, Version: Version, Report: res.Report}
		fr.Digests, fr.Signed = signed.Digests(res.Report), sc.report()
		if hasDebug {
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
	fmt.Fprintln(cmd.OutOrStdout(), written)
	return nil
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

// checkSource repeats the checks of refs with the source as it was found:
// oci:DIR read without a tag is its entry's tag (writing oci:DIR:v1 replaces
// the only entry v1 of DIR).
func (j *job) checkSource(source *imageref.Source, dst, dbgRef imageref.Ref) error {
	src := source.Named()
	if src.Tag == source.Ref.Tag {
		return nil
	}
	if imageref.Same(src, dst) && !j.o.overwrite {
		return usagef("DST %s names the same image as SRC %s (its only entry is %s); pass --overwrite to replace it", dst, source.Ref, src)
	}
	if j.debug && imageref.Same(src, dbgRef) {
		return usagef("the debug image %s would replace SRC %s (its only entry is %s); choose another with --debug-to or --debug-suffix", dbgRef, source.Ref, src)
	}
	return nil
}

// options are j's rewrite options: those that shape the output, jobs and
// platforms. The caller adds where to spool and whom to report to.
func (j *job) options() []rewrite.Option {
	o := j.o
	return append([]rewrite.Option{
		rewrite.WithCompression(o.codec, o.level),
		rewrite.WithForce(o.force),
		rewrite.WithJobs(o.jobs),
		rewrite.WithPlatforms(o.plats...),
		rewrite.WithVersion(Version),
		rewrite.WithDebugImage(j.debug),
		rewrite.WithMaxLayerSize(o.limits.layer),
		rewrite.WithMaxSpool(o.limits.spool),
	}, append(o.variantOptions.options(), j.extra...)...)
}

// jobResult is a rewrite and what was written of it. The caller closes res.
type jobResult struct {
	res                   *rewrite.Result
	written, debugWritten v1.Hash
}

func (r *jobResult) hasDebug() bool { return r.res.DebugImage != nil || r.res.DebugIndex != nil }

// execute rewrites source with opts, verifies the result when asked, and
// (unless a dry run) writes the debug image to dbgRef, then the image to
// dst, with ro. rewritten, if not nil, is called once the rewrite is done.
func (j *job) execute(ctx context.Context, source *imageref.Source, dst, dbgRef imageref.Ref, ro imageref.Options, opts []rewrite.Option, rewritten func()) (*jobResult, error) {
	src, o := source.Ref, j.o
	var res *rewrite.Result
	var err error
	switch {
	case source.Index != nil && dst.Kind == imageref.DockerArchive:
		img, err := singlePlatform(source.Index, o.plats)
		if err != nil {
			return nil, fmt.Errorf("%s → %s: %w", src, dst, err)
		}
		res, err = rewrite.Image(ctx, img, opts...)
		if err != nil {
			return nil, fmt.Errorf("rewriting %s: %w", src, err)
		}
	case source.Index != nil:
		res, err = rewrite.Index(ctx, source.Index, opts...)
	default:
		res, err = rewrite.Image(ctx, source.Image, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("rewriting %s: %w", src, err)
	}
	out := &jobResult{res: res, written: res.Report.OutputDigest}
	ok := false
	defer func() {
		if !ok {
			res.Close()
		}
	}()
	if rewritten != nil {
		rewritten()
	}
	if j.verify != nil {
		if err := j.verify(ctx, source, res); err != nil {
			return nil, err
		}
	}
	if !j.dryRun {
		// The debug image first: once the slim tag exists, its debug
		// image must too.
		if out.hasDebug() {
			if res.DebugIndex != nil {
				out.debugWritten, err = imageref.WriteIndex(ctx, dbgRef, res.DebugIndex, ro)
			} else {
				out.debugWritten, err = imageref.WriteImage(ctx, dbgRef, res.DebugImage, ro)
			}
			if err != nil {
				return nil, fmt.Errorf("writing the debug image %s: %w", dbgRef, err)
			}
		}
		if res.Index != nil {
			out.written, err = imageref.WriteIndex(ctx, dst, res.Index, ro)
		} else {
			out.written, err = imageref.WriteImage(ctx, dst, res.Image, ro)
		}
		if err != nil {
			return nil, err // imageref says "writing DST: …"
		}
	}
	ok = true
	return out, nil
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
