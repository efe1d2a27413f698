package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/layerslim/layerslim/drop"
	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/rewrite"
	"github.com/layerslim/layerslim/verify"
)

// dropOptions are the flags that choose what is dropped; rewrite, analyze
// and verify share them.
type dropOptions struct {
	drop      []string
	dropPaths []string
	keeps     []string
}

func (o *dropOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringSliceVar(&o.drop, "drop", []string{"default"}, "presets of paths to drop: default, none, or names (see below)")
	f.StringArrayVar(&o.dropPaths, "drop-path", nil, "also drop paths matching this glob (repeatable; ** spans directories)")
	f.StringArrayVar(&o.keeps, "keep", nil, "never drop paths matching this glob (repeatable; wins over everything)")
}

func (o *dropOptions) matcher() (*drop.Matcher, error) {
	m, err := drop.New(o.drop, o.dropPaths, o.keeps)
	if err != nil {
		return nil, &UsageError{Err: fmt.Errorf("--drop: %w", err)}
	}
	return m, nil
}

type rewriteOptions struct {
	pipelineOptions
	dropOptions
	squash      string
	base        string
	dryRun      bool
	strip       string
	stripSkip   []string
	debugSuffix string
	debugTo     string
	noDebug     bool
	verify      bool
}

func newRewrite() *cobra.Command {
	var o rewriteOptions
	cmd := &cobra.Command{
		Use:   "rewrite SRC DST",
		Short: "Slim an image: drop caches and docs, squash what later layers shadow, recompress",
		Long: `rewrite reads SRC and writes a slimmer DST. Per platform, every layer goes
through one streaming pass of small filters, then the compression pass of
recompress (zstd by default):

  --strip     ELF files (found by their magic bytes) lose their debug
              sections, which go to a debug image: DST with tag suffix -debug,
              the slim image plus one layer of /usr/lib/debug/.build-id/xx/
              yyyy.debug files (path-based /usr/lib/debug/<path>.debug for files
              without a build-id), which gdb, perf and debuginfod find. Every
              loadable segment stays byte-identical; each stripped file gets a
              .gnu_debuglink. The debug image is written before DST.
              Relocatable objects, static archives, files under **/testdata/**
              or --strip-skip and programs with an appended payload stay as
              they are; separate debug files move whole to the debug image.
  --drop      paths of caches and docs are dropped (presets below; directories
              themselves stay, licence and copyright files are kept)
  --squash    auto (default): the base image's layers stay separate layers, so
              every image on that base still shares them; the layers above are
              merged into one holding exactly the merged result (nothing that a
              later layer overwrites or deletes). none keeps every layer; all
              merges everything. The base is found from --base, the
              org.opencontainers.image.base.* annotations, or the history (the
              last pause of an hour or more between steps).

The merged filesystem of DST equals SRC's except the dropped paths, which the
report lists with their sizes. A layer that no filter changed is not
re-encoded beyond what --compression asks, so a shared base layer gives the
same output digest in every image. The digest of what was written is printed
on stdout.

Drop presets:
` + indent(drop.Table()),
		Example: `  layerslim rewrite registry.example/app:1.4 registry.example/app:1.4-slim --report slim.json
  layerslim rewrite oci:./testdata/sample:sample oci:/tmp/slim:sample
  layerslim rewrite app:1.4 app:1.4-slim --drop default,pycache --keep 'usr/share/doc/mytool/**'
  layerslim rewrite app:1.4 app:1.4-slim --squash none --drop none   # recompress only`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ro := registryOptions(cmd, imageref.Options{Insecure: o.insecure, Jobs: o.jobs, UserAgent: "layerslim/" + Version})
			j, err := o.job(args[0], args[1], cmd.ErrOrStderr(), ro)
			if err != nil {
				return err
			}
			return j.run(cmd)
		},
	}
	o.addFlags(cmd)
	return cmd
}

func (o *rewriteOptions) addFlags(cmd *cobra.Command) {
	o.pipelineOptions.addFlags(cmd)
	o.dropOptions.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.squash, "squash", "auto", "which layers to merge: auto, none or all")
	f.StringVar(&o.base, "base", "", "the base image (a reference) whose layers --squash=auto keeps")
	f.BoolVar(&o.dryRun, "dry-run", false, "do everything but write DST; the report says what would change")
	f.StringVar(&o.strip, "strip", "unneeded", "ELF debug split: unneeded (debug sections and .symtab), debug (debug sections only), all, or none")
	f.StringArrayVar(&o.stripSkip, "strip-skip", nil, "leave the ELF files at paths matching this glob as they are (repeatable; **/testdata/** always is)")
	f.StringVar(&o.debugSuffix, "debug-suffix", "-debug", "the debug image is DST with this suffix on its tag")
	f.StringVar(&o.debugTo, "debug-to", "", "write the debug image here instead (a reference)")
	f.BoolVar(&o.verify, "verify", false, "verify the output against SRC (as the verify command does) before writing it")
	f.BoolVar(&o.noDebug, "no-debug-image", false, "strip, but write no debug image (the debug information is discarded)")
	o.limits.addSpoolFlag(cmd)
}

// job validates o and returns the job that rewrites src into dst; the
// verify report, with --verify, goes to w; ro reads the --base image.
func (o *rewriteOptions) job(src, dst string, w io.Writer, ro imageref.Options) (*job, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	mode, err := rewrite.ParseSquash(o.squash)
	if err != nil {
		return nil, &UsageError{Err: fmt.Errorf("--squash: %w", err)}
	}
	m, err := o.matcher()
	if err != nil {
		return nil, err
	}
	var baseRef *imageref.Ref
	if o.base != "" {
		r, err := imageref.Parse(o.base, o.insecure)
		if err != nil {
			return nil, &UsageError{Err: fmt.Errorf("--base: %w", err)}
		}
		baseRef = &r
	}
	strip, err := elf.ParseMode(o.strip)
	if err != nil {
		return nil, &UsageError{Err: fmt.Errorf("--strip: %w", err)}
	}
	if _, err := rewrite.Describe(rewrite.WithStripSkip(o.stripSkip...)); err != nil {
		return nil, &UsageError{Err: err}
	}
	extra := []rewrite.Option{
		rewrite.WithStrip(strip),
		rewrite.WithStripSkip(o.stripSkip...),
		rewrite.WithSquash(mode),
		rewrite.WithBaseFinder(newBaseFinder(baseRef, ro)),
		rewrite.WithFilter(func(rec rewrite.Recorder) rewrite.Filter {
			return rewrite.Drop(m, rec)
		}),
		rewrite.WithOptionText(m.String()),
	}
	j := &job{src: src, dst: dst, o: &o.pipelineOptions, extra: extra, dryRun: o.dryRun,
		debug: strip != elf.None && !o.noDebug, debugTo: o.debugTo, debugSuffix: o.debugSuffix}
	if o.verify {
		j.verify = func(ctx context.Context, src *imageref.Source, res *rewrite.Result) error {
			return verifyResult(ctx, w, src, res, verify.Options{Dropped: m.Match, Jobs: o.jobs, Platforms: o.plats,
				MaxLayerSize: o.limits.layer, MaxSpool: o.limits.spool})
		}
	}
	return j, nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}

// newBaseFinder looks the base image up from --base, or else from the
// image's org.opencontainers.image.base.name/digest annotations. A base it
// cannot read leaves the choice to the library's history heuristic.
func newBaseFinder(base *imageref.Ref, ro imageref.Options) rewrite.BaseFinder {
	var mu sync.Mutex
	cache := map[string]*imageref.Source{}
	open := func(ctx context.Context, r imageref.Ref) (*imageref.Source, error) {
		mu.Lock()
		defer mu.Unlock()
		if s, ok := cache[r.String()]; ok {
			return s, nil
		}
		s, err := imageref.Open(ctx, r, ro)
		if err != nil {
			return nil, err
		}
		cache[r.String()] = s
		return s, nil
	}
	return func(ctx context.Context, plat v1.Platform, m *v1.Manifest, _ *v1.ConfigFile) ([]v1.Hash, string, error) {
		ref, reason := base, ""
		if ref != nil {
			reason = "--base " + ref.String()
		} else {
			name, digest := m.Annotations["org.opencontainers.image.base.name"], m.Annotations["org.opencontainers.image.base.digest"]
			if name == "" || digest == "" {
				return nil, "", nil
			}
			repo, _, _ := strings.Cut(name, "@")
			if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
				repo = repo[:i]
			}
			r, err := imageref.Parse(repo+"@"+digest, ro.Insecure)
			if err != nil {
				return nil, "", nil
			}
			ref, reason = &r, "annotation org.opencontainers.image.base.digest "+digest
		}
		src, err := open(ctx, *ref)
		if err != nil {
			if base != nil {
				return nil, "", err
			}
			return nil, "", nil // an unreachable annotated base: use the history
		}
		img := src.Image
		if src.Index != nil {
			im, err := src.Index.IndexManifest()
			if err != nil {
				return nil, "", err
			}
			for _, d := range im.Manifests {
				if d.Platform != nil && rewrite.MatchPlatform([]v1.Platform{plat}, *d.Platform) {
					if img, err = src.Index.Image(d.Digest); err != nil {
						return nil, "", err
					}
					break
				}
			}
			if img == nil {
				return nil, "", fmt.Errorf("base %s has no %s image", ref, plat.String())
			}
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, "", err
		}
		return cf.RootFS.DiffIDs, reason, nil
	}
}

// verifyResult checks a rewrite's output against its source before it is
// written; a violation stops the run.
func verifyResult(ctx context.Context, w io.Writer, src *imageref.Source, res *rewrite.Result, vo verify.Options) error {
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
	if err := renderVerify(w, results, false, false); err != nil {
		return fmt.Errorf("verify: %w; nothing was written", err)
	}
	return nil
}
