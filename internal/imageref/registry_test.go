package imageref

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// requestLog records the requests a test registry serves.
type requestLog struct {
	mu   sync.Mutex
	reqs []string // "METHOD path?query"
}

func (l *requestLog) add(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, r.Method+" "+r.URL.RequestURI())
}

func (l *requestLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = nil
}

func (l *requestLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.reqs...)
}

// repoBlobs is a registry.BlobHandler that keeps blobs per repository, as
// real registries do (ggcr's default store shares them between all
// repositories, so a push never needs a mount there).
type repoBlobs struct {
	mu    sync.Mutex
	blobs map[string][]byte // "repo@digest"
}

// key names a blob of a repository. ggcr's registry names the repository of
// an upload "REPO/blobs" (it cuts /uploads/ID off the path), hence the trim.
func key(repo string, h v1.Hash) string {
	return strings.TrimSuffix(repo, "/blobs") + "@" + h.String()
}

func (b *repoBlobs) Get(_ context.Context, repo string, h v1.Hash) (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	blob, ok := b.blobs[key(repo, h)]
	if !ok {
		return nil, registry.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(blob)), nil
}

func (b *repoBlobs) Stat(_ context.Context, repo string, h v1.Hash) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	blob, ok := b.blobs[key(repo, h)]
	if !ok {
		return 0, registry.ErrNotFound
	}
	return int64(len(blob)), nil
}

func (b *repoBlobs) Put(_ context.Context, repo string, h v1.Hash, rc io.ReadCloser) error {
	defer rc.Close()
	blob, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.blobs[key(repo, h)] = blob
	return nil
}

// mount serves "POST /v2/REPO/blobs/uploads/?mount=DIGEST&from=OTHER", which
// ggcr's registry does not implement, by linking the blob into REPO.
func (b *repoBlobs) mount(w http.ResponseWriter, r *http.Request) bool {
	q := r.URL.Query()
	repo, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/v2/"), "/blobs/uploads/")
	if r.Method != http.MethodPost || !ok || q.Get("mount") == "" || q.Get("from") == "" {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	blob, ok := b.blobs[q.Get("from")+"@"+q.Get("mount")]
	if !ok {
		return false
	}
	b.blobs[repo+"@"+q.Get("mount")] = blob
	w.Header().Set("Location", "/v2/"+repo+"/blobs/"+q.Get("mount"))
	w.Header().Set("Docker-Content-Digest", q.Get("mount"))
	w.WriteHeader(http.StatusCreated)
	return true
}

// newRegistry starts ggcr's in-memory registry, with blobs kept per
// repository and cross-repository mounts, and returns its host.
func newRegistry(t *testing.T) (string, *requestLog) {
	t.Helper()
	rl := &requestLog{}
	blobs := &repoBlobs{blobs: map[string][]byte{}}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithBlobHandler(blobs))
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rl.add(r)
		if !blobs.mount(w, r) {
			reg.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(s.Close)
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host, rl
}

func TestRegistryImageRoundTrip(t *testing.T) {
	ctx := context.Background()
	host, _ := newRegistry(t)
	img := randomImage(t, 1)
	want := mustDigest(t, img)
	ref := mustParse(t, host+"/team/app:1.0")

	got, err := WriteImage(ctx, ref, img, Options{Jobs: 2, UserAgent: "layerslim-test"})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("WriteImage returned %s, want %s", got, want)
	}
	src, err := Open(ctx, ref, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if src.Image == nil || src.Index != nil {
		t.Fatalf("Open gave image %v, index %v; want an image only", src.Image, src.Index)
	}
	if mustDigest(t, src.Image) != want || src.Descriptor.Digest != want || !src.Descriptor.MediaType.IsImage() {
		t.Errorf("reopened %s (descriptor %+v), want %s", mustDigest(t, src.Image), src.Descriptor, want)
	}
	if err := validate.Image(src.Image); err != nil {
		t.Errorf("validate: %v", err)
	}

	byDigest := mustParse(t, host+"/team/app@"+want.String())
	src, err = Open(ctx, byDigest, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if mustDigest(t, src.Image) != want {
		t.Errorf("Open by digest = %s, want %s", mustDigest(t, src.Image), want)
	}
	// A digest destination must be the digest written.
	if _, err := WriteImage(ctx, byDigest, randomImage(t, 2), Options{}); err == nil || !strings.Contains(err.Error(), "by digest") {
		t.Errorf("writing another image to %s: %v, want a refusal", byDigest, err)
	}

	_, err = Open(ctx, mustParse(t, host+"/team/app:missing"), Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "reading "+host+"/team/app:missing: ") {
		t.Errorf("Open of a missing tag: %v", err)
	}
}

func TestRegistryIndexRoundTrip(t *testing.T) {
	ctx := context.Background()
	host, _ := newRegistry(t)
	idx := randomIndex(t, 3)
	want := mustDigest(t, idx)
	ref := mustParse(t, host+"/team/multi:1.0")
	got, err := WriteIndex(ctx, ref, idx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("WriteIndex returned %s, want %s", got, want)
	}
	src, err := Open(ctx, ref, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if src.Index == nil || src.Image != nil {
		t.Fatalf("Open gave image %v, index %v; want an index only", src.Image, src.Index)
	}
	if mustDigest(t, src.Index) != want || src.Descriptor.Digest != want || !src.Descriptor.MediaType.IsIndex() {
		t.Errorf("reopened %s (descriptor %+v), want %s", mustDigest(t, src.Index), src.Descriptor, want)
	}
	if err := validate.Index(src.Index); err != nil {
		t.Errorf("validate: %v", err)
	}
}

// Layers read from one repository are mounted, not uploaded again, when
// written to another repository of the same registry.
func TestRegistryCrossRepositoryMount(t *testing.T) {
	ctx := context.Background()
	host, rl := newRegistry(t)
	img := randomImage(t, 4)
	if _, err := WriteImage(ctx, mustParse(t, host+"/team/base:1"), img, Options{}); err != nil {
		t.Fatal(err)
	}
	src, err := Open(ctx, mustParse(t, host+"/team/base:1"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := src.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ls[0].(*remote.MountableLayer); !ok {
		t.Fatalf("layer is %T, want *remote.MountableLayer", ls[0])
	}
	rl.reset()
	if _, err := WriteImage(ctx, mustParse(t, host+"/team/copy:1"), src.Image, Options{}); err != nil {
		t.Fatal(err)
	}
	mounts, uploads := 0, 0
	for _, r := range rl.all() {
		switch {
		case strings.HasPrefix(r, "POST ") && strings.Contains(r, "mount=") && strings.Contains(r, "from=team%2Fbase"):
			mounts++
		case strings.HasPrefix(r, "PUT /v2/team/copy/blobs/uploads/"):
			uploads++
		}
	}
	// Three layers mounted; the config is mounted or uploaded.
	if mounts < 3 || mounts+uploads != 4 {
		t.Errorf("%d mounts and %d uploads, want the 3 layers mounted; requests: %v", mounts, uploads, rl.all())
	}
	copied, err := Open(ctx, mustParse(t, host+"/team/copy:1"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if mustDigest(t, copied.Image) != mustDigest(t, img) {
		t.Errorf("copy has digest %s, want %s", mustDigest(t, copied.Image), mustDigest(t, img))
	}
}

// The progress channel receives updates and is left open, so that one
// channel can serve several writes.
func TestRegistryProgress(t *testing.T) {
	ctx := context.Background()
	host, _ := newRegistry(t)
	updates := make(chan v1.Update, 1<<16)
	o := Options{Progress: updates}
	if _, err := WriteImage(ctx, mustParse(t, host+"/p/a:1"), randomImage(t, 1), o); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteIndex(ctx, mustParse(t, host+"/p/b:1"), randomIndex(t, 2), o); err != nil {
		t.Fatal(err)
	}
	close(updates) // would panic had imageref or ggcr closed it
	n := 0
	for u := range updates {
		if u.Error != nil && !errors.Is(u.Error, io.EOF) {
			t.Errorf("update with error %v", u.Error)
		}
		n++
	}
	if n == 0 {
		t.Error("no progress updates")
	}
}

func TestRegistryCancelled(t *testing.T) {
	host, _ := newRegistry(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := WriteImage(ctx, mustParse(t, host+"/c/a:1"), randomImage(t, 1), Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteImage with a cancelled context: %v", err)
	}
	if _, err := Open(ctx, mustParse(t, host+"/c/a:1"), Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context: %v", err)
	}
}

// Options.Insecure skips TLS verification: a registry with a self-signed
// certificate is refused without it and usable with it.
func TestRegistryInsecureTLS(t *testing.T) {
	ctx := context.Background()
	s := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	s.StartTLS()
	t.Cleanup(s.Close)
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	ref := mustParse(t, u.Host+"/secure/app:1")
	img := randomImage(t, 1)
	if _, err := WriteImage(ctx, ref, img, Options{}); err == nil {
		t.Fatal("pushing to a registry with a self-signed certificate worked without Insecure")
	}
	if _, err := WriteImage(ctx, ref, img, Options{Insecure: true}); err != nil {
		t.Fatalf("with Insecure: %v", err)
	}
	src, err := Open(ctx, ref, Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if mustDigest(t, src.Image) != mustDigest(t, img) {
		t.Errorf("digest %s, want %s", mustDigest(t, src.Image), mustDigest(t, img))
	}
}

func TestTransport(t *testing.T) {
	req, err := http.NewRequest(http.MethodGet, "https://registry.example/v2/", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Without TLS settings, connections are pooled in remote.DefaultTransport.
	got, err := (Options{CertsDirs: []string{}}).transport().(*registryTransport).forRequest(req)
	if err != nil || got != remote.DefaultTransport {
		t.Errorf("secure transport is %v (%v), want remote.DefaultTransport", got, err)
	}
	got, err = (Options{Insecure: true, CertsDirs: []string{}}).transport().(*registryTransport).forRequest(req)
	tr, ok := got.(*http.Transport)
	if err != nil || !ok || tr.TLSClientConfig == nil || !tr.TLSClientConfig.InsecureSkipVerify {
		t.Errorf("insecure transport %+v (%v) does not skip TLS verification", got, err)
	}
	if base := remote.DefaultTransport.(*http.Transport); base.TLSClientConfig != nil && base.TLSClientConfig.InsecureSkipVerify {
		t.Error("remote.DefaultTransport was modified")
	}
}
