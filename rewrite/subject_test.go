package rewrite_test

import (
	"context"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/rewrite"
)

// The debug image's manifest names the slim one as its subject (OCI 1.1
// referrers); the slim image's digest is the same with or without a debug
// image, and it has no subject itself. A gzip rewrite of a Docker schema 2
// source is written as OCI (it carries annotations), so it has one too.
func TestDebugImageSubject(t *testing.T) {
	for _, c := range []struct {
		name string
		spec testenv.ImageSpec
		want bool
	}{
		{"oci", testenv.ImageSpec{Compression: testenv.Zstd}, true},
		{"docker gzip", testenv.ImageSpec{Compression: testenv.Gzip}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := testenv.RunnableImageSpec(t, "amd64")
			spec.Compression, spec.OCI = c.spec.Compression, c.spec.Compression == testenv.Zstd
			src := testenv.Image(t, spec)
			opts := []rewrite.Option{rewrite.WithTempDir(t.TempDir()), rewrite.WithStrip(elf.Unneeded)}
			if c.spec.Compression == testenv.Gzip {
				opts = append(opts, rewrite.WithCompression(compress.Gzip, 0))
			}
			res, err := rewrite.Image(context.Background(), src, append(opts, rewrite.WithDebugImage(true))...)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Close()
			if res.DebugImage == nil {
				t.Fatal("no debug image")
			}
			rewrite.CheckVerified(t, src, res, nil)
			slim, err := partial.Descriptor(res.Image)
			if err != nil {
				t.Fatal(err)
			}
			dm, _ := res.DebugImage.Manifest()
			sm, _ := res.Image.Manifest()
			if sm.Subject != nil {
				t.Errorf("the slim manifest has a subject: %v", sm.Subject)
			}
			if !c.want {
				if dm.Subject != nil {
					t.Errorf("a Docker schema 2 debug manifest has a subject: %v", dm.Subject)
				}
				return
			}
			want := v1.Descriptor{MediaType: slim.MediaType, Digest: slim.Digest, Size: slim.Size}
			if dm.Subject == nil || dm.Subject.Digest != want.Digest || dm.Subject.Size != want.Size || dm.Subject.MediaType != want.MediaType {
				t.Errorf("debug manifest subject = %+v, want %+v", dm.Subject, want)
			}

			plain, err := rewrite.Image(context.Background(), src, append(opts, rewrite.WithDebugImage(false))...)
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Close()
			rewrite.CheckVerified(t, src, plain, nil)
			if d, _ := plain.Image.Digest(); d != slim.Digest {
				t.Errorf("slim digest %s with a debug image, %s without", slim.Digest, d)
			}
		})
	}
}

// A debug index names the slim index; each of its images the slim image of
// its platform.
func TestDebugIndexSubject(t *testing.T) {
	idx := testenv.OCIMultiArchIndex(t, testenv.Image(t, zstdSpec(t, "amd64")), testenv.Image(t, zstdSpec(t, "arm64")))
	res, err := rewrite.Index(context.Background(), idx, rewrite.WithTempDir(t.TempDir()), rewrite.WithStrip(elf.Unneeded), rewrite.WithDebugImage(true))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if res.DebugIndex == nil {
		t.Fatal("no debug index")
	}
	rewrite.CheckVerified(t, idx, res, nil)
	sd, _ := res.Index.Digest()
	dim, _ := res.DebugIndex.IndexManifest()
	if dim.Subject == nil || dim.Subject.Digest != sd {
		t.Errorf("debug index subject = %+v, want the slim index %s", dim.Subject, sd)
	}
	sim, _ := res.Index.IndexManifest()
	for i, d := range dim.Manifests {
		img, err := res.DebugIndex.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := img.Manifest()
		if m.Subject == nil || m.Subject.Digest != sim.Manifests[i].Digest {
			t.Errorf("debug image %d (%s): subject %+v, want %s", i, d.Platform, m.Subject, sim.Manifests[i].Digest)
		}
	}
}

func zstdSpec(t *testing.T, arch string) testenv.ImageSpec {
	s := testenv.RunnableImageSpec(t, arch)
	s.Compression, s.OCI = testenv.Zstd, true
	return s
}
