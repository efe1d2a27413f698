package batch

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/rewrite"
)

// memRegistry is ggcr's in-memory registry; it counts blob uploads.
func memRegistry(t *testing.T) (host string, uploads *atomic.Int64) {
	t.Helper()
	uploads = &atomic.Int64{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") {
			uploads.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://"), uploads
}

func repo(t *testing.T, s string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// outputLayer is a zstd layer, as a rewrite's output would be.
func outputLayer(t *testing.T, body string) rewrite.CachedLayer {
	t.Helper()
	img := testenv.ZstdImage(t, testenv.Platform(t, "linux/amd64"), testenv.TarLayer(t, []testenv.File{testenv.Reg("f", body)}))
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	l := ls[0]
	d, _ := l.Digest()
	id, _ := l.DiffID()
	size, _ := l.Size()
	mt, _ := l.MediaType()
	return rewrite.CachedLayer{Layer: l, Report: rewrite.LayerReport{
		Action: rewrite.Recompressed,
		Output: rewrite.Blob{Digest: d, DiffID: id, Size: size, MediaType: mt, Codec: "zstd"},
	}}
}

func mountRef(t *testing.T, l v1.Layer) string {
	t.Helper()
	ml, ok := l.(*remote.MountableLayer)
	if !ok {
		t.Fatalf("layer %T is not mountable", l)
	}
	return ml.Reference.String()
}

func TestMemoOneComputationPerKey(t *testing.T) {
	host, uploads := memRegistry(t)
	m, err := NewMemo(t.TempDir(), "", imageref.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := outputLayer(t, "shared base")
	d, _ := c.Layer.Digest()
	var computed atomic.Int64
	var wg sync.WaitGroup
	refs := make([]string, 8)
	for i := range refs {
		cache := m.For(repo(t, host+"/team/app"+string(rune('a'+i))))
		wg.Go(func() {
			got, ok, err := cache.Lookup(ctx, "key-1")
			if err != nil {
				t.Error(err)
				return
			}
			if !ok {
				computed.Add(1)
				l, err := cache.Store(ctx, "key-1", c)
				if err != nil {
					t.Error(err)
					return
				}
				refs[i] = mountRef(t, l)
				return
			}
			if got.Report.Output.Digest != d {
				t.Errorf("hit with output %s, want %s", got.Report.Output.Digest, d)
			}
			refs[i] = mountRef(t, got.Layer)
		})
	}
	wg.Wait()
	if n := computed.Load(); n != 1 {
		t.Errorf("%d lookups had to compute the layer, want 1", n)
	}
	if n := uploads.Load(); n != 1 {
		t.Errorf("%d uploads, want 1", n)
	}
	for i, r := range refs {
		if r != refs[0] || !strings.HasSuffix(r, "@"+d.String()) {
			t.Errorf("image %d mounts %s, want %s", i, r, refs[0])
		}
	}

	// Another process with the same directory finds the entry, and checks
	// that the blob is still there.
	m2, _ := NewMemo(m.dir, "", imageref.Options{Insecure: true})
	got, ok, err := m2.For(repo(t, host+"/other/repo")).Lookup(ctx, "key-1")
	if err != nil || !ok {
		t.Fatalf("a new memo on the same directory: ok %v, err %v", ok, err)
	}
	if mountRef(t, got.Layer) != refs[0] {
		t.Errorf("mounts %s, want %s", mountRef(t, got.Layer), refs[0])
	}
	// The layer reads back from the registry when a copy is needed.
	rc, err := got.Layer.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := v1.SHA256(rc)
	rc.Close()
	if err != nil || h != d {
		t.Errorf("read back %s (%v), want %s", h, err, d)
	}

	// Another registry gets a copy of the blob rather than a second
	// computation, once: its other repositories mount that copy.
	host2, uploads2 := memRegistry(t)
	for _, r := range []string{"/team/app", "/team/web"} {
		got, ok, err := m2.For(repo(t, host2+r)).Lookup(ctx, "key-1")
		if err != nil || !ok {
			t.Fatalf("another registry: hit %v, err %v", ok, err)
		}
		if want := host2 + "/team/app@" + d.String(); mountRef(t, got.Layer) != want {
			t.Errorf("another registry mounts %s, want %s", mountRef(t, got.Layer), want)
		}
	}
	if n := uploads2.Load(); n != 1 {
		t.Errorf("%d uploads to the other registry, want 1", n)
	}
	// A blob that no registry holds any more: a miss, which the caller owns.
	m3, _ := NewMemo(t.TempDir(), "", imageref.Options{Insecure: true})
	if _, ok, err := m3.For(repo(t, host2+"/team/app")).Lookup(ctx, "key-2"); ok || err != nil {
		t.Errorf("an unknown key: hit %v, err %v", ok, err)
	}
}

func TestMemoEntryWithoutBlobIsAMiss(t *testing.T) {
	host, _ := memRegistry(t)
	dir := t.TempDir()
	m, _ := NewMemo(dir, "", imageref.Options{Insecure: true})
	ctx := context.Background()
	cache := m.For(repo(t, host+"/team/app"))
	c := outputLayer(t, "x")
	if _, err := cache.Store(ctx, "k", c); err != nil {
		t.Fatal(err)
	}
	d, _ := c.Layer.Digest()
	// Point the entry at a blob that the registry does not hold.
	files, _ := filepath.Glob(filepath.Join(dir, "layer-*.json"))
	if len(files) != 1 {
		t.Fatalf("%d entry files, want 1", len(files))
	}
	b, _ := os.ReadFile(files[0])
	b = []byte(strings.ReplaceAll(string(b), d.Hex, strings.Repeat("0", 64)))
	os.WriteFile(files[0], b, 0o644)
	m2, _ := NewMemo(dir, "", imageref.Options{Insecure: true})
	if _, ok, err := m2.For(repo(t, host+"/team/app")).Lookup(ctx, "k"); ok || err != nil {
		t.Errorf("an entry whose blob is gone: hit %v, err %v", ok, err)
	}
}

func TestMemoAbandonHandsTheKeyOn(t *testing.T) {
	host, _ := memRegistry(t)
	m, _ := NewMemo("", "", imageref.Options{Insecure: true})
	cache := m.For(repo(t, host+"/a/b"))
	ctx := context.Background()
	if _, ok, _ := cache.Lookup(ctx, "k"); ok {
		t.Fatal("hit in an empty memo")
	}
	second := make(chan bool)
	go func() {
		_, ok, _ := cache.Lookup(ctx, "k") // waits for the first
		second <- ok
	}()
	cache.Abandon("k")
	if ok := <-second; ok {
		t.Error("after Abandon, the waiting lookup hit")
	}
	cache.Abandon("k")
}

func TestMemoInRegistry(t *testing.T) {
	host, uploads := memRegistry(t)
	ctx := context.Background()
	ro := imageref.Options{Insecure: true}
	cacheRepo := host + "/layerslim-cache"
	a, _ := NewMemo(t.TempDir(), cacheRepo, ro)
	c := outputLayer(t, "from shard a")
	c.Paths = []string{"f"}
	c.Report.Changes = []rewrite.Change{{Path: "usr/share/doc/x", Action: "dropped", Bytes: 3}}
	l, err := a.For(repo(t, host+"/team/api")).Store(ctx, "k", c)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := c.Layer.Digest()
	if got, want := mountRef(t, l), cacheRepo+"@"+d.String(); got != want {
		t.Errorf("stored layer mounts %s, want %s", got, want)
	}
	// The memo manifest is tagged by the key, and holds the blob.
	desc, err := remote.Get(repo(t, cacheRepo).Tag(memoTag("k")))
	if err != nil {
		t.Fatal(err)
	}
	img, _ := desc.Image()
	m, _ := img.Manifest()
	if m.Config.MediaType != MemoConfigType || len(m.Layers) != 1 || m.Layers[0].Digest != d {
		t.Errorf("memo manifest %+v", m)
	}

	// Shard b, another machine: no local entry, the registry's is found.
	before := uploads.Load()
	b, _ := NewMemo(t.TempDir(), cacheRepo, ro)
	got, ok, err := b.For(repo(t, host+"/team/web")).Lookup(ctx, "k")
	if err != nil || !ok {
		t.Fatalf("shard b: hit %v, err %v", ok, err)
	}
	if got.Report.Output.Digest != d || len(got.Report.Changes) != 1 || len(got.Paths) != 1 {
		t.Errorf("shard b read %+v", got)
	}
	if mountRef(t, got.Layer) != cacheRepo+"@"+d.String() {
		t.Errorf("shard b mounts %s", mountRef(t, got.Layer))
	}
	// Both shards storing the same key succeed.
	if _, err := b.For(repo(t, host+"/team/web")).Store(ctx, "k", c); err != nil {
		t.Errorf("a second store of the same key: %v", err)
	}
	if uploads.Load() != before {
		t.Errorf("the second store uploaded %d blobs again", uploads.Load()-before)
	}
	if ok, _ := partial.Exists(got.Layer); !ok {
		t.Error("the blob is not in the cache repository")
	}
}

// A cache repository on another registry than the destination cannot lend
// it blobs: the destination's own repositories hold the memo's blobs.
func TestMemoCacheRepoOnAnotherRegistry(t *testing.T) {
	cacheHost, cacheUploads := memRegistry(t)
	host, _ := memRegistry(t)
	ctx := context.Background()
	m, _ := NewMemo("", cacheHost+"/layerslim-cache", imageref.Options{Insecure: true})
	c := outputLayer(t, "elsewhere")
	d, _ := c.Layer.Digest()
	l, err := m.For(repo(t, host+"/team/api")).Store(ctx, "k", c)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mountRef(t, l), host+"/team/api@"+d.String(); got != want {
		t.Errorf("stored layer mounts %s, want %s", got, want)
	}
	if n := cacheUploads.Load(); n != 0 {
		t.Errorf("%d uploads to the other registry's cache repository", n)
	}
	got, ok, err := m.For(repo(t, host+"/team/web")).Lookup(ctx, "k")
	if err != nil || !ok || mountRef(t, got.Layer) != host+"/team/api@"+d.String() {
		t.Errorf("a second image on the destination registry: hit %v, err %v", ok, err)
	}
}

func TestMemoWriteRefusedFallsBackToThePush(t *testing.T) {
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var refused atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/cache/manifests/") {
			// What distribution 2.8 answers while another process
			// commits the same blobs.
			refused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}`)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	host := strings.TrimPrefix(s.URL, "http://")
	m, err := NewMemo(t.TempDir(), host+"/cache", imageref.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	var warnings []string
	m.Warn = func(msg string) { warnings = append(warnings, msg) }
	c := outputLayer(t, "refused")
	view := m.For(repo(t, host+"/app"))
	ctx := context.Background()
	if _, ok, err := view.Lookup(ctx, "k1"); ok || err != nil {
		t.Fatalf("Lookup of a new key = %v, %v", ok, err)
	}
	got, err := view.Store(ctx, "k1", c)
	if err != nil {
		t.Fatalf("Store failed although the memo is only an optimisation: %v", err)
	}
	if got != c.Layer {
		t.Errorf("Store returned %T, want the computed layer itself", got)
	}
	if n := refused.Load(); n != publishAttempts {
		t.Errorf("memo manifest written %d times, want %d", n, publishAttempts)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "DIGEST_INVALID") {
		t.Errorf("warnings = %q, want one naming the registry's answer", warnings)
	}
	// Nothing was recorded: the next lookup computes the layer again.
	if _, ok, err := view.Lookup(ctx, "k1"); ok || err != nil {
		t.Errorf("Lookup after a refused write = %v, %v; want a miss", ok, err)
	}
	view.Abandon("k1")
}
