package imagewalk_test

import (
	"errors"
	"fmt"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/internal/imagewalk"
	"github.com/layerslim/layerslim/manifest"
)

func hash(i int) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%064x", i)}
}

func entry(i int, mt types.MediaType, p string, ann map[string]string) v1.Descriptor {
	d := v1.Descriptor{MediaType: mt, Digest: hash(i), Size: 100, Annotations: ann}
	if p != "" {
		pp := plat(p)
		d.Platform = &pp
	}
	return d
}

var attAnn = map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": hash(1).String()}

// TestIsAttestation pins the one attestation rule. The old copies: rewrite
// and verify took the annotation or unknown/unknown; analyze the
// annotation or the os "unknown"; the inline tests of recompress, debug
// extract and debugserve only the os "unknown".
func TestIsAttestation(t *testing.T) {
	for _, c := range []struct {
		name string
		d    v1.Descriptor
		want bool
		// the old answers, where they disagreed
		rewriteVerify, analyze, inline bool
		disagreed                      bool
	}{
		{name: "image", d: entry(1, types.OCIManifestSchema1, "linux/amd64", nil)},
		{name: "image without platform", d: entry(1, types.OCIManifestSchema1, "", nil)},
		{name: "buildkit attestation", d: entry(2, types.OCIManifestSchema1, "unknown/unknown", attAnn), want: true},
		{name: "unknown/unknown, no annotation", d: entry(2, types.OCIManifestSchema1, "unknown/unknown", nil), want: true},
		{name: "annotation, real platform", d: entry(2, types.OCIManifestSchema1, "linux/amd64", attAnn), want: true,
			rewriteVerify: true, analyze: true, disagreed: true},
		{name: "annotation, no platform", d: entry(2, types.OCIManifestSchema1, "", attAnn), want: true,
			rewriteVerify: true, analyze: true, disagreed: true},
		{name: "os unknown, a real arch", d: entry(2, types.OCIManifestSchema1, "unknown/amd64", nil), want: true,
			analyze: true, inline: true, disagreed: true},
		{name: "other reference type", d: entry(2, types.OCIManifestSchema1, "linux/amd64", map[string]string{"vnd.docker.reference.type": "other"})},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := imagewalk.IsAttestation(c.d); got != c.want {
				t.Errorf("IsAttestation = %v, want %v", got, c.want)
			}
			if got := imagewalk.IsImage(c.d); got != !c.want {
				t.Errorf("IsImage = %v", got)
			}
			if !c.disagreed {
				return
			}
			d := c.d
			ann := d.Annotations["vnd.docker.reference.type"] == "attestation-manifest"
			if got := ann || d.Platform != nil && d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown"; got != c.rewriteVerify {
				t.Errorf("old rewrite/verify rule = %v, table says %v", got, c.rewriteVerify)
			}
			if got := ann || d.Platform != nil && d.Platform.OS == "unknown"; got != c.analyze {
				t.Errorf("old analyze rule = %v, table says %v", got, c.analyze)
			}
			if got := d.Platform != nil && d.Platform.OS == "unknown"; got != c.inline {
				t.Errorf("old inline rule = %v, table says %v", got, c.inline)
			}
		})
	}
}

func TestChildren(t *testing.T) {
	im := &v1.IndexManifest{Manifests: []v1.Descriptor{
		entry(0, types.OCIManifestSchema1, "linux/amd64", nil),
		entry(1, types.DockerManifestSchema2, "linux/arm64", nil),
		entry(2, types.OCIManifestSchema1, "unknown/unknown", attAnn),
		entry(3, types.OCIManifestSchema1, "", nil), // its config decides
		entry(4, "application/vnd.example.artifact", "", nil),
		entry(5, types.OCIManifestSchema1, "linux/arm64/v8", attAnn), // annotated attestation
	}}
	positions := func(cs []imagewalk.Child) string {
		s := ""
		for _, c := range cs {
			if c.Image {
				s += fmt.Sprintf("%d ", c.Position)
			} else {
				s += fmt.Sprintf("%d(keep) ", c.Position)
			}
		}
		return s
	}
	for _, c := range []struct {
		name   string
		want   []v1.Platform
		others bool
		out    string
	}{
		{name: "all images", out: "0 1 3 "},
		{name: "all, others kept", others: true, out: "0 1 2(keep) 3 4(keep) 5(keep) "},
		{name: "arm64", want: []v1.Platform{plat("linux/arm64")}, out: "1 3 "},
		{name: "arm64/v8 selects arm64", want: []v1.Platform{plat("linux/arm64/v8")}, out: "1 3 "},
		{name: "a selection drops the others", want: []v1.Platform{plat("linux/amd64")}, others: true, out: "0 3 "},
		{name: "nothing selected", want: []v1.Platform{plat("linux/s390x")}, out: "3 "},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs, err := imagewalk.Children(im, c.want, c.others)
			if err != nil {
				t.Fatal(err)
			}
			if got := positions(cs); got != c.out {
				t.Errorf("Children = %q, want %q", got, c.out)
			}
			ds, err := imagewalk.Images(im, c.want)
			if err != nil {
				t.Fatal(err)
			}
			for i, d := range ds {
				if !imagewalk.IsImage(d) || (i < len(cs) && cs[i].Image && cs[i].Desc.Digest != d.Digest && !c.others) {
					t.Errorf("Images[%d] = %v", i, d.Digest)
				}
			}
		})
	}
	nested := &v1.IndexManifest{Manifests: append(im.Manifests, entry(9, types.OCIImageIndex, "", nil))}
	if _, err := imagewalk.Children(nested, nil, true); !errors.Is(err, manifest.ErrNestedIndex) {
		t.Errorf("a nested index: %v, want ErrNestedIndex", err)
	}
	if _, err := imagewalk.Images(nested, nil); !errors.Is(err, manifest.ErrNestedIndex) {
		t.Errorf("Images of a nested index: %v, want ErrNestedIndex", err)
	}
}
