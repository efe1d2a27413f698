package run_test

import (
	"errors"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/run"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/manifest"
)

// TestSubjects: the subjects of an index are the images a rewrite
// replaces, chosen by imagewalk.Images: attestations are not among them
// (they were, when no --platform was given), and a nested index is
// refused as the rewrite refuses it.
func TestSubjects(t *testing.T) {
	sourceImage := func(t *testing.T, body string) v1.Image {
		return testenv.GzipImage(t, testenv.Platform(t, "linux/amd64"), testenv.TarLayer(t, []testenv.File{testenv.Reg("etc/app", body)}))
	}
	amd := sourceImage(t, "amd64")
	arm := testenv.GzipImage(t, testenv.Platform(t, "linux/arm64"), testenv.TarLayer(t, []testenv.File{testenv.Reg("etc/app", "arm")}))
	att := sourceImage(t, "attestation")
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest"}}},
	)
	id, _ := idx.Digest()
	src := &imageref.Source{Descriptor: v1.Descriptor{Digest: id}, Index: idx}
	digest := func(img v1.Image) v1.Hash { h, _ := img.Digest(); return h }
	for _, c := range []struct {
		name string
		want []v1.Platform
		out  []v1.Hash
	}{
		{"all", nil, []v1.Hash{id, digest(amd), digest(arm)}},
		{"arm64/v8", []v1.Platform{{OS: "linux", Architecture: "arm64", Variant: "v8"}}, []v1.Hash{id, digest(arm)}},
	} {
		got, err := run.Subjects(src, c.want)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(c.out) {
			t.Fatalf("%s: Subjects = %v, want %v", c.name, got, c.out)
		}
		for i := range got {
			if got[i] != c.out[i] {
				t.Errorf("%s: Subjects[%d] = %v, want %v", c.name, i, got[i], c.out[i])
			}
		}
	}
	nested := mutate.AppendManifests(idx, mutate.IndexAddendum{Add: empty.Index})
	if _, err := run.Subjects(&imageref.Source{Index: nested}, nil); !errors.Is(err, manifest.ErrNestedIndex) {
		t.Errorf("a nested index: %v, want ErrNestedIndex", err)
	}
}
