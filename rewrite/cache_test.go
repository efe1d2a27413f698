package rewrite_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/rewrite"
	"github.com/layerslim/layerslim/tarfilter"
)

// memCache is a LayerCache in memory with singleflight Lookups, counting
// what it is asked.
type memCache struct {
	mu       sync.Mutex
	entries  map[string]rewrite.CachedLayer
	inflight map[string]chan struct{}
	lookups  atomic.Int32
	hits     atomic.Int32
	stores   map[string]int
}

func newMemCache() *memCache {
	return &memCache{entries: map[string]rewrite.CachedLayer{}, inflight: map[string]chan struct{}{}, stores: map[string]int{}}
}

func (c *memCache) Lookup(ctx context.Context, key string) (rewrite.CachedLayer, bool, error) {
	c.lookups.Add(1)
	for {
		c.mu.Lock()
		if e, ok := c.entries[key]; ok {
			c.mu.Unlock()
			c.hits.Add(1)
			return e, true, nil
		}
		wait, busy := c.inflight[key]
		if !busy {
			c.inflight[key] = make(chan struct{})
			c.mu.Unlock()
			return rewrite.CachedLayer{}, false, nil
		}
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return rewrite.CachedLayer{}, false, ctx.Err()
		}
	}
}

func (c *memCache) Store(_ context.Context, key string, e rewrite.CachedLayer) (v1.Layer, error) {
	// Keep the bytes: the run's temporary files go with its Result.
	rc, err := e.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	blob, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	e.Layer = &bytesLayer{Layer: e.Layer, blob: blob}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[key] = e
	c.stores[key]++
	c.release(key)
	return e.Layer, nil
}

func (c *memCache) Abandon(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.release(key)
}

func (c *memCache) release(key string) {
	if ch, ok := c.inflight[key]; ok {
		close(ch)
		delete(c.inflight, key)
	}
}

// bytesLayer serves a layer's compressed bytes from memory.
type bytesLayer struct {
	v1.Layer
	blob []byte
}

func (b *bytesLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(b.blob)), nil
}

// unreadable fails every read: a cache hit must not touch the source.
type unreadable struct{ v1.Layer }

func (u unreadable) Compressed() (io.ReadCloser, error) {
	return nil, errors.New("the source layer was read")
}

func (u unreadable) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("the source layer was read")
}

func keepAll(rewrite.Recorder) tarfilter.Filter { return tarfilter.Keep() }

// baseIsFirst makes the first layer the base of a merge.
func baseIsFirst(_ context.Context, _ v1.Platform, _ *v1.Manifest, cf *v1.ConfigFile) ([]v1.Hash, string, error) {
	return cf.RootFS.DiffIDs[:1], "test", nil
}

func TestLayerCacheSharesLayersAcrossImages(t *testing.T) {
	ctx := context.Background()
	base := gzipLayer(t, tarOf(t, 40, 40))
	imgA := dockerImage(t, "amd64", base, gzipLayer(t, tarOf(t, 41, 5)))
	imgB := dockerImage(t, "amd64", base, gzipLayer(t, tarOf(t, 42, 5)))
	cache := newMemCache()
	opts := func(extra ...rewrite.Option) []rewrite.Option {
		return append([]rewrite.Option{rewrite.WithTempDir(t.TempDir()), rewrite.WithFilter(keepAll)}, extra...)
	}

	plainB, err := rewrite.Image(ctx, imgB, opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer plainB.Close()
	rewrite.CheckVerified(t, imgB, plainB, nil)

	resA, err := rewrite.Image(ctx, imgA, opts(rewrite.WithLayerCache(cache))...)
	if err != nil {
		t.Fatal(err)
	}
	defer resA.Close()
	rewrite.CheckVerified(t, imgA, resA, nil)
	if n := cache.hits.Load(); n != 0 {
		t.Fatalf("first image: %d cache hits, want 0", n)
	}

	// B's base is served from the cache: its source blob is never read.
	layers, _ := imgB.Layers()
	broken := &brokenImage{Image: imgB, layers: []v1.Layer{unreadable{layers[0]}, layers[1]}}
	resB, err := rewrite.Image(ctx, broken, opts(rewrite.WithLayerCache(cache))...)
	if err != nil {
		t.Fatalf("second image: %v", err)
	}
	defer resB.Close()
	if n := cache.hits.Load(); n != 1 {
		t.Errorf("second image: %d cache hits, want 1 (the shared base)", n)
	}
	lrs := resB.Report.Images[0].Layers
	if !lrs[0].Cached || lrs[1].Cached {
		t.Errorf("cached flags = %v, %v; want the base only", lrs[0].Cached, lrs[1].Cached)
	}
	got, _ := resB.Image.Digest()
	want, _ := plainB.Image.Digest()
	if got != want {
		t.Errorf("digest with a cache hit = %s, without a cache = %s", got, want)
	}
	checkImage(t, resB.Image, "zstd")
	rewrite.CheckVerified(t, imgB, resB, nil)

	// Other options are other keys.
	resC, err := rewrite.Image(ctx, imgB, opts(rewrite.WithLayerCache(cache), rewrite.WithCompression("gzip", 0))...)
	if err != nil {
		t.Fatal(err)
	}
	defer resC.Close()
	rewrite.CheckVerified(t, imgB, resC, nil)
	if n := cache.hits.Load(); n != 1 {
		t.Errorf("gzip run hit entries of the zstd runs: %d hits", n)
	}
}

func TestLayerCacheMergeMatchesUncached(t *testing.T) {
	ctx := context.Background()
	base := gzipLayer(t, layerTar(t, "d:etc", "f:etc/a=1", "f:etc/b=2", "f:etc/c=3"))
	up1 := gzipLayer(t, layerTar(t, "f:etc/a=changed", "w:etc/b", "f:app=bin"))
	up2 := gzipLayer(t, layerTar(t, "w:app", "f:app2=bin2", "w:etc/c"))
	src := dockerImage(t, "amd64", base, up1, up2)
	squash := []rewrite.Option{rewrite.WithSquash(rewrite.SquashAuto), rewrite.WithBaseFinder(baseIsFirst), rewrite.WithFilter(keepAll)}

	plain, err := rewrite.Image(ctx, src, append(squash, rewrite.WithTempDir(t.TempDir()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	rewrite.CheckVerified(t, src, plain, nil)
	want, _ := plain.Image.Digest()

	cache := newMemCache()
	// A run without a merge stores the base without its paths.
	first, err := rewrite.Image(ctx, src, rewrite.WithTempDir(t.TempDir()), rewrite.WithFilter(keepAll), rewrite.WithLayerCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	rewrite.CheckVerified(t, src, first, nil)
	first.Close()
	for i := range 2 {
		res, err := rewrite.Image(ctx, src, append(squash, rewrite.WithTempDir(t.TempDir()), rewrite.WithLayerCache(cache))...)
		if err != nil {
			t.Fatal(err)
		}
		rewrite.CheckVerified(t, src, res, nil)
		got, _ := res.Image.Digest()
		if got != want {
			t.Errorf("run %d: merged image with a cache is %s, without %s", i, got, want)
		}
		lrs := res.Report.Images[0].Layers
		if i == 1 && (!lrs[0].Cached || !lrs[1].Cached) {
			t.Errorf("run %d: base cached %v, merge cached %v; want both", i, lrs[0].Cached, lrs[1].Cached)
		}
		res.Close()
	}

	// Another image on the same base: the base comes from the cache with
	// its paths, and the new merge keeps the whiteouts aimed at them.
	other := dockerImage(t, "amd64", base, gzipLayer(t, layerTar(t, "w:etc/a", "f:x=1")), gzipLayer(t, layerTar(t, "w:etc/c", "f:y=2")))
	plainOther, err := rewrite.Image(ctx, other, append(squash, rewrite.WithTempDir(t.TempDir()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer plainOther.Close()
	rewrite.CheckVerified(t, other, plainOther, nil)
	res, err := rewrite.Image(ctx, other, append(squash, rewrite.WithTempDir(t.TempDir()), rewrite.WithLayerCache(cache))...)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	rewrite.CheckVerified(t, other, res, nil)
	if lrs := res.Report.Images[0].Layers; !lrs[0].Cached || lrs[1].Cached {
		t.Errorf("other image: base cached %v, merge cached %v; want the base only", lrs[0].Cached, lrs[1].Cached)
	}
	got, _ := res.Image.Digest()
	if want, _ := plainOther.Image.Digest(); got != want {
		t.Errorf("other image: merged with a cached base is %s, without a cache %s", got, want)
	}
}

func TestLayerCacheOneComputationForConcurrentRuns(t *testing.T) {
	ctx := context.Background()
	base := gzipLayer(t, tarOf(t, 50, 60))
	cache := newMemCache()
	var wg sync.WaitGroup
	errs := make([]error, 6)
	imgs := make([]v1.Image, len(errs))
	results := make([]*rewrite.Result, len(errs))
	for i := range errs {
		imgs[i] = dockerImage(t, "amd64", base, gzipLayer(t, tarOf(t, uint64(60+i), 3)))
		wg.Go(func() {
			results[i], errs[i] = rewrite.Image(ctx, imgs[i], rewrite.WithTempDir(t.TempDir()), rewrite.WithFilter(keepAll), rewrite.WithLayerCache(cache))
		})
	}
	wg.Wait()
	for i, res := range results {
		if res != nil {
			rewrite.CheckVerified(t, imgs[i], res, nil)
			res.Close()
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for k, n := range cache.stores {
		if n != 1 {
			t.Errorf("key %s stored %d times", k[:12], n)
		}
	}
	if len(cache.stores) != 7 {
		t.Errorf("%d distinct entries, want 7 (one base, six app layers)", len(cache.stores))
	}
}

func TestLayerCacheBypassedForDebugImages(t *testing.T) {
	ctx := context.Background()
	src := dockerImage(t, "amd64", gzipLayer(t, tarOf(t, 70, 5)))
	cache := newMemCache()
	for range 2 {
		res, err := rewrite.Image(ctx, src, rewrite.WithTempDir(t.TempDir()), rewrite.WithLayerCache(cache),
			rewrite.WithStrip(elf.Debug), rewrite.WithDebugImage(true))
		if err != nil {
			t.Fatal(err)
		}
		rewrite.CheckVerified(t, src, res, nil)
		res.Close()
	}
	if n := cache.lookups.Load(); n != 0 {
		t.Errorf("a debug-image run looked the cache up %d times", n)
	}
}

func TestDescribeMatchesAnnotation(t *testing.T) {
	src := dockerImage(t, "amd64", gzipLayer(t, tarOf(t, 80, 3)))
	opts := []rewrite.Option{rewrite.WithTempDir(t.TempDir()), rewrite.WithCompression("gzip", 9), rewrite.WithOptionText("drop=docs")}
	res, err := rewrite.Image(context.Background(), src, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	rewrite.CheckVerified(t, src, res, nil)
	m, _ := res.Image.Manifest()
	want, err := rewrite.Describe(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Annotations["dev.layerslim.options"]; got != want {
		t.Errorf("annotation %q, Describe %q", got, want)
	}
}
