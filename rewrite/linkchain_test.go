package rewrite_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/drop"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/rewrite"
	"github.com/layerslim/layerslim/tarfilter"
)

// The chain of hardlinks across layers: layer 1 holds a file the default
// rules drop, layer 2 a link a to it (dropped with it), layer 3 a link b
// to a. Layers are rewritten in parallel, each with its own filter, so
// layer 3 learns only once layer 2 is done that b would dangle.
type chainLayers struct{ docs, linkA, fileA, linkB []byte }

func newChainLayers(t *testing.T) chainLayers {
	return chainLayers{
		docs: testenv.TarLayer(t, []testenv.File{
			testenv.Dir("usr"), testenv.Dir("usr/bin"), testenv.Dir("usr/share"),
			testenv.Dir("usr/share/doc"), testenv.Dir("usr/share/doc/pkg"),
			testenv.Reg("usr/share/doc/pkg/README", "read me"),
		}),
		linkA: testenv.TarLayer(t, []testenv.File{testenv.Hardlink("usr/bin/a", "usr/share/doc/pkg/README")}),
		// fileA holds a as a file of its own: a link to it must stay.
		fileA: testenv.TarLayer(t, []testenv.File{testenv.Reg("usr/bin/a", "program a")}),
		linkB: testenv.TarLayer(t, []testenv.File{
			testenv.Hardlink("usr/bin/b", "usr/bin/a"),
			testenv.Hardlink("usr/bin/c", "usr/bin/b"),
			testenv.Reg("usr/bin/kept", "kept"),
		}),
	}
}

func chainRewrite(t *testing.T, src any, jobs int, cache rewrite.LayerCache) *rewrite.Result {
	t.Helper()
	m, err := drop.New(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := []rewrite.Option{
		rewrite.WithTempDir(t.TempDir()), rewrite.WithJobs(jobs),
		rewrite.WithFilter(func(rec rewrite.Recorder) tarfilter.Filter { return rewrite.Drop(m, rec) }),
		rewrite.WithOptionText(m.String()),
	}
	if cache != nil {
		opts = append(opts, rewrite.WithLayerCache(cache))
	}
	var res *rewrite.Result
	switch s := src.(type) {
	case v1.Image:
		res, err = rewrite.Image(context.Background(), s, opts...)
	case v1.ImageIndex:
		res, err = rewrite.Index(context.Background(), s, opts...)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Close() })
	rewrite.CheckVerified(t, src, res, m)
	return res
}

// checkTree fails t unless both appliers read img's layers as want: the
// merged filesystem of src without the paths gone.
func checkTree(t *testing.T, src [][]byte, img v1.Image, gone ...string) {
	t.Helper()
	want := testenv.SpecApply(t, src...)
	for _, p := range gone {
		if _, ok := want[p]; !ok {
			t.Fatalf("%s is not in the source", p)
		}
		delete(want, p)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, l := range layers {
		out = append(out, layerBytes(t, l))
	}
	if diff := cmp.Diff(want, testenv.SpecApply(t, out...)); diff != "" {
		t.Errorf("merged filesystem (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, testenv.NaiveApply(t, out...)); diff != "" {
		t.Errorf("merged filesystem, applied in tar order (-want +got):\n%s", diff)
	}
}

func TestHardlinkChainAcrossLayers(t *testing.T) {
	c := newChainLayers(t)
	layers := [][]byte{c.docs, c.linkA, c.linkB}
	src := testenv.GzipImage(t, v1.Platform{OS: "linux", Architecture: "amd64"}, layers...)
	var digests []v1.Hash
	for _, jobs := range []int{1, 4} {
		res := chainRewrite(t, src, jobs, nil)
		checkTree(t, layers, res.Image, "usr/share/doc/pkg/README", "usr/bin/a", "usr/bin/b", "usr/bin/c")
		ir := res.Report.Images[0]
		var got []rewrite.Change
		for _, ch := range ir.Layers[2].Changes {
			got = append(got, rewrite.Change{Path: ch.Path, Action: ch.Action, Reason: ch.Reason})
		}
		want := []rewrite.Change{
			{Path: "usr/bin/b", Action: "dropped", Reason: "link to dropped usr/bin/a"},
			{Path: "usr/bin/c", Action: "dropped", Reason: "link to dropped usr/bin/b"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("layer 3 changes (-want +got):\n%s", diff)
		}
		d, err := res.Image.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("output differs with --jobs 1 and 4: %v", digests)
	}
}

// A layer shared by two platforms whose lower layers differ: on one b's
// target a is a link dropped with its target, on the other a file of its
// own. Each gets its own output of the shared layer, and the layer cache
// keeps the plain output under the layer's key.
func TestHardlinkChainSharedLayer(t *testing.T) {
	c := newChainLayers(t)
	dropped := [][]byte{c.docs, c.linkA, c.linkB}
	kept := [][]byte{c.docs, c.fileA, c.linkB}
	a := testenv.GzipImage(t, v1.Platform{OS: "linux", Architecture: "amd64"}, dropped...)
	b := testenv.GzipImage(t, v1.Platform{OS: "linux", Architecture: "arm64"}, kept...)
	idx := testenv.MultiArchIndex(t, a, b)

	var digests []v1.Hash
	for _, jobs := range []int{1, 4} {
		res := chainRewrite(t, idx, jobs, nil)
		d, err := res.Index.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("output differs with --jobs 1 and 4: %v", digests)
	}

	cache := newMemCache()
	res := chainRewrite(t, a, 2, cache)
	checkTree(t, dropped, res.Image, "usr/share/doc/pkg/README", "usr/bin/a", "usr/bin/b", "usr/bin/c")
	// The same layer 3 on top of a kept a, from the cache.
	res = chainRewrite(t, b, 2, cache)
	checkTree(t, kept, res.Image, "usr/share/doc/pkg/README")
	res = chainRewrite(t, a, 2, cache)
	checkTree(t, dropped, res.Image, "usr/share/doc/pkg/README", "usr/bin/a", "usr/bin/b", "usr/bin/c")
	if ir := res.Report.Images[0]; !ir.Layers[2].Cached {
		t.Errorf("layer 3 rewritten knowing layer 2 was not cached: %+v", ir.Layers[2])
	}
}

// baseIsTwo makes the first two layers the base of a merge.
func baseIsTwo(_ context.Context, _ v1.Platform, _ *v1.Manifest, cf *v1.ConfigFile) ([]v1.Hash, string, error) {
	return cf.RootFS.DiffIDs[:2], "test", nil
}

// With --squash auto, the chain's last link is in the merge above the
// base layers that hold the rest.
func TestHardlinkChainIntoMerge(t *testing.T) {
	c := newChainLayers(t)
	layers := [][]byte{c.docs, c.linkA, c.linkB, testenv.TarLayer(t, []testenv.File{testenv.Reg("opt/x", "x")})}
	src := testenv.GzipImage(t, v1.Platform{OS: "linux", Architecture: "amd64"}, layers...)
	m, err := drop.New(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var digests []v1.Hash
	for _, jobs := range []int{1, 4} {
		res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()), rewrite.WithJobs(jobs),
			rewrite.WithSquash(rewrite.SquashAuto), rewrite.WithBaseFinder(baseIsTwo),
			rewrite.WithFilter(func(rec rewrite.Recorder) tarfilter.Filter { return rewrite.Drop(m, rec) }))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Close()
		rewrite.CheckVerified(t, src, res, m)
		checkTree(t, layers, res.Image, "usr/share/doc/pkg/README", "usr/bin/a", "usr/bin/b", "usr/bin/c")
		d, err := res.Image.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("output differs with --jobs 1 and 4: %v", digests)
	}
}

// A layer between the link dropped and the link to it writes the name
// again, as a file of its own: the link to it stays.
func TestHardlinkChainTargetWrittenAgain(t *testing.T) {
	c := newChainLayers(t)
	layers := [][]byte{c.docs, c.linkA, c.fileA, c.linkB}
	src := testenv.GzipImage(t, v1.Platform{OS: "linux", Architecture: "amd64"}, layers...)
	res := chainRewrite(t, src, 2, nil)
	checkTree(t, layers, res.Image, "usr/share/doc/pkg/README")
}

// Two images share the layer with b: one needs it rewritten in the first
// round, the other only in the second, after a layer of its own below it,
// and then a layer above it too.
func TestHardlinkChainRounds(t *testing.T) {
	c := newChainLayers(t)
	d := testenv.TarLayer(t, []testenv.File{testenv.Hardlink("usr/bin/d", "usr/bin/a")})
	e := testenv.TarLayer(t, []testenv.File{testenv.Hardlink("usr/bin/e", "usr/bin/b")})
	first := [][]byte{c.docs, c.linkA, c.linkB}
	second := [][]byte{c.docs, c.linkA, d, c.linkB, e}
	imgs := []v1.Image{
		testenv.GzipImage(t, v1.Platform{OS: "linux", Architecture: "amd64"}, first...),
		testenv.GzipImage(t, v1.Platform{OS: "linux", Architecture: "arm64"}, second...),
	}
	idx := testenv.MultiArchIndex(t, imgs...)
	var digests []v1.Hash
	for _, jobs := range []int{1, 4} {
		res := chainRewrite(t, idx, jobs, nil)
		for i, layers := range [][][]byte{first, second} {
			img, err := res.Index.Image(res.Report.Images[i].OutputDigest)
			if err != nil {
				t.Fatal(err)
			}
			gone := []string{"usr/share/doc/pkg/README", "usr/bin/a", "usr/bin/b", "usr/bin/c"}
			if i == 1 {
				gone = append(gone, "usr/bin/d", "usr/bin/e")
			}
			checkTree(t, layers, img, gone...)
		}
		dg, err := res.Index.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, dg)
	}
	if digests[0] != digests[1] {
		t.Errorf("output differs with --jobs 1 and 4: %v", digests)
	}
}
