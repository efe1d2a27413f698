package imageref_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/imageref/reftest"
)

// manyLayers is an image of n tiny layers.
func manyLayers(t *testing.T, n int) v1.Image {
	t.Helper()
	var ls []v1.Layer
	for i := range n {
		ls = append(ls, static.NewLayer([]byte(fmt.Sprintf("layer %d", i)), types.DockerLayer))
	}
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// walkLayers opens ref and asks every layer what a rewrite asks: its
// digest, size, media type, descriptor, and its blob (opened and closed).
func walkLayers(t *testing.T, ref imageref.Ref) {
	src, err := imageref.Open(context.Background(), ref, imageref.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := src.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		l.Digest()
		l.Size()
		l.MediaType()
		if d, ok := l.(interface {
			Descriptor() (*v1.Descriptor, error)
		}); ok {
			d.Descriptor()
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
}

// Reading an image costs in proportion to its layers: each layer used to
// parse the whole manifest again (in ggcr's layout and registry readers),
// so twice the layers cost four times as much. Counted in allocations,
// which, unlike time, do not depend on the machine.
func TestLayerLookupsLinear(t *testing.T) {
	const small, large = 150, 300
	for _, kind := range []string{"oci", "registry"} {
		t.Run(kind, func(t *testing.T) {
			host := ""
			if kind == "registry" {
				host, _ = reftest.NewRegistry(t)
			}
			allocs := map[int]float64{}
			for _, n := range []int{small, large} {
				ref := reftest.MustParse(t, fmt.Sprintf("oci:%s:v1", filepath.Join(t.TempDir(), "l")))
				if kind == "registry" {
					r, err := imageref.Parse(fmt.Sprintf("%s/many:%d", host, n), true)
					if err != nil {
						t.Fatal(err)
					}
					ref = r
				}
				if _, err := imageref.WriteImage(context.Background(), ref, manyLayers(t, n), imageref.Options{Insecure: true}); err != nil {
					t.Fatal(err)
				}
				allocs[n] = testing.AllocsPerRun(1, func() { walkLayers(t, ref) })
			}
			if ratio := allocs[large] / allocs[small]; ratio > 2.8 {
				t.Errorf("%d layers cost %.0f allocations, %d cost %.0f: %.1f times as much for twice the layers, want about 2",
					small, allocs[small], large, allocs[large], ratio)
			}
		})
	}
}
