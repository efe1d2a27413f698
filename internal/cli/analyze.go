package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/layerslim/layerslim/analyze"
	"github.com/layerslim/layerslim/analyze/report"
	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/drop"
	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/imagewalk"
)

type analyzeOptions struct {
	dropOptions
	platforms     []string
	insecure      bool
	jobs          int
	level         int
	strip         string
	json          bool
	format        string
	maxWaste      string
	maxWasteBytes string
	limits        limitOptions

	plats    []v1.Platform
	mode     elf.Mode
	fmt      report.Format
	maxPct   float64 // < 0: no gate
	maxBytes int64   // < 0: no gate
}

func (o *analyzeOptions) addFlags(cmd *cobra.Command) {
	o.dropOptions.addFlags(cmd)
	f := cmd.Flags()
	f.StringSliceVar(&o.platforms, "platform", nil, "only these platforms of an index, as os/arch[/variant],…")
	f.BoolVar(&o.insecure, "insecure", false, "allow plain HTTP and unverified TLS to registries")
	f.IntVar(&o.jobs, "jobs", 0, "layer blobs read at once; the layers below the one analyzed are downloaded ahead (default 4 for a registry, 1 for oci: and docker-archive:)")
	f.IntVar(&o.level, "level", 0, "zstd level of the size estimate (default 3)")
	f.StringVar(&o.strip, "strip", "unneeded", "strip mode whose savings are counted: unneeded, debug, all or none")
	f.StringVar(&o.format, "format", "text", "output format: text, json, markdown (CI summaries, pull request comments) or html (one self-contained page with a treemap)")
	f.BoolVar(&o.json, "json", false, "print the reports as JSON (--format json)")
	f.StringVar(&o.maxWaste, "max-waste", "", "exit 3 when a platform's waste exceeds this share of its uncompressed size (10 or 10%)")
	f.StringVar(&o.maxWasteBytes, "max-waste-bytes", "", "exit 3 when a platform's waste exceeds this many bytes (50000000, 50MB, 48MiB)")
	o.limits.addLayerFlag(cmd)
	o.limits.addSpoolFlag(cmd)
}

func (o *analyzeOptions) validate() error {
	if o.jobs < 0 {
		return usagef("--jobs must not be negative (0 means 4 for a registry, 1 otherwise)")
	}
	if o.level != 0 {
		if err := compress.ValidLevel(compress.Zstd, o.level); err != nil {
			return &UsageError{Err: fmt.Errorf("--level: %w", err)}
		}
	}
	format, err := report.ParseFormat(o.format)
	if err != nil {
		return &UsageError{Err: fmt.Errorf("--format: %w", err)}
	}
	if o.json {
		if format != report.Text && format != report.JSON {
			return usagef("--json and --format %s: choose one", format)
		}
		format = report.JSON
	}
	o.fmt = format
	mode, err := elf.ParseMode(o.strip)
	if err != nil {
		return &UsageError{Err: fmt.Errorf("--strip: %w", err)}
	}
	o.mode = mode
	plats, err := imagewalk.ParsePlatforms(o.platforms)
	if err != nil {
		return &UsageError{Err: fmt.Errorf("--platform %w", err)}
	}
	o.plats = plats
	if err := o.limits.validate(); err != nil {
		return err
	}
	o.maxPct, o.maxBytes = -1, -1
	if o.maxWaste != "" {
		if o.maxPct, err = parseGatePercent(o.maxWaste); err != nil {
			return &UsageError{Err: fmt.Errorf("--max-waste: %w", err)}
		}
	}
	if o.maxWasteBytes != "" {
		if o.maxBytes, err = parseGateBytes(o.maxWasteBytes); err != nil {
			return &UsageError{Err: fmt.Errorf("--max-waste-bytes: %w", err)}
		}
	}
	return nil
}

func newAnalyze() *cobra.Command {
	var o analyzeOptions
	cmd := &cobra.Command{
		Use:   "analyze SRC",
		Short: "Tell what a rewrite would save, per layer and in total, without writing anything",
		Long: `analyze reads SRC once, layer by layer from the top down, and tells per
platform, per layer and in total how many bytes a rewrite would save:

  SHADOWED  files a later layer overwrites, deletes, or hides under an opaque
            directory or a file that replaces their directory (and earlier
            entries of a path that the same layer writes again)
  DROP      visible files the drop presets and --drop-path remove (below)
  DEBUG     debug sections (and .symtab per --strip) of visible ELF files
            and static archives, found by their magic bytes

Waste is their sum, in uncompressed bytes, and its share of the image's
uncompressed size. EST. ZSTD is the layer's size after the rewrite: the tar
records that stay (ELF files as the rewrite strips them) compressed with zstd.
It counts every shadowed file as gone, as --squash=all would; with the
default --squash=auto, files shadowed inside the base image's layers stay.
The largest wasted items are listed last.

--format markdown writes the tables for a CI job summary or a pull request
comment; --format html one self-contained page (nothing fetched) with a
treemap of the bytes by layer and directory, coloured by what a rewrite does
to them, and the tables, sortable.

The gates --max-waste and --max-waste-bytes make analyze exit with status 3
when a platform exceeds them, after printing the report.

Drop presets:
` + indent(drop.Table()),
		Example: `  layerslim analyze registry.example/app:1.4
  layerslim analyze oci:./testdata/sample:sample --platform linux/amd64
  layerslim analyze app:1.4 --max-waste 10% --max-waste-bytes 50MB   # a CI gate
  layerslim analyze app:1.4 --format json | jq '.images[].wastePercent'
  layerslim analyze app:1.4 --format html > app.html         # a treemap of where the bytes are
  layerslim analyze app:1.4 --format markdown >> "$GITHUB_STEP_SUMMARY"`,
		Args:          exactArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			m, err := o.matcher()
			if err != nil {
				return err
			}
			return runAnalyze(cmd, args[0], &o, m)
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{Err: err} })
	o.addFlags(cmd)
	return cmd
}

// analyzeOutput is what --format json prints.
type analyzeOutput = report.Report

func runAnalyze(cmd *cobra.Command, srcArg string, o *analyzeOptions, m *drop.Matcher) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	src, err := imageref.Parse(srcArg, o.insecure)
	if err != nil {
		return &UsageError{Err: fmt.Errorf("SRC: %w", err)}
	}
	jobs := o.jobs
	if jobs == 0 {
		jobs = 1
		if src.Kind == imageref.Registry {
			jobs = 4
		}
	}
	source, err := imageref.Open(ctx, src, registryOptions(cmd, imageref.Options{Insecure: o.insecure, UserAgent: "layerslim/" + Version}))
	if err != nil {
		return err
	}
	ao := analyze.Options{Drop: m, Strip: o.mode, Jobs: jobs, Level: o.level, Platforms: o.plats,
		MaxLayerSize: o.limits.layer, MaxSpool: o.limits.spool, Tree: o.fmt.NeedsTree()}
	var reps []*analyze.ImageReport
	if source.Index != nil {
		reps, err = analyze.Index(ctx, source.Index, ao)
	} else {
		var rep *analyze.ImageReport
		rep, err = analyze.Image(ctx, source.Image, ao)
		reps = []*analyze.ImageReport{rep}
	}
	if err != nil {
		return fmt.Errorf("analyzing %s: %w", src, err)
	}
	exceeded := o.gates(reps)
	level := o.level
	if level == 0 {
		level = compress.DefaultLevel(compress.Zstd)
	}
	r := &report.Report{
		Source: src.String(), Version: Version, Images: reps, Exceeded: exceeded,
		Options: fmt.Sprintf("%s strip=%s level=%d", m, o.mode, level),
	}
	if err := report.Write(cmd.OutOrStdout(), o.fmt, r); err != nil {
		return err
	}
	if len(exceeded) > 0 {
		return &GateError{Msg: strings.Join(exceeded, "; ")}
	}
	return nil
}

// gates lists the gates each report exceeds.
func (o *analyzeOptions) gates(reps []*analyze.ImageReport) []string {
	var out []string
	for _, r := range reps {
		name := r.Platform
		if name == "" {
			name = "image"
		}
		if o.maxPct >= 0 && r.WastePercent > o.maxPct {
			out = append(out, fmt.Sprintf("%s: waste %.1f%% exceeds --max-waste %s", name, r.WastePercent, o.maxWaste))
		}
		if o.maxBytes >= 0 && r.WasteBytes > o.maxBytes {
			out = append(out, fmt.Sprintf("%s: waste %s (%d bytes) exceeds --max-waste-bytes %s", name, human(r.WasteBytes), r.WasteBytes, o.maxWasteBytes))
		}
	}
	return out
}

// parseGatePercent accepts "10", "10%" and "12.5%".
func parseGatePercent(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%")), 64)
	if err != nil || !(v >= 0 && v <= 100) { // NaN compares false both ways
		return 0, fmt.Errorf("%q: want a percentage from 0 to 100, like 10 or 10%%", s)
	}
	return v, nil
}

var gateByteUnits = map[string]float64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// parseGateBytes accepts a number of bytes, optionally with a unit: B, kB, MB,
// GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), in any
// case. A bare K, M or G is refused: it means 1000 to some and 1024 to
// others.
func parseGateBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	v, err := strconv.ParseFloat(t[:i], 64)
	mult, ok := gateByteUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if err != nil || !ok || v < 0 || v*mult > 1<<62 {
		return 0, fmt.Errorf("%q: want a number of bytes, optionally with B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)", s)
	}
	return int64(v * mult), nil
}
