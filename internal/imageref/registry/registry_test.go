package registry_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/imageref/reftest"
)

func TestRegistryImageRoundTrip(t *testing.T) {
	ctx := context.Background()
	host, _ := reftest.NewRegistry(t)
	img := reftest.RandomImage(t, 1)
	want := reftest.MustDigest(t, img)
	ref := reftest.MustParse(t, host+"/team/app:1.0")

	got, err := imageref.WriteImage(ctx, ref, img, imageref.Options{Jobs: 2, UserAgent: "layerslim-test"})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("WriteImage returned %s, want %s", got, want)
	}
	src, err := imageref.Open(ctx, ref, imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if src.Image == nil || src.Index != nil {
		t.Fatalf("Open gave image %v, index %v; want an image only", src.Image, src.Index)
	}
	if reftest.MustDigest(t, src.Image) != want || src.Descriptor.Digest != want || !src.Descriptor.MediaType.IsImage() {
		t.Errorf("reopened %s (descriptor %+v), want %s", reftest.MustDigest(t, src.Image), src.Descriptor, want)
	}
	if err := validate.Image(src.Image); err != nil {
		t.Errorf("validate: %v", err)
	}

	byDigest := reftest.MustParse(t, host+"/team/app@"+want.String())
	src, err = imageref.Open(ctx, byDigest, imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if reftest.MustDigest(t, src.Image) != want {
		t.Errorf("Open by digest = %s, want %s", reftest.MustDigest(t, src.Image), want)
	}
	// A digest destination must be the digest written.
	if _, err := imageref.WriteImage(ctx, byDigest, reftest.RandomImage(t, 2), imageref.Options{}); err == nil || !strings.Contains(err.Error(), "by digest") {
		t.Errorf("writing another image to %s: %v, want a refusal", byDigest, err)
	}

	_, err = imageref.Open(ctx, reftest.MustParse(t, host+"/team/app:missing"), imageref.Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "reading "+host+"/team/app:missing: ") {
		t.Errorf("Open of a missing tag: %v", err)
	}
}

func TestRegistryIndexRoundTrip(t *testing.T) {
	ctx := context.Background()
	host, _ := reftest.NewRegistry(t)
	idx := reftest.RandomIndex(t, 3)
	want := reftest.MustDigest(t, idx)
	ref := reftest.MustParse(t, host+"/team/multi:1.0")
	got, err := imageref.WriteIndex(ctx, ref, idx, imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("WriteIndex returned %s, want %s", got, want)
	}
	src, err := imageref.Open(ctx, ref, imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if src.Index == nil || src.Image != nil {
		t.Fatalf("Open gave image %v, index %v; want an index only", src.Image, src.Index)
	}
	if reftest.MustDigest(t, src.Index) != want || src.Descriptor.Digest != want || !src.Descriptor.MediaType.IsIndex() {
		t.Errorf("reopened %s (descriptor %+v), want %s", reftest.MustDigest(t, src.Index), src.Descriptor, want)
	}
	if err := validate.Index(src.Index); err != nil {
		t.Errorf("validate: %v", err)
	}
}

// Layers read from one repository are mounted, not uploaded again, when
// written to another repository of the same registry.
func TestRegistryCrossRepositoryMount(t *testing.T) {
	ctx := context.Background()
	host, rl := reftest.NewRegistry(t)
	img := reftest.RandomImage(t, 4)
	if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, host+"/team/base:1"), img, imageref.Options{}); err != nil {
		t.Fatal(err)
	}
	src, err := imageref.Open(ctx, reftest.MustParse(t, host+"/team/base:1"), imageref.Options{})
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
	rl.Reset()
	if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, host+"/team/copy:1"), src.Image, imageref.Options{}); err != nil {
		t.Fatal(err)
	}
	mounts, uploads := 0, 0
	for _, r := range rl.All() {
		switch {
		case strings.HasPrefix(r, "POST ") && strings.Contains(r, "mount=") && strings.Contains(r, "from=team%2Fbase"):
			mounts++
		case strings.HasPrefix(r, "PUT /v2/team/copy/blobs/uploads/"):
			uploads++
		}
	}
	// Three layers mounted; the config is mounted or uploaded.
	if mounts < 3 || mounts+uploads != 4 {
		t.Errorf("%d mounts and %d uploads, want the 3 layers mounted; requests: %v", mounts, uploads, rl.All())
	}
	copied, err := imageref.Open(ctx, reftest.MustParse(t, host+"/team/copy:1"), imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if reftest.MustDigest(t, copied.Image) != reftest.MustDigest(t, img) {
		t.Errorf("copy has digest %s, want %s", reftest.MustDigest(t, copied.Image), reftest.MustDigest(t, img))
	}
}

// The progress channel receives updates and is left open, so that one
// channel can serve several writes.
func TestRegistryProgress(t *testing.T) {
	ctx := context.Background()
	host, _ := reftest.NewRegistry(t)
	updates := make(chan v1.Update, 1<<16)
	o := imageref.Options{Progress: updates}
	if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, host+"/p/a:1"), reftest.RandomImage(t, 1), o); err != nil {
		t.Fatal(err)
	}
	if _, err := imageref.WriteIndex(ctx, reftest.MustParse(t, host+"/p/b:1"), reftest.RandomIndex(t, 2), o); err != nil {
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
	host, _ := reftest.NewRegistry(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, host+"/c/a:1"), reftest.RandomImage(t, 1), imageref.Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteImage with a cancelled context: %v", err)
	}
	if _, err := imageref.Open(ctx, reftest.MustParse(t, host+"/c/a:1"), imageref.Options{}); !errors.Is(err, context.Canceled) {
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
	ref := reftest.MustParse(t, u.Host+"/secure/app:1")
	img := reftest.RandomImage(t, 1)
	if _, err := imageref.WriteImage(ctx, ref, img, imageref.Options{}); err == nil {
		t.Fatal("pushing to a registry with a self-signed certificate worked without Insecure")
	}
	if _, err := imageref.WriteImage(ctx, ref, img, imageref.Options{Insecure: true}); err != nil {
		t.Fatalf("with Insecure: %v", err)
	}
	src, err := imageref.Open(ctx, ref, imageref.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if reftest.MustDigest(t, src.Image) != reftest.MustDigest(t, img) {
		t.Errorf("digest %s, want %s", reftest.MustDigest(t, src.Image), reftest.MustDigest(t, img))
	}
}
