package batch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/run"
	"github.com/layerslim/layerslim/manifest"
	"github.com/layerslim/layerslim/rewrite"
)

// Config configures Run.
type Config struct {
	// Jobs bounds the images in flight (default 1).
	Jobs int
	// Prepare builds the job of an item (from its command and options, so
	// the batch takes every option the single commands take); an error
	// fails the item. The job runs with run.RunOpened.
	Prepare func(Item) (run.Options, error)
	// Memo, when set, is the layer memo of registry destinations.
	Memo *Memo
	// Version is this layerslim's version, compared with the destination's
	// dev.layerslim.version annotation.
	Version string
	// Registry options for opening sources and destinations.
	Registry imageref.Options
	// Done, when set, is called as each image ends (from its goroutine).
	Done func(r ImageResult, finished, total int)

	// run runs a job: run.RunOpened, or a fake in tests.
	run func(context.Context, *imageref.Source, run.Options) (*run.Result, error)
}

// Status is how an image ended.
type Status string

// The statuses of an image.
const (
	Done    Status = "done"
	Skipped Status = "skipped"
	Failed  Status = "failed"
)

// ImageResult is one image of the report.
type ImageResult struct {
	Src          string   `json:"src"`
	Dst          string   `json:"dst"`
	Where        string   `json:"plan,omitempty"`
	Status       Status   `json:"status"`
	SourceDigest string   `json:"sourceDigest,omitempty"`
	OutputDigest string   `json:"outputDigest,omitempty"`
	Debug        string   `json:"debugImage,omitempty"`
	SourceBytes  int64    `json:"sourceBytes"`
	OutputBytes  int64    `json:"outputBytes"`
	Saved        int64    `json:"saved"`
	Duration     Duration `json:"duration"`
	Error        string   `json:"error,omitempty"`
	// Reason says why an image was skipped.
	Reason string       `json:"reason,omitempty"`
	Layers LayerCounts  `json:"layers"`
	digest []digestPair // old→new per manifest, for Report.Digests
}

type digestPair struct{ old, new string }

// LayerCounts says how an image's layers were obtained.
type LayerCounts struct {
	Rewritten int `json:"rewritten"` // computed by this image
	Cached    int `json:"cached"`    // from the layer memo
	Reused    int `json:"reused"`    // the source blob as it was
}

// Duration is a time.Duration written as seconds in JSON.
type Duration time.Duration

// MarshalJSON writes d as seconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "%.3f", time.Duration(d).Seconds()), nil
}

// Totals add up a report's images.
type Totals struct {
	Images      int      `json:"images"`
	Done        int      `json:"done"`
	Skipped     int      `json:"skipped"`
	Failed      int      `json:"failed"`
	SourceBytes int64    `json:"sourceBytes"`
	OutputBytes int64    `json:"outputBytes"`
	Saved       int64    `json:"saved"`
	Duration    Duration `json:"duration"`
}

// Report is the result of a batch.
type Report struct {
	Version string        `json:"version"`
	Shard   string        `json:"shard,omitempty"`
	Images  []ImageResult `json:"images"`
	// Digests maps each source manifest (index, and each platform's image)
	// to what replaced it, for re-signing and deployment manifests; a
	// skipped image maps to the destination found.
	Digests map[string]string `json:"digests"`
	Totals  Totals            `json:"totals"`
}

// Run processes items, at most cfg.Jobs images at a time. An image that
// fails does not stop the others; the report has every item in order. The
// error is only ctx's.
func Run(ctx context.Context, items []Item, cfg Config) (*Report, error) {
	jobs := max(cfg.Jobs, 1)
	start := time.Now()
	rep := &Report{Version: cfg.Version, Images: make([]ImageResult, len(items)), Digests: map[string]string{}}
	var mu sync.Mutex
	finished := 0
	g := errgroup.Group{}
	g.SetLimit(jobs)
	for i, it := range items {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			r := runOne(ctx, it, cfg)
			mu.Lock()
			rep.Images[i] = r
			finished++
			n := finished
			mu.Unlock()
			if cfg.Done != nil {
				cfg.Done(r, n, len(items))
			}
			return nil
		})
	}
	g.Wait()
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	t := &rep.Totals
	for _, r := range rep.Images {
		t.Images++
		switch r.Status {
		case Done:
			t.Done++
		case Skipped:
			t.Skipped++
		case Failed:
			t.Failed++
		}
		t.SourceBytes += r.SourceBytes
		t.OutputBytes += r.OutputBytes
		t.Saved += r.Saved
		for _, p := range r.digest {
			rep.Digests[p.old] = p.new
		}
	}
	t.Duration = Duration(time.Since(start))
	return rep, nil
}

func runOne(ctx context.Context, it Item, cfg Config) (r ImageResult) {
	start := time.Now()
	r = ImageResult{Src: it.Src, Dst: it.Dst, Where: it.Where}
	defer func() { r.Duration = Duration(time.Since(start)) }()
	fail := func(err error) ImageResult {
		r.Status, r.Error = Failed, err.Error()
		return r
	}
	if it.Err != nil {
		return fail(it.Err)
	}
	opts, err := cfg.Prepare(it)
	if err != nil {
		return fail(err)
	}
	text, err := opts.Describe()
	if err != nil {
		return fail(err)
	}
	source, err := imageref.Open(ctx, opts.Src, cfg.Registry)
	if err != nil {
		return fail(err)
	}
	r.SourceDigest = source.Descriptor.Digest.String()
	if reason, pairs := skip(ctx, source, opts.Dst, text, cfg); reason != "" {
		r.Status, r.Reason, r.OutputDigest = Skipped, reason, pairs[0].new
		r.digest = pairs
		return r
	}
	if cfg.Memo != nil && opts.Dst.Kind == imageref.Registry {
		opts.Rewrite = append(slices.Clip(opts.Rewrite), rewrite.WithLayerCache(cfg.Memo.For(opts.Dst.Name.Context())))
	}
	runJob := run.RunOpened
	if cfg.run != nil {
		runJob = cfg.run
	}
	out, err := runJob(ctx, source, opts)
	if err != nil {
		return fail(err)
	}
	if out.Skipped != "" {
		r.Status, r.Reason = Skipped, out.Skipped
		return r
	}
	if out.HasDebug {
		r.Debug = opts.Debug.String() + "@" + out.DebugWritten.String()
	}
	rp := out.Report
	r.Status = Done
	r.OutputDigest = out.Written.String()
	r.SourceBytes, r.OutputBytes = rp.SourceBytes, rp.OutputBytes
	r.Saved = rp.SourceBytes - rp.OutputBytes
	r.digest = []digestPair{{r.SourceDigest, r.OutputDigest}}
	for _, im := range rp.Images {
		if len(rp.Images) > 1 || im.SourceDigest.String() != r.SourceDigest {
			r.digest = append(r.digest, digestPair{im.SourceDigest.String(), im.OutputDigest.String()})
		}
		for _, l := range im.Layers {
			if l.Shared { // counted for the platform that had it first
				continue
			}
			switch {
			case l.Cached:
				r.Layers.Cached++
			case l.Action == rewrite.Reused || l.Action == rewrite.PassedThrough:
				r.Layers.Reused++
			default:
				r.Layers.Rewritten++
			}
		}
	}
	return r
}

// skip tells whether the destination is already what this job would write:
// its provenance annotations name the source's current digest, the same
// options and this version. Only manifests are read, no layer. A source
// that is itself layerslim output with the same options and version (an
// in-place rewrite, rerun) is skipped too. The pairs map old digests to
// new, the index's and each platform's.
func skip(ctx context.Context, source *imageref.Source, dst imageref.Ref, opts string, cfg Config) (string, []digestPair) {
	if a := annotations(source); a[manifest.AnnotationOptions] == opts && a[manifest.AnnotationVersion] == cfg.Version && a[manifest.AnnotationSourceDigest] != "" {
		d := source.Descriptor.Digest.String()
		return "the source is already layerslim output with these options", []digestPair{{d, d}}
	}
	d, err := imageref.Open(ctx, dst, cfg.Registry)
	if err != nil {
		return "", nil // not there (or not readable): write it
	}
	a := annotations(d)
	if a[manifest.AnnotationSourceDigest] != source.Descriptor.Digest.String() || a[manifest.AnnotationOptions] != opts || a[manifest.AnnotationVersion] != cfg.Version {
		return "", nil
	}
	pairs := []digestPair{{source.Descriptor.Digest.String(), d.Descriptor.Digest.String()}}
	if d.Index != nil {
		im, err := d.Index.IndexManifest()
		if err != nil {
			return "", nil
		}
		for _, c := range im.Manifests {
			if !c.MediaType.IsImage() {
				continue
			}
			img, err := d.Index.Image(c.Digest)
			if err != nil {
				return "", nil
			}
			m, err := img.Manifest()
			if err != nil {
				return "", nil
			}
			if old := m.Annotations[manifest.AnnotationSourceDigest]; old != "" {
				pairs = append(pairs, digestPair{old, c.Digest.String()})
			}
		}
	}
	return "the destination is this source rewritten with these options", pairs
}

func annotations(s *imageref.Source) map[string]string {
	switch {
	case s.Index != nil:
		if im, err := s.Index.IndexManifest(); err == nil {
			return im.Annotations
		}
	case s.Image != nil:
		if m, err := s.Image.Manifest(); err == nil {
			return m.Annotations
		}
	}
	return nil
}

// Failed reports whether any image of r failed.
func (r *Report) Failed() bool { return r.Totals.Failed > 0 }

// ErrFailed is wrapped by the error a caller returns when images failed.
var ErrFailed = errors.New("images failed")
