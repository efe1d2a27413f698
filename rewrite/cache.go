package rewrite

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/imagewalk"
)

// A LayerCache keeps the output of a layer's pass across Image and Index
// calls and across runs, so that a layer many images share is rewritten
// once. It must be safe for concurrent use. The batch command's Memo is
// one (its plan's cache: section says where it keeps entries).
//
// Keys are opaque: each names one source layer (or one merge of layers),
// the options that shape the output and the layerslim version, so an entry
// stays valid for as long as the cache holds it.
type LayerCache interface {
	// Lookup returns the output recorded under key. When it reports no
	// entry (ok false, err nil), the caller computes the layer and then
	// calls exactly one of Store or Abandon for key, so an implementation
	// may make other Lookups of the same key wait for that (singleflight).
	Lookup(ctx context.Context, key string) (c CachedLayer, ok bool, err error)
	// Store records the output computed for key and returns the layer to
	// use in its place (one already pushed where the image goes, say), or
	// c.Layer. Store may also be called for a key that was not looked up.
	Store(ctx context.Context, key string, c CachedLayer) (v1.Layer, error)
	// Abandon says the caller will not Store key after all.
	Abandon(key string)
}

// CachedLayer is a layer's output as a LayerCache keeps it.
type CachedLayer struct {
	// Layer is the output blob, compressed as Report.Output says.
	Layer v1.Layer
	// Report is the layer's report as it was computed.
	Report LayerReport
	// Paths is every path the layer's output holds (directories implied
	// by deeper paths included), for a merge of the layers above it.
	// It is set only when a merge needed it; an entry without Paths is
	// recomputed when a merge does.
	Paths []string
}

// WithLayerCache looks each layer up in c before rewriting it and stores
// what was rewritten. Layers used as they are, and every layer when a debug
// image is built (WithDebugImage), bypass the cache: debug files are not
// kept in it.
func WithLayerCache(c LayerCache) Option {
	return func(o *options) error { o.cache = c; return nil }
}

// Describe is the text of the options that change the output, as the output
// records it in its dev.layerslim.options annotation. A caller can compare
// it with that annotation to tell an image already rewritten with the same
// options.
func Describe(opts ...Option) (string, error) {
	o, err := makeOptions(opts...)
	if err != nil {
		return "", err
	}
	return o.describe(), nil
}

// useCache reports whether the run consults the cache.
func (o *options) useCache() bool {
	return o.cache != nil && (o.strip == elf.None || !o.debugImage) && !o.reencode()
}

// cacheKey names the output of a layer (kind "layer", the source digest) or
// a merge (kind "merge", its squashKey) under the options. The platform
// selection and the squash mode do not change a layer's bytes, so they are
// left out and images rewritten with different ones share entries.
func (o *options) cacheKey(kind string, id v1.Hash) string {
	var parts []string
	for _, p := range strings.Fields(o.describe()) {
		if imagewalk.IsOptionText(p) || strings.HasPrefix(p, "squash=") {
			continue
		}
		parts = append(parts, p)
	}
	h := sha256.New()
	fmt.Fprintf(h, "layerslim layer cache 1\n%s %s\n%s\n%s\n", kind, id, strings.Join(parts, " "), o.version)
	return fmt.Sprintf("%x", h.Sum(nil))
}

// cacheKey is t's key in the cache.
func (t *layerTask) cacheKey(o *options) string {
	switch {
	case t.squash != nil && t.lower != nil:
		return o.cacheKey("merge-below-links", t.key)
	case t.squash != nil:
		return o.cacheKey("merge", t.key)
	case t.lower != nil:
		// Computed knowing what lower layers dropped: never under the
		// layer's own key.
		return o.cacheKey("layer-below-links", t.key)
	}
	return o.cacheKey("layer", t.in.Desc.Digest)
}

// lookup finds t's output in the cache. A hit fills t.out (and t.paths);
// owned reports whether this run must Store or Abandon key.
func (r *run) lookup(ctx context.Context, t *layerTask, key string) (hit, owned bool, err error) {
	start := time.Now()
	c, ok, err := r.o.cache.Lookup(ctx, key)
	if err != nil {
		return false, false, fmt.Errorf("layer cache: %w", err)
	}
	if !ok {
		return false, true, nil
	}
	if t.squash == nil && t.collect && r.o.filter != nil && c.Paths == nil {
		// A merge above needs the paths this entry lacks: compute the
		// layer again, and store it with them.
		return false, false, nil
	}
	if c.Layer == nil {
		return false, false, errors.New("layer cache: entry without a layer")
	}
	rep := c.Report
	if t.squash == nil {
		rep.Source = Blob{Digest: t.in.Desc.Digest, Size: t.in.Desc.Size, MediaType: t.in.Desc.MediaType, DiffID: t.in.DiffID, Codec: rep.Source.Codec}
	}
	rep.Cached = true
	rep.Shared = false
	rep.Duration = time.Since(start)
	if t.squash == nil && t.collect && r.o.filter != nil {
		t.paths = make(map[string]bool, len(c.Paths))
		for _, p := range c.Paths {
			t.paths[p] = true
		}
	}
	t.out = layerOut{layer: c.Layer, report: rep}
	r.o.reporter.Report(Event{Kind: LayerStarted, Platform: t.platform, Digest: t.in.Desc.Digest, Size: rep.Source.Size})
	r.o.reporter.Report(Event{Kind: LayerDone, Platform: t.platform, Digest: t.in.Desc.Digest, Layer: &rep})
	return true, false, nil
}

// store records t's output and takes the layer the cache gives back.
// Layers used as they are (Reused) are not stored. owned says this run's
// Lookup of key found nothing, so it must Store or Abandon it.
func (r *run) store(ctx context.Context, t *layerTask, key string, owned bool) error {
	if t.out.report.Action == Reused || t.out.debug != nil {
		if owned {
			r.o.cache.Abandon(key)
		}
		return nil
	}
	c := CachedLayer{Layer: t.out.layer, Report: t.out.report}
	c.Report.Shared = false
	if t.paths != nil {
		c.Paths = make([]string, 0, len(t.paths))
		for p := range t.paths {
			c.Paths = append(c.Paths, p)
		}
		sort.Strings(c.Paths)
	}
	l, err := r.o.cache.Store(ctx, key, c)
	if err != nil {
		return fmt.Errorf("layer cache: %w", err)
	}
	if l != nil {
		t.out.layer = l
	}
	return nil
}
