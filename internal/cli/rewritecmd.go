package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/layerslim/layerslim/drop"
	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/run"
	"github.com/layerslim/layerslim/rewrite"
	"github.com/layerslim/layerslim/tarfilter"
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
			j, err := o.job(args[0], args[1], ro)
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

// job validates o and returns the job that rewrites src into dst; ro reads
// the --base image.
func (o *rewriteOptions) job(src, dst string, ro imageref.Options) (*job, error) {
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
		rewrite.WithBaseFinder(run.BaseFinder(baseRef, ro)),
		rewrite.WithFilter(func(rec rewrite.Recorder) tarfilter.Filter {
			return rewrite.Drop(m, rec)
		}),
		rewrite.WithOptionText(m.String()),
	}
	j := &job{src: src, dst: dst, o: &o.pipelineOptions, extra: extra, dryRun: o.dryRun,
		debug: strip != elf.None && !o.noDebug, debugTo: o.debugTo, debugSuffix: o.debugSuffix}
	if o.verify {
		j.verify = &verify.Options{Dropped: m.Match, Jobs: o.jobs, Platforms: o.plats,
			MaxLayerSize: o.limits.layer, MaxSpool: o.limits.spool}
	}
	return j, nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}
