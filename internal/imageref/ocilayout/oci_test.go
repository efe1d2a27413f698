package ocilayout_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/imageref/ocilayout"
	"github.com/layerslim/layerslim/internal/imageref/reftest"
)

func indexEntries(t *testing.T, dir string) []v1.Descriptor {
	t.Helper()
	ii, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	return im.Manifests
}

func TestOCIImageRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "layout") // does not exist yet
	img := reftest.RandomImage(t, 1)
	want := reftest.MustDigest(t, img)

	got, err := imageref.WriteImage(ctx, reftest.MustParse(t, "oci:"+dir+":v1"), img, imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("WriteImage returned %s, want %s", got, want)
	}

	src, err := imageref.Open(ctx, reftest.MustParse(t, "oci:"+dir+":v1"), imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if src.Image == nil || src.Index != nil {
		t.Fatalf("Open gave image %v, index %v; want an image only", src.Image, src.Index)
	}
	if src.Descriptor.Digest != want || reftest.MustDigest(t, src.Image) != want {
		t.Errorf("reopened digest %s (descriptor %s), want %s", reftest.MustDigest(t, src.Image), src.Descriptor.Digest, want)
	}
	if !src.Descriptor.MediaType.IsImage() || src.Descriptor.Size == 0 {
		t.Errorf("descriptor %+v lacks media type or size", src.Descriptor)
	}
	if err := validate.Image(src.Image); err != nil {
		t.Errorf("validate: %v", err)
	}
	reftest.CheckSameLayers(t, img, src.Image)

	// The only entry is also what the untagged reference and the digest name.
	for _, s := range []string{"oci:" + dir, "oci:" + dir + "@" + want.String()} {
		src, err := imageref.Open(ctx, reftest.MustParse(t, s), imageref.Options{})
		if err != nil {
			t.Fatalf("Open(%s): %v", s, err)
		}
		if reftest.MustDigest(t, src.Image) != want {
			t.Errorf("Open(%s) digest %s, want %s", s, reftest.MustDigest(t, src.Image), want)
		}
	}
}

func TestOCIReplaceSameTag(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir() // exists and is empty
	ref := reftest.MustParse(t, "oci:"+dir+":v1")
	if _, err := imageref.WriteImage(ctx, ref, reftest.RandomImage(t, 1), imageref.Options{}); err != nil {
		t.Fatal(err)
	}
	second := reftest.RandomImage(t, 2)
	h2, err := imageref.WriteImage(ctx, ref, second, imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, "oci:"+dir+":v2"), reftest.RandomImage(t, 3), imageref.Options{}); err != nil {
		t.Fatal(err)
	}
	// Untagged, twice: one unnamed entry.
	untagged := reftest.RandomImage(t, 4)
	for range 2 {
		if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, "oci:"+dir), untagged, imageref.Options{}); err != nil {
			t.Fatal(err)
		}
	}

	names := map[string]int{}
	var v1Digest v1.Hash
	for _, d := range indexEntries(t, dir) {
		rn := d.Annotations[ocilayout.RefNameAnnotation]
		names[rn]++
		if rn == "v1" {
			v1Digest = d.Digest
		}
	}
	if names["v1"] != 1 || names["v2"] != 1 || names[""] != 1 || len(names) != 3 {
		t.Errorf("index.json entries by name: %v, want v1, v2 and one unnamed, once each", names)
	}
	if v1Digest != h2 {
		t.Errorf("v1 names %s, want the second image %s", v1Digest, h2)
	}

	src, err := imageref.Open(ctx, ref, imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if reftest.MustDigest(t, src.Image) != h2 {
		t.Errorf("Open(v1) = %s, want %s", reftest.MustDigest(t, src.Image), h2)
	}

	// Several entries and no tag: ambiguous, and the error lists the tags.
	_, err = imageref.Open(ctx, reftest.MustParse(t, "oci:"+dir), imageref.Options{})
	if !errors.Is(err, imageref.ErrAmbiguous) {
		t.Fatalf("Open without tag: %v, want ErrAmbiguous", err)
	}
	for _, s := range []string{"reading oci:" + dir + ": ", "v1", "v2", "@sha256:"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
	_, err = imageref.Open(ctx, reftest.MustParse(t, "oci:"+dir+":v9"), imageref.Options{})
	if !errors.Is(err, imageref.ErrNotFound) || !strings.Contains(err.Error(), "v1, v2") {
		t.Errorf("Open(v9): %v, want ErrNotFound listing v1, v2", err)
	}
}

func TestOCIFullRefName(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := reftest.RandomImage(t, 1), reftest.RandomImage(t, 2), reftest.RandomImage(t, 3)
	for img, rn := range map[v1.Image]string{a: "example.com/a:1.0", b: "example.com/b:1.0", c: "2.0"} {
		if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{ocilayout.RefNameAnnotation: rn})); err != nil {
			t.Fatal(err)
		}
	}
	// "1.0" is the tag of two full names: ambiguous.
	if _, err := imageref.Open(ctx, reftest.MustParse(t, "oci:"+dir+":1.0"), imageref.Options{}); !errors.Is(err, imageref.ErrAmbiguous) {
		t.Errorf("Open(1.0): %v, want ErrAmbiguous", err)
	}
	if err := lp.RemoveDescriptors(func(d v1.Descriptor) bool { return d.Annotations[ocilayout.RefNameAnnotation] == "example.com/b:1.0" }); err != nil {
		t.Fatal(err)
	}
	src, err := imageref.Open(ctx, reftest.MustParse(t, "oci:"+dir+":1.0"), imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if reftest.MustDigest(t, src.Image) != reftest.MustDigest(t, a) {
		t.Errorf("Open(1.0) did not select example.com/a:1.0")
	}
	if src.Descriptor.Annotations[ocilayout.RefNameAnnotation] != "example.com/a:1.0" {
		t.Errorf("descriptor annotations %v, want the index.json entry's", src.Descriptor.Annotations)
	}
	// An exact name wins over full names that end in the same tag.
	if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, "oci:"+dir+":1.0"), b, imageref.Options{}); err != nil {
		t.Fatal(err)
	}
	src, err = imageref.Open(ctx, reftest.MustParse(t, "oci:"+dir+":1.0"), imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if reftest.MustDigest(t, src.Image) != reftest.MustDigest(t, b) {
		t.Errorf("Open(1.0) did not prefer the entry named exactly 1.0")
	}
}

func TestOCIIndexRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "multi")
	idx := reftest.RandomIndex(t, 7)
	want := reftest.MustDigest(t, idx)
	got, err := imageref.WriteIndex(ctx, reftest.MustParse(t, "oci:"+dir+":all"), idx, imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("WriteIndex returned %s, want %s", got, want)
	}
	src, err := imageref.Open(ctx, reftest.MustParse(t, "oci:"+dir+":all"), imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if src.Index == nil || src.Image != nil {
		t.Fatalf("Open gave image %v, index %v; want an index only", src.Image, src.Index)
	}
	if reftest.MustDigest(t, src.Index) != want || src.Descriptor.Digest != want || !src.Descriptor.MediaType.IsIndex() {
		t.Errorf("reopened index %s (descriptor %+v), want %s", reftest.MustDigest(t, src.Index), src.Descriptor, want)
	}
	if err := validate.Index(src.Index); err != nil {
		t.Errorf("validate: %v", err)
	}

	// A digest reference finds a platform manifest inside the index.
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	child := im.Manifests[1].Digest
	src, err = imageref.Open(ctx, reftest.MustParse(t, "oci:"+dir+"@"+child.String()), imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if src.Image == nil || reftest.MustDigest(t, src.Image) != child || src.Descriptor.Digest != child {
		t.Errorf("Open(@child) = %+v, want the image %s", src, child)
	}
	missing := reftest.MustParse(t, "oci:"+dir+"@"+"sha256:"+strings.Repeat("0123456789abcdef", 4))
	if _, err := imageref.Open(ctx, missing, imageref.Options{}); !errors.Is(err, imageref.ErrNotFound) {
		t.Errorf("Open(missing digest): %v, want ErrNotFound", err)
	}
}

func TestOCIWriteRefusals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "unrelated"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, "oci:"+dir+":v1"), reftest.RandomImage(t, 1), imageref.Options{}); err == nil || !strings.Contains(err.Error(), "nor an OCI image layout") {
		t.Errorf("writing into a non-layout directory: %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); !os.IsNotExist(err) {
		t.Errorf("index.json was created in a non-layout directory")
	}

	out := filepath.Join(t.TempDir(), "out")
	_, err := imageref.WriteImage(ctx, reftest.MustParse(t, "oci:"+out+"@"+"sha256:"+strings.Repeat("0123456789abcdef", 4)), reftest.RandomImage(t, 1), imageref.Options{})
	if err == nil || !strings.Contains(err.Error(), "by digest") {
		t.Errorf("writing to a different digest: %v, want a refusal", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused write created %s", out)
	}
	img := reftest.RandomImage(t, 1)
	if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, "oci:"+out+"@"+reftest.MustDigest(t, img).String()), img, imageref.Options{}); err != nil {
		t.Errorf("writing to its own digest: %v", err)
	}
}
