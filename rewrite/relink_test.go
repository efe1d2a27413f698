package rewrite_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/drop"
	"github.com/layerslim/layerslim/rewrite"
	"github.com/layerslim/layerslim/tarfilter"
)

// Issue 11, item 5: a hardlink whose body lies in a dropped directory
// keeps its content: the body is written at the kept name, the other links
// point there, and verify finds nothing but the dropped paths.
func TestHardlinkToDroppedBodyKeepsContent(t *testing.T) {
	for _, squash := range []rewrite.SquashMode{rewrite.SquashNone, rewrite.SquashAll} {
		t.Run(string(squash), func(t *testing.T) { testHardlinkToDroppedBody(t, squash) })
	}
}

func testHardlinkToDroppedBody(t *testing.T, squash rewrite.SquashMode) {
	base := layerTar(t, "d:usr", "f:usr/base=1")
	pkg := layerTar(t, "d:usr/share/doc/pkg", "f:usr/share/doc/pkg/tool=#!/bin/tool@755",
		"h:usr/share/doc/pkg/README>usr/share/doc/pkg/tool", "d:usr/bin", "h:usr/bin/tool>usr/share/doc/pkg/tool",
		"h:usr/local/bin/tool2>usr/bin/tool", "f:usr/share/doc/pkg/other=x", "h:usr/bin/other>usr/share/doc/pkg/other")
	// A link to a file dropped in a lower layer keeps its content in a
	// merge; without one, its layer does not hold the content, and the
	// link goes with the file.
	topEnts := []string{"f:app=1"}
	if squash != rewrite.SquashNone {
		topEnts = append(topEnts, "h:usr/local/bin/tool3>usr/share/doc/pkg/other")
	}
	top := layerTar(t, topEnts...)
	tars := [][]byte{base, pkg, top}
	src := dockerImage(t, "amd64", gzipLayer(t, base), gzipLayer(t, pkg), gzipLayer(t, top))
	m, err := drop.New(nil, nil, []string{"usr/bin/**"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()), rewrite.WithSquash(squash),
		rewrite.WithFilter(func(rec rewrite.Recorder) tarfilter.Filter { return rewrite.Drop(m, rec) }))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	checkImage(t, res.Image, compress.Zstd)
	layers, _ := res.Image.Layers()
	var out [][]byte
	for _, l := range layers {
		out = append(out, layerBytes(t, l))
	}
	want := mergeFS(t, tars)
	for _, p := range []string{"usr/share/doc/pkg/tool", "usr/share/doc/pkg/README", "usr/share/doc/pkg/other"} {
		delete(want, p)
	}
	got := mergeFS(t, out)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merged filesystem (-want +got):\n%s", diff)
	}
	if got["usr/bin/tool"].Content != "#!/bin/tool" || got["usr/bin/tool"].Mode != 0o755 {
		t.Errorf("usr/bin/tool = %+v", got["usr/bin/tool"])
	}
	checkAppliers(t, out, out)
	rewrite.CheckVerified(t, src, res, m)
	var changes []rewrite.Change
	for _, l := range res.Report.Images[0].Layers {
		changes = append(changes, l.Changes...)
	}
	for _, c := range changes {
		if c.Path == "usr/bin/tool" || c.Path == "usr/local/bin/tool2" || c.Path == "usr/bin/other" || c.Path == "usr/local/bin/tool3" {
			t.Errorf("the report drops %s: %+v", c.Path, c)
		}
	}
	if squash == rewrite.SquashNone {
		if rl := res.Report.Images[0].Layers[1]; rl.Action != rewrite.Rewritten {
			t.Errorf("layer 2 %s", rl.Action)
		}
	}
}
