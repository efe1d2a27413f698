// Package reftest holds the helpers that the tests of internal/imageref
// and of its transport packages share: seeded random images and indexes,
// a reference parser that fails the test, and checks that an image read
// back is consistent and holds the layers written. It is imported by
// tests only (external test packages: it imports imageref).
package reftest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/layerslim/layerslim/internal/imageref"
)

// RandomImage is ggcr's random image of 3 layers of 1 KiB, seeded.
func RandomImage(t testing.TB, seed int64) v1.Image {
	t.Helper()
	img, err := random.Image(1024, 3, random.WithSource(rand.NewSource(seed)))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// RandomIndex is ggcr's random index of 3 images, seeded.
func RandomIndex(t testing.TB, seed int64) v1.ImageIndex {
	t.Helper()
	idx, err := random.Index(512, 2, 3, random.WithSource(rand.NewSource(seed)))
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// MustParse parses s with imageref.Parse, failing the test on error.
func MustParse(t testing.TB, s string) imageref.Ref {
	t.Helper()
	r, err := imageref.Parse(s, false)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// OpenWithin opens ref with imageref.Open and returns its error, failing
// the test if that takes more than a few seconds (a FIFO read blocks for
// ever).
func OpenWithin(t testing.TB, ref string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := imageref.Open(context.Background(), MustParse(t, ref), imageref.Options{})
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("Open(%s) blocked", ref)
		return nil
	}
}

// MustDigest is d's digest, failing the test on error.
func MustDigest(t testing.TB, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// ReadAll reads and closes what open opens, failing the test on error.
func ReadAll(t testing.TB, open func() (io.ReadCloser, error)) []byte {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// LayerTar returns an uncompressed layer: a tar holding one file of n
// pseudo-random bytes.
func LayerTar(t testing.TB, seed int64, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(body)
	if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("file-%d", seed), Mode: 0o644, Size: int64(n), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Sha is the sha256 digest of b.
func Sha(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// CheckSameLayers checks that got has want's layers: same diff_ids and the
// same uncompressed bytes.
func CheckSameLayers(t testing.TB, want, got v1.Image) {
	t.Helper()
	wl, err := want.Layers()
	if err != nil {
		t.Fatal(err)
	}
	gl, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(wl) != len(gl) {
		t.Fatalf("%d layers, want %d", len(gl), len(wl))
	}
	for i := range wl {
		wd, err := wl[i].DiffID()
		if err != nil {
			t.Fatal(err)
		}
		gd, err := gl[i].DiffID()
		if err != nil {
			t.Fatal(err)
		}
		if wd != gd {
			t.Errorf("layer %d: diff_id %s, want %s", i, gd, wd)
		}
		if !bytes.Equal(ReadAll(t, gl[i].Uncompressed), ReadAll(t, wl[i].Uncompressed)) {
			t.Errorf("layer %d: uncompressed bytes differ", i)
		}
	}
}

// CheckConsistent checks what validate.Image checks for gzip layers, for
// layers of any compression (validate.Image gunzips every layer): each
// layer's Digest and Size match its Compressed bytes, its DiffID matches its
// Uncompressed bytes, and the manifest lists the layers' descriptors and
// the config.
func CheckConsistent(t testing.TB, img v1.Image) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != len(layers) {
		t.Fatalf("manifest lists %d layers, image has %d", len(m.Layers), len(layers))
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.Digest != MustConfigName(t, img) {
		t.Errorf("manifest config digest %s, want %s", m.Config.Digest, MustConfigName(t, img))
	}
	for i, l := range layers {
		c := ReadAll(t, l.Compressed)
		u := ReadAll(t, l.Uncompressed)
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		diffID, err := l.DiffID()
		if err != nil {
			t.Fatal(err)
		}
		size, err := l.Size()
		if err != nil {
			t.Fatal(err)
		}
		mt, err := l.MediaType()
		if err != nil {
			t.Fatal(err)
		}
		if d != Sha(c) || size != int64(len(c)) {
			t.Errorf("layer %d: Digest %s Size %d, Compressed() is %s, %d bytes", i, d, size, Sha(c), len(c))
		}
		if diffID != Sha(u) || cfg.RootFS.DiffIDs[i] != diffID {
			t.Errorf("layer %d: DiffID %s, config %s, Uncompressed() is %s", i, diffID, cfg.RootFS.DiffIDs[i], Sha(u))
		}
		if got := m.Layers[i]; got.Digest != d || got.Size != size || got.MediaType != mt {
			t.Errorf("manifest layer %d is %+v, the layer says %s %d %s", i, got, d, size, mt)
		}
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	if MustDigest(t, img) != Sha(raw) {
		t.Errorf("Digest() is not the digest of RawManifest()")
	}
}

// MustConfigName is img's config digest, failing the test on error.
func MustConfigName(t testing.TB, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// RequestLog records the requests a test registry serves.
type RequestLog struct {
	mu   sync.Mutex
	reqs []string // "METHOD path?query"
}

func (l *RequestLog) add(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, r.Method+" "+r.URL.RequestURI())
}

// Reset forgets the requests served so far.
func (l *RequestLog) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = nil
}

// All is the requests served, in order.
func (l *RequestLog) All() []string {
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

// NewRegistry starts ggcr's in-memory registry, with blobs kept per
// repository and cross-repository mounts, and returns its host.
func NewRegistry(t testing.TB) (string, *RequestLog) {
	t.Helper()
	rl := &RequestLog{}
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

// FailingLayer fails half way through its content, with "disk on fire".
type FailingLayer struct{ v1.Layer }

// Compressed yields 10 bytes, then the error.
func (l FailingLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return io.NopCloser(io.MultiReader(io.LimitReader(rc, 10), errReader{})), nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }
