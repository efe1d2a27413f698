package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/layerslim/layerslim/internal/batch"
	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/run"
)

type batchOptions struct {
	jobs        int
	layerJobs   int
	shard       string
	report      string
	cacheDir    string
	cacheRepo   string
	dstTemplate string
	command     string
	set         []string
	insecure    bool

	// registry applies the root's TLS flags to registry options.
	registry func(imageref.Options) imageref.Options
}

// notInPlan are rewrite flags that a plan may not set, and why.
var notInPlan = map[string]string{
	"report":   "the batch writes one report: pass --report to batch",
	"progress": "the batch logs one line per image",
	"dry-run":  "a batch writes; run analyze or a single rewrite --dry-run to preview",
	"insecure": "it applies to the whole batch: pass --insecure to batch",
}

func newBatch() *cobra.Command {
	var o batchOptions
	cmd := &cobra.Command{
		Use:   "batch PLAN",
		Short: "Rewrite many images: shared layers once, reruns skip what is done, shards for CI",
		Long: `batch runs rewrite (or recompress) over many images. PLAN is a YAML file,
or "-" for a list of images on stdin, one a line: "SRC DST", or "SRC" with
--dst-template.

  command: rewrite                  # or recompress (also per entry)
  defaults:                         # any rewrite flag by its long name
    squash: none
    compression: zstd
    drop: [default, pycache]        # lists for repeatable flags
  cache:                            # the layer memo (see below)
    dir: /var/cache/layerslim
    repository: registry.example/layerslim-cache
  images:
    - src: registry.example/team/api:1.4
      dst: registry.example/team/api:1.4-slim
      options: {strip: none}        # over the defaults, for this entry
    - repository: registry.example/team/web
      tags: ["1.*"]                 # path.Match patterns, sorted
      dst: "{{.Repository}}:{{.Tag}}-slim"

A destination is a text/template over the source: .Registry, .Repository
(registry/path), .Path (the path alone) and .Tag.

--jobs bounds the images in flight; each image's layers run --layer-jobs at a
time. An image whose destination already carries this source's digest, the
same options and this version in its dev.layerslim.* annotations is skipped
without reading its layers. A failing image does not stop the others; the
exit status is 1 when any failed.

Layer memo: a source layer is rewritten once per (layer, options, version)
and its output blob uploaded once per registry; other images mount it. The
memo persists in --cache-dir (default $XDG_CACHE_HOME/layerslim/layers) and,
with --cache-repo, in that registry repository (one small manifest per layer,
tagged by its key), where shards on other machines find it. Layers of images
that get a debug image (--strip other than none, without --no-debug-image)
bypass the memo: their debug files are not kept.

--shard I/N processes the images whose source reference hashes to I (0 <= I < N),
so N shards (a CI matrix, a Kubernetes Indexed Job with
--shard $JOB_COMPLETION_INDEX/N) cover the plan exactly once between them.`,
		Example: `  layerslim batch plan.yaml --jobs 4 --report batch.json
  layerslim batch plan.yaml --shard 0/3 --cache-repo registry.example/layerslim-cache
  crane ls registry.example/app | sed 's|^|registry.example/app:|' |
    layerslim batch - --dst-template '{{.Repository}}:{{.Tag}}-zstd' --command recompress`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, args[0])
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.jobs, "jobs", runtime.GOMAXPROCS(0), "images in flight")
	f.IntVar(&o.layerJobs, "layer-jobs", 0, "layers of one image processed at once (default: cores / --jobs, at least 1; a plan's jobs: sets it too)")
	f.StringVar(&o.shard, "shard", "", "process only shard I of N (I/N, 0-based)")
	f.StringVar(&o.report, "report", "", "write a JSON report (every image, and the old→new digest map) to this file")
	f.StringVar(&o.cacheDir, "cache-dir", "", `the layer memo's local directory ("" with the flag given: none)`)
	f.StringVar(&o.cacheRepo, "cache-repo", "", "also keep the layer memo in this registry repository")
	f.StringVar(&o.dstTemplate, "dst-template", "", "the destination of entries (or stdin lines) that give none, a template as dst")
	f.StringVar(&o.command, "command", "", "rewrite or recompress: overrides the plan's command")
	f.StringArrayVar(&o.set, "set", nil, "NAME=VALUE: set a rewrite flag for every image, over the plan's options (repeatable)")
	f.BoolVar(&o.insecure, "insecure", false, "allow plain HTTP and unverified TLS to registries")
	return cmd
}

func (o *batchOptions) run(cmd *cobra.Command, planArg string) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	if o.jobs < 1 {
		return usagef("--jobs must be at least 1")
	}
	if o.layerJobs < 0 {
		return usagef("--layer-jobs must be at least 1")
	}
	if o.layerJobs == 0 {
		o.layerJobs = max(1, (runtime.GOMAXPROCS(0)+o.jobs-1)/o.jobs)
	}
	shard := batch.Shard{Index: 0, Count: 1}
	if o.shard != "" {
		s, err := batch.ParseShard(o.shard)
		if err != nil {
			return &UsageError{Err: fmt.Errorf("--shard: %w", err)}
		}
		shard = s
	}
	if o.command != "" && o.command != batch.CommandRewrite && o.command != batch.CommandRecompress {
		return usagef("--command %q: want rewrite or recompress", o.command)
	}
	plan, err := readPlan(cmd.InOrStdin(), planArg)
	if err != nil {
		return &UsageError{Err: err}
	}
	if o.command != "" {
		plan.Command = o.command
		for i := range plan.Images {
			plan.Images[i].Command = ""
		}
	}
	var set batch.Options
	for _, kv := range o.set {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usagef("--set %q: want NAME=VALUE", kv)
		}
		set = set.Over(batch.Options{{Name: strings.TrimPrefix(k, "--"), Values: []string{v}, Where: "--set"}})
	}
	o.registry = func(ro imageref.Options) imageref.Options { return registryOptions(cmd, ro) }
	ro := o.registry(imageref.Options{Insecure: o.insecure, UserAgent: "layerslim/" + Version})
	list := func(ctx context.Context, repo string) ([]string, error) {
		r, err := name.NewRepository(repo, nameOpts(o.insecure)...)
		if err != nil {
			return nil, err
		}
		return remote.List(r, ro.RemoteOptions(ctx)...)
	}
	items, err := batch.Expand(ctx, plan, o.dstTemplate, o.insecure, list)
	if err != nil {
		return &UsageError{Err: err}
	}
	for i := range items {
		items[i].Options = items[i].Options.Over(set)
	}
	// Every item's options are checked before anything runs: a typo in the
	// plan is a usage error, not a dozen failed images.
	for _, it := range items {
		if it.Err == nil {
			if _, err := o.prepare(it); err != nil {
				return err
			}
		}
	}
	total := len(items)
	items = shard.Select(items)

	cacheDir := plan.Cache.Dir
	if cmd.Flags().Changed("cache-dir") {
		cacheDir = o.cacheDir
	} else if cacheDir == "" {
		cacheDir = batch.DefaultCacheDir()
	}
	cacheRepo := plan.Cache.Repository
	if o.cacheRepo != "" {
		cacheRepo = o.cacheRepo
	}
	memo, err := batch.NewMemo(cacheDir, cacheRepo, ro)
	if err != nil {
		return &UsageError{Err: err}
	}

	stderr := &syncWriter{w: cmd.ErrOrStderr()}
	memo.Warn = func(msg string) { fmt.Fprintf(stderr, "warning: %s\n", msg) }
	where := ""
	if shard.Count > 1 {
		where = fmt.Sprintf(" (shard %s of a plan of %d)", shard, total)
	}
	if o.report != "" {
		if err := imageref.CheckWritableFile(o.report); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	fmt.Fprintf(stderr, "batch: %d image(s)%s, %d at a time\n", len(items), where, o.jobs)
	render := &renderer{w: stderr, batch: true}
	rep, err := batch.Run(ctx, items, batch.Config{
		Jobs: o.jobs,
		Prepare: func(it batch.Item) (run.Options, error) {
			opts, err := o.prepare(it)
			opts.Reporter = render
			return opts, err
		},
		Memo:     memo,
		Version:  Version,
		Registry: ro,
		Done: func(r batch.ImageResult, n, total int) {
			fmt.Fprintf(stderr, "[%d/%d] %s\n", n, total, imageLine(r))
		},
	})
	if err != nil {
		return err
	}
	if shard.Count > 1 {
		rep.Shard = shard.String()
	}
	printBatchSummary(stderr, rep)
	for _, r := range rep.Images {
		if r.Status != batch.Failed {
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s@%s\n", r.Status, r.Dst, r.OutputDigest)
		}
	}
	if o.report != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.report, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("writing report: %w", err)
		}
	}
	if rep.Failed() {
		return fmt.Errorf("%d of %d image(s) failed: %w", rep.Totals.Failed, rep.Totals.Images, batch.ErrFailed)
	}
	return nil
}

func readPlan(stdin io.Reader, arg string) (*batch.Plan, error) {
	if arg == "-" {
		return batch.ParseLines(stdin, "stdin")
	}
	f, err := os.Open(arg)
	if err != nil {
		return nil, fmt.Errorf("reading the plan: %w", err)
	}
	defer f.Close()
	return batch.Parse(f, arg)
}

func nameOpts(insecure bool) []name.Option {
	if insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// prepare builds an item's job with the flags of the rewrite (or
// recompress) command, set from the item's options by their long names, so
// a plan takes exactly what the command line takes, checked the same way.
func (o *batchOptions) prepare(it batch.Item) (run.Options, error) {
	cmd := &cobra.Command{Use: it.Command}
	var mk func() (*job, error)
	switch it.Command {
	case batch.CommandRecompress:
		var po pipelineOptions
		po.addFlags(cmd)
		mk = func() (*job, error) { return po.job(it.Src, it.Dst) }
	default:
		var ro rewriteOptions
		ro.addFlags(cmd)
		mk = func() (*job, error) {
			return ro.job(it.Src, it.Dst, o.registry(imageref.Options{Insecure: o.insecure, UserAgent: "layerslim/" + Version}))
		}
	}
	fs := cmd.Flags()
	set := func(name, v, where string) error {
		if err := fs.Set(name, v); err != nil {
			return usagef("%s: %s: %v", where, name, err)
		}
		return nil
	}
	if err := set("jobs", fmt.Sprint(o.layerJobs), "--layer-jobs"); err != nil {
		return run.Options{}, err
	}
	if err := set("insecure", fmt.Sprint(o.insecure), "--insecure"); err != nil {
		return run.Options{}, err
	}
	for _, s := range it.Options {
		if why, ok := notInPlan[s.Name]; ok {
			return run.Options{}, usagef("%s: %s cannot be set per image: %s", s.Where, s.Name, why)
		}
		if fs.Lookup(s.Name) == nil {
			return run.Options{}, usagef("%s: %s is not an option of %s (see layerslim %s --help)", s.Where, s.Name, it.Command, it.Command)
		}
		for _, v := range s.Values {
			if err := set(s.Name, v, s.Where); err != nil {
				return run.Options{}, err
			}
		}
	}
	j, err := mk()
	if err != nil {
		return run.Options{}, fmt.Errorf("%s: %w", it.Where, err)
	}
	src, dst, dbg, err := j.refs()
	if err != nil {
		return run.Options{}, fmt.Errorf("%s: %w", it.Where, err)
	}
	opts := j.runOptions(src, dst, dbg, o.registry(j.registry()), nil)
	if _, err := opts.Describe(); err != nil {
		return run.Options{}, &UsageError{Err: fmt.Errorf("%s: %w", it.Where, err)}
	}
	return opts, nil
}

func imageLine(r batch.ImageResult) string {
	d := time.Duration(r.Duration).Round(time.Millisecond)
	switch r.Status {
	case batch.Failed:
		return fmt.Sprintf("failed  %s → %s in %s: %s", r.Src, r.Dst, d, r.Error)
	case batch.Skipped:
		return fmt.Sprintf("skipped %s → %s (%s): %s", r.Src, r.Dst, short(r.OutputDigest), r.Reason)
	}
	return fmt.Sprintf("done    %s → %s (%s) %s → %s in %s; layers: %d rewritten, %d from the memo, %d reused",
		r.Src, r.Dst, short(r.OutputDigest), human(r.SourceBytes), human(r.OutputBytes), d, r.Layers.Rewritten, r.Layers.Cached, r.Layers.Reused)
}

func printBatchSummary(w io.Writer, rep *batch.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tSOURCE\tDESTINATION\tOLD\tNEW\tSAVED\tTIME")
	for _, r := range rep.Images {
		saved := "-"
		if r.Status == batch.Done {
			saved = human(r.Saved)
			if r.Saved < 0 {
				saved = "-" + human(-r.Saved)
			}
		}
		old, new := short(r.SourceDigest), short(r.OutputDigest)
		if old == "" {
			old = "-"
		}
		if new == "" {
			new = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Status, r.Src, r.Dst, old, new, saved, time.Duration(r.Duration).Round(100*time.Millisecond))
	}
	tw.Flush()
	for _, r := range rep.Images {
		if r.Status == batch.Failed {
			fmt.Fprintf(w, "error: %s: %s\n", r.Src, r.Error)
		}
	}
	t := rep.Totals
	fmt.Fprintf(w, "total: %d image(s): %d done, %d skipped, %d failed; %s → %s (saved %s); %s\n",
		t.Images, t.Done, t.Skipped, t.Failed, human(t.SourceBytes), human(t.OutputBytes), human(max(t.Saved, 0)), time.Duration(t.Duration).Round(time.Millisecond))
}

// syncWriter serializes writes from the images in flight.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
