package rewrite_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/rewrite"
	"github.com/layerslim/layerslim/tarfilter"
)

// pyFatLayers is the shape of the Python image of issue 11: three layers
// above the base each make new directories that the snapshotter marked
// opaque, the first of them the package directory itself.
func pyFatLayers(n int) [][]string {
	pkg := func(name string, files int) []string {
		out := []string{"d:usr/lib/python3/" + name, "o:usr/lib/python3/" + name}
		for i := range files {
			out = append(out, fmt.Sprintf("f:usr/lib/python3/%s/m%d.py=%s %d", name, i, name, i))
		}
		return out
	}
	base := []string{"d:usr", "d:usr/bin", "f:usr/bin/python3=py", "d:usr/lib"}
	l2 := append([]string{"d:usr/lib/python3", "o:usr/lib/python3"}, pkg("numpy", n)...)
	l3 := append([]string{"d:usr/lib/python3"}, pkg("yaml", n)...)
	l4 := append(append([]string{"d:usr/lib/python3"}, pkg("requests", n)...), pkg("jinja2", n)...)
	l4 = append(l4, "d:app", "f:app/main.py=import numpy")
	return [][]string{base, l2, l3, l4}
}

// Every merged layer puts each directory's opaque marker and whiteouts
// before the entries under it, so an in-order applier reads the merge as
// the spec's applier does; the order does not depend on --jobs.
func TestSquashWhiteoutsFirst(t *testing.T) {
	tests := []struct {
		name   string
		layers [][]string
	}{
		{"issue 11: an opaque marker below an upper layer's entry", [][]string{{"f:base=1"}, {"f:a/old=1"}, {"o:a", "f:a/x=x"}, {"f:a/y=y"}}},
		{"the same with the directory in the base", [][]string{{"d:a", "f:a/old=1"}, {"f:a/z=z"}, {"d:a", "o:a", "f:a/x=x"}, {"f:a/y=y", "d:a/sub", "f:a/sub/s=1"}}},
		{"a whiteout aimed at the base, below upper entries", [][]string{{"d:etc", "f:etc/old=1", "f:etc/keep=1"}, {"w:etc/old"}, {"f:etc/new=1"}}},
		{"deleted, then made again as a directory", [][]string{{"d:t", "f:t/old=1"}, {"f:t/new=1"}, {"w:t"}, {"d:t", "f:t/newer=1", "d:t/d", "w:t/d/none"}}},
		{"py-fat: new directories marked opaque in three consecutive layers", pyFatLayers(20)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var digests []v1.Hash
			for _, jobs := range []int{1, 3} {
				src, tars, res, err := squashImage(t, tc.layers, rewrite.WithJobs(jobs))
				if err != nil {
					t.Fatal(err)
				}
				checkImage(t, res.Image, compress.Zstd)
				rewrite.CheckVerified(t, src, res, nil)
				layers, _ := res.Image.Layers()
				var out [][]byte
				for _, l := range layers {
					out = append(out, layerBytes(t, l))
				}
				checkAppliers(t, tars, out)
				d, _ := res.Image.Digest()
				digests = append(digests, d)
				res.Close()
			}
			if digests[0] != digests[1] {
				t.Errorf("digests differ with --jobs: %v", digests)
			}
		})
	}
}

// A source layer whose whiteouts come after entries beside them is written
// with them first (and counts as rewritten); a layer in order is reused.
func TestRewriteWhiteoutsFirst(t *testing.T) {
	base := layerTar(t, "d:a", "f:a/old=1", "f:gone=1")
	late := layerTar(t, "d:a", "f:a/y=y", "o:a", "f:a/x=x", "f:b=1", "w:gone", "d:c", "f:c/1=1", "w:c/2")
	inOrder := layerTar(t, "w:b", "f:top=1")
	tars := [][]byte{base, late, inOrder}
	var ls []v1.Layer
	for _, b := range tars {
		ls = append(ls, gzipLayer(t, b))
	}
	src := dockerImage(t, "amd64", ls...)
	events := &countingReporter{started: map[v1.Hash]int{}}
	res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()), rewrite.WithReporter(events),
		rewrite.WithCompression(compress.Gzip, 6),
		rewrite.WithFilter(func(rewrite.Recorder) tarfilter.Filter { return tarfilter.Keep() }))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	checkImage(t, res.Image, compress.Gzip)
	rewrite.CheckVerified(t, src, res, nil)
	layers, _ := res.Image.Layers()
	var out [][]byte
	for _, l := range layers {
		out = append(out, layerBytes(t, l))
	}
	checkAppliers(t, tars, out)
	var actions []rewrite.Action
	for _, l := range res.Report.Images[0].Layers {
		actions = append(actions, l.Action)
	}
	if diff := cmp.Diff([]rewrite.Action{rewrite.Reused, rewrite.Rewritten, rewrite.Reused}, actions); diff != "" {
		t.Errorf("layer actions (-want +got):\n%s", diff)
	}
	for d, n := range events.started {
		if n != 1 {
			t.Errorf("layer %s started %d times", d, n)
		}
	}
	want := []string{".wh.gone", "a", "a/.wh..wh..opq", "a/y", "a/x", "b", "c", "c/.wh.2", "c/1"}
	if diff := cmp.Diff(want, names(t, out[1])); diff != "" {
		t.Errorf("rewritten layer (-want +got):\n%s", diff)
	}
}
