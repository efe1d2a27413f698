package verify_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/layerslim/layerslim/internal/cli"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/verify"
)

const sample = "../testdata/sample"

// openIndex opens the index tagged tag in the OCI layout dir.
func openIndex(t *testing.T, dir, tag string) v1.ImageIndex {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] == tag {
			idx, err := top.ImageIndex(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return idx
		}
	}
	t.Fatalf("no tag %s in %s", tag, dir)
	return nil
}

// sampleImage returns the image of the sample for platform i and its
// descriptor.
func sampleImage(t *testing.T, i int) (v1.Image, v1.Descriptor) {
	t.Helper()
	idx := openIndex(t, sample, "sample")
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(im.Manifests[i].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img, im.Manifests[i]
}

func noDifferences(t *testing.T, results []*verify.Result, platforms int) {
	t.Helper()
	if len(results) != platforms {
		t.Fatalf("%d results, want %d", len(results), platforms)
	}
	for _, r := range results {
		if len(r.Differences) != 0 || r.Violations != 0 {
			t.Errorf("%s: %d violations: %+v", r.Platform, r.Violations, r.Differences)
		}
		if r.Paths < 50 {
			t.Errorf("%s: only %d paths compared", r.Platform, r.Paths)
		}
	}
}

func TestSampleAgainstItself(t *testing.T) {
	idx := openIndex(t, sample, "sample")
	start := time.Now()
	res, err := verify.Index(context.Background(), idx, idx, verify.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("verify sample against itself: %v", time.Since(start))
	noDifferences(t, res, 2)
	if res[0].Platform != "linux/amd64" || res[1].Platform != "linux/arm64/v8" {
		t.Errorf("platforms %s, %s; want the index's order", res[0].Platform, res[1].Platform)
	}
}

func TestSampleAgainstRecompressed(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	cmd := cli.New()
	var stderr bytes.Buffer
	cmd.SetArgs([]string{"recompress", "oci:" + sample + ":sample", "oci:" + out + ":x", "--progress", "none"})
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&stderr)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("recompress: %v\n%s", err, stderr.String())
	}
	src, dst := openIndex(t, sample, "sample"), openIndex(t, out, "x")
	for _, jobs := range []int{1, 4} {
		start := time.Now()
		res, err := verify.Index(context.Background(), src, dst, verify.Options{TempDir: t.TempDir(), Jobs: jobs})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("verify sample against its zstd recompression, jobs %d: %v", jobs, time.Since(start))
		noDifferences(t, res, 2)
	}
}

func TestIndexPlatforms(t *testing.T) {
	src := openIndex(t, sample, "sample")
	amd64, amdDesc := sampleImage(t, 0)
	arm64, armDesc := sampleImage(t, 1)
	indexOf := func(entries ...mutate.IndexAddendum) v1.ImageIndex {
		return mutate.AppendManifests(empty.Index, entries...)
	}
	entry := func(img v1.Image, d v1.Descriptor) mutate.IndexAddendum {
		return mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: d.Platform}}
	}
	amd64Only := indexOf(entry(amd64, amdDesc))

	t.Run("missing platform", func(t *testing.T) {
		res, err := verify.Index(context.Background(), src, amd64Only, verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 2 || res[0].Violations != 0 || res[1].Violations != 1 {
			t.Fatalf("results %+v", res)
		}
		d := res[1].Differences[0]
		if d.What != verify.WhatPlatform || d.Path != "linux/arm64/v8" || d.Verdict != verify.Violation {
			t.Errorf("difference %+v, want a platform violation for linux/arm64/v8", d)
		}
	})
	t.Run("subset selected", func(t *testing.T) {
		res, err := verify.Index(context.Background(), src, amd64Only, verify.Options{Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}})
		if err != nil {
			t.Fatal(err)
		}
		noDifferences(t, res, 1)
	})
	t.Run("subset recorded in the provenance annotation", func(t *testing.T) {
		annotated := mutate.Annotations(amd64Only, map[string]string{"dev.layerslim.options": "compression=zstd level=3 platforms=linux/amd64"}).(v1.ImageIndex)
		res, err := verify.Index(context.Background(), src, annotated, verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		noDifferences(t, res, 1)
	})
	t.Run("order of DST", func(t *testing.T) {
		res, err := verify.Index(context.Background(), src, indexOf(entry(arm64, armDesc), entry(amd64, amdDesc)), verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		noDifferences(t, res, 2)
		if res[0].Platform != "linux/arm64/v8" {
			t.Errorf("first result is %s, want DST's first platform", res[0].Platform)
		}
	})
	t.Run("images swapped", func(t *testing.T) {
		swapped := indexOf(entry(arm64, amdDesc), entry(amd64, armDesc))
		res, err := verify.Index(context.Background(), src, swapped, verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			var whats []string
			for _, d := range r.Differences {
				whats = append(whats, d.Path+" "+d.What)
			}
			if !strings.Contains(strings.Join(whats, ","), "config:architecture config") || !strings.Contains(strings.Join(whats, ","), "app/hello content") {
				t.Errorf("%s: differences %v, want the architecture and app/hello", r.Platform, whats)
			}
		}
	})
	t.Run("added platform", func(t *testing.T) {
		other := mutate.IndexAddendum{Add: amd64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "riscv64"}}}
		res, err := verify.Index(context.Background(), src, indexOf(entry(amd64, amdDesc), entry(arm64, armDesc), other), verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 3 || res[2].Violations != 1 || res[2].Differences[0].What != verify.WhatPlatform {
			t.Errorf("results %+v, want a platform violation for linux/riscv64", res)
		}
	})
}

func TestImageDiffIDsWrong(t *testing.T) {
	src := imageOf(t, nil, base())
	dst := imageOf(t, nil, base())
	cf, err := dst.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs[0] = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	if dst, err = mutate.ConfigFile(dst, cf); err != nil {
		t.Fatal(err)
	}
	res, err := verify.Image(context.Background(), src, dst, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Violations != 1 || res.Differences[0].Path != "config:rootfs.diff_ids" {
		t.Errorf("differences %+v, want a diff_ids violation", res.Differences)
	}
	// A source that is inconsistent is bad input, a digest mismatch as
	// rewrite and analyze call it (blob.CheckDiffID, the one rule).
	if _, err := verify.Image(context.Background(), dst, src, verify.Options{}); !errors.Is(err, verify.ErrDigestMismatch) || !strings.Contains(err.Error(), "diff_id") {
		t.Errorf("err = %v, want a diff_id error wrapping ErrDigestMismatch", err)
	}
}

func TestCorruptBlob(t *testing.T) {
	dir := testenv.CopyDir(t, sample)
	// Damage the largest blob (an app layer) in the middle.
	biggest := testenv.DamageLargestBlob(t, dir)

	src := openIndex(t, sample, "sample")
	_, err := verify.Index(context.Background(), src, openIndex(t, dir, "sample"), verify.Options{})
	if err == nil {
		t.Fatal("no error for a corrupt layer")
	}
	if digest := "sha256:" + filepath.Base(biggest); !strings.Contains(err.Error(), digest) || !strings.Contains(err.Error(), "output linux/") {
		t.Errorf("error %q does not name the output, platform and layer %s", err, digest)
	}
}

func TestCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	idx := openIndex(t, sample, "sample")
	if _, err := verify.Index(ctx, idx, idx, verify.Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
