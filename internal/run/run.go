// Package run is one SRC→DST job of layerslim, the whole of it: open the
// source, check it against the destination, apply the signed-source policy,
// rewrite it (with a base image finder), verify the result when asked, write
// the debug image first and then the image, copy SBOMs to the new digest,
// and return what happened as data ([Result]).
//
// The rewrite, recompress and batch commands all run a job through [Run] or
// [RunOpened]; they turn flags into [Options] and render the [Result] and
// the [Event]s. This package never prints: what a user should see while the
// job runs (signatures found, progress, the verify table) goes to
// [Options.Reporter] as events, and everything else comes back in the Result.
package run

import (
	"context"
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/signed"
	"github.com/layerslim/layerslim/rewrite"
	"github.com/layerslim/layerslim/verify"
)

// Options are one job. Src and Dst are required; the zero value of every
// other field means: no debug image, no verify, the warn policy, no SBOM
// copies, write (not a dry run), report nothing.
type Options struct {
	// Src and Dst are the source and the destination.
	Src, Dst imageref.Ref
	// Debug is where the debug image goes; its zero value (Kind 0) means no
	// debug image.
	Debug imageref.Ref
	// Overwrite allows Dst to name the same image as Src.
	Overwrite bool
	// DryRun does everything but write.
	DryRun bool
	// Registry is how registries are read and written.
	Registry imageref.Options
	// Platforms selects images of an index (all when empty); a
	// docker-archive destination needs it to name one image of an index.
	Platforms []v1.Platform
	// Rewrite are the options that shape the output (compression, jobs,
	// strip, squash, filters, limits, …). The job adds the debug image
	// (from Debug), where to spool and whom to report to.
	Rewrite []rewrite.Option
	// Signed is what to do with a signed source ("" is signed.Warn);
	// CopyReferrers copies its SBOMs to the new digest (registries only).
	Signed        signed.Policy
	CopyReferrers bool
	// Verify, when set, checks the result against the source before
	// anything is written (its TempDir is set by the job).
	Verify *verify.Options
	// Reporter, when set, receives the job's events.
	Reporter Reporter
}

// Describe is the text of the output's dev.layerslim.options annotation
// for o (see rewrite.Describe): what a rerun compares to skip a job.
func (o *Options) Describe() (string, error) {
	return rewrite.Describe(o.rewriteOptions()...)
}

func (o *Options) rewriteOptions() []rewrite.Option {
	return append(o.Rewrite[:len(o.Rewrite):len(o.Rewrite)], rewrite.WithDebugImage(o.Debug.Kind != 0))
}

func (o *Options) report(e Event) {
	if o.Reporter != nil {
		o.Reporter.Report(e)
	}
}

// Result is what a job did.
type Result struct {
	// Skipped, when set, says why nothing was rewritten or written (a
	// signed source under signed.Skip); only Signed is set then.
	Skipped string
	// Report is the rewrite's report.
	Report rewrite.Report
	// Written is the digest written to Dst (in a dry run, the digest it
	// would have); DebugWritten that of the debug image, when HasDebug.
	Written, DebugWritten v1.Hash
	HasDebug              bool
	// Digests maps every source manifest to its replacement.
	Digests map[v1.Hash]v1.Hash
	// Signed is what was found attached to the source, and what became of
	// it.
	Signed *Signed
}

// SkippedSigned is Result.Skipped for a signed source under signed.Skip.
const SkippedSigned = "the source is signed and --signed=skip"

// OptionsError is a job whose options cannot work with the source as it
// was found (the command line's usage error).
type OptionsError struct{ Err error }

func (e *OptionsError) Error() string { return e.Err.Error() }
func (e *OptionsError) Unwrap() error { return e.Err }

func optionsErrorf(format string, a ...any) error {
	return &OptionsError{Err: fmt.Errorf(format, a...)}
}

// Run opens o.Src and runs the job.
func Run(ctx context.Context, o Options) (*Result, error) {
	source, err := imageref.Open(ctx, o.Src, o.Registry)
	if err != nil {
		return nil, err
	}
	return runJob(ctx, source, o, true)
}

// RunOpened runs the job on source, already opened from o.Src (batch opens
// it first to tell whether the destination is up to date).
func RunOpened(ctx context.Context, source *imageref.Source, o Options) (*Result, error) {
	return runJob(ctx, source, o, false)
}

// runJob is the job. named says whether an error about missing layers
// names the source and destination (batch names the image itself).
func runJob(ctx context.Context, source *imageref.Source, o Options, named bool) (*Result, error) {
	if err := checkSource(source, &o); err != nil {
		return nil, err
	}
	if !o.DryRun {
		if err := imageref.CheckLayersPresent(source, o.Dst); err != nil {
			if named {
				return nil, fmt.Errorf("%s → %s: %w", o.Src, o.Dst, err)
			}
			return nil, err
		}
	}
	sc, err := checkSigned(ctx, source, &o)
	if err != nil {
		return nil, err
	}
	if sc.Skip() {
		return &Result{Skipped: SkippedSigned, Signed: sc}, nil
	}
	if err := checkWrite(ctx, o.DryRun, o.Registry, o.Dst, o.Debug); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "layerslim-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	opts := append(o.rewriteOptions(), rewrite.WithTempDir(tmp))
	if o.Reporter != nil {
		opts = append(opts, rewrite.WithReporter(rewrite.ReporterFunc(func(e rewrite.Event) { o.Reporter.Report(Progress{e}) })))
	}
	o.report(Started{})
	res, out, err := execute(ctx, source, &o, opts)
	if err != nil {
		return nil, err
	}
	defer res.Close()
	out.Signed = sc
	out.Digests = Digests(res.Report)
	afterWrite(ctx, sc, res, &o)
	o.report(Finished{Src: o.Src, Dst: o.Dst, Result: out})
	return out, nil
}

// checkSource repeats the checks of the command line with the source as it
// was found: oci:DIR read without a tag is its entry's tag (writing
// oci:DIR:v1 replaces the only entry v1 of DIR).
func checkSource(source *imageref.Source, o *Options) error {
	src := source.Named()
	if src.Tag == source.Ref.Tag {
		return nil
	}
	if imageref.Same(src, o.Dst) && !o.Overwrite {
		return optionsErrorf("DST %s names the same image as SRC %s (its only entry is %s); pass --overwrite to replace it", o.Dst, source.Ref, src)
	}
	if o.Debug.Kind != 0 && imageref.Same(src, o.Debug) {
		return optionsErrorf("the debug image %s would replace SRC %s (its only entry is %s); choose another with --debug-to or --debug-suffix", o.Debug, source.Ref, src)
	}
	return nil
}

// checkWrite fails early, before any layer is rewritten, when a registry
// destination refuses the credentials found for it, or when a layout or
// archive destination cannot be written (see imageref.CheckWrite).
func checkWrite(ctx context.Context, dryRun bool, ro imageref.Options, refs ...imageref.Ref) error {
	if dryRun {
		return nil
	}
	seen := map[string]bool{}
	for _, r := range refs {
		if r.Kind == 0 {
			continue // no debug image
		}
		key := r.String()
		if r.Kind == imageref.Registry {
			key = r.Name.Context().Name()
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		if err := imageref.CheckWrite(ctx, r, ro); err != nil {
			return fmt.Errorf("writing %s: %w", r, err)
		}
	}
	return nil
}

// execute rewrites source with opts, verifies the result when asked, and
// (unless a dry run) writes the debug image, then the image. The caller
// closes the rewrite's result.
func execute(ctx context.Context, source *imageref.Source, o *Options, opts []rewrite.Option) (*rewrite.Result, *Result, error) {
	src, dst := source.Ref, o.Dst
	var res *rewrite.Result
	var err error
	switch {
	case source.Index != nil && dst.Kind == imageref.DockerArchive:
		img, err := singlePlatform(source.Index, o.Platforms)
		if err != nil {
			return nil, nil, fmt.Errorf("%s → %s: %w", src, dst, err)
		}
		res, err = rewrite.Image(ctx, img, opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("rewriting %s: %w", src, err)
		}
	case source.Index != nil:
		res, err = rewrite.Index(ctx, source.Index, opts...)
	default:
		res, err = rewrite.Image(ctx, source.Image, opts...)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("rewriting %s: %w", src, err)
	}
	out := &Result{Report: res.Report, Written: res.Report.OutputDigest, HasDebug: res.DebugImage != nil || res.DebugIndex != nil}
	ok := false
	defer func() {
		if !ok {
			res.Close()
		}
	}()
	o.report(Rewritten{})
	if o.Verify != nil {
		if err := verifyResult(ctx, source, res, *o.Verify, o); err != nil {
			return nil, nil, err
		}
	}
	if o.DryRun {
		if out.HasDebug {
			out.DebugWritten = *res.Report.DebugDigest
		}
	} else {
		// The debug image first: once the slim tag exists, its debug
		// image must too.
		if out.HasDebug {
			if res.DebugIndex != nil {
				out.DebugWritten, err = imageref.WriteIndex(ctx, o.Debug, res.DebugIndex, o.Registry)
			} else {
				out.DebugWritten, err = imageref.WriteImage(ctx, o.Debug, res.DebugImage, o.Registry)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("writing the debug image %s: %w", o.Debug, err)
			}
		}
		if res.Index != nil {
			out.Written, err = imageref.WriteIndex(ctx, dst, res.Index, o.Registry)
		} else {
			out.Written, err = imageref.WriteImage(ctx, dst, res.Image, o.Registry)
		}
		if err != nil {
			return nil, nil, err // imageref says "writing DST: …"
		}
	}
	ok = true
	return res, out, nil
}

// verifyResult checks a rewrite's output against its source before it is
// written; a violation stops the job.
func verifyResult(ctx context.Context, src *imageref.Source, res *rewrite.Result, vo verify.Options, o *Options) error {
	tmp, err := os.MkdirTemp("", "layerslim-verify-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	vo.TempDir = tmp
	var results []*verify.Result
	switch {
	case src.Index != nil && res.Index != nil:
		results, err = verify.Index(ctx, src.Index, res.Index, vo)
	case src.Index != nil:
		var r *verify.Result
		r, err = verify.IndexImage(ctx, src.Index, res.Image, vo)
		results = []*verify.Result{r}
	case res.Index != nil: // a single image in two compressions
		results, err = verify.ImageIndex(ctx, src.Image, res.Index, vo)
	default:
		var r *verify.Result
		r, err = verify.Image(ctx, src.Image, res.Image, vo)
		results = []*verify.Result{r}
	}
	if err != nil {
		return fmt.Errorf("verifying the output: %w", err)
	}
	o.report(Verified{Results: results})
	if err := verify.Check(results); err != nil {
		return fmt.Errorf("verify: %w; nothing was written", err)
	}
	return nil
}

// Digests maps every manifest a rewrite replaced to its replacement: the
// source index or image, and each platform image of an index.
func Digests(rep rewrite.Report) map[v1.Hash]v1.Hash {
	m := map[v1.Hash]v1.Hash{}
	if rep.SourceDigest.Hex != "" && rep.OutputDigest.Hex != "" {
		m[rep.SourceDigest] = rep.OutputDigest
	}
	for _, ir := range rep.Images {
		if ir.SourceDigest.Hex != "" && ir.OutputDigest.Hex != "" {
			m[ir.SourceDigest] = ir.OutputDigest
		}
	}
	return m
}
