package analyze_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/layerslim/layerslim/analyze"
	"github.com/layerslim/layerslim/drop"
	"github.com/layerslim/layerslim/internal/testenv"
)

// The tree of a layer puts each byte where the layer report counts it,
// under the directory it lives in.
func TestTreeMatchesReport(t *testing.T) {
	m, err := drop.New(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	img := imageOfTars(t,
		testenv.TarLayer(t, []testenv.File{testenv.Dir("etc"), file("etc/conf", 100), file("usr/share/doc/pkg/README", 200),
			file("var/cache/apt/pkgcache.bin", 500), file("opt/app/data", 300)}),
		testenv.TarLayer(t, []testenv.File{file("etc/conf", 50), testenv.Whiteout("opt/app/data"), file("usr/bin/tool", 40)}),
	)
	rep := analyzeImage(t, img, analyze.Options{Drop: m, Tree: true})
	for i, l := range rep.Layers {
		if l.Tree == nil {
			t.Fatalf("layer %d: no tree", i+1)
		}
		got := [3]int64{l.Tree.Shadowed, l.Tree.Drop, l.Tree.Debug}
		want := [3]int64{l.ShadowedBytes, l.DropBytes, l.DebugBytes}
		if got != want {
			t.Errorf("layer %d: tree shadowed/drop/debug %v, report %v", i+1, got, want)
		}
	}
	type flat struct {
		Kept, Drop, Shadowed int64
		Why                  string
	}
	leaves := map[string]flat{}
	var walk func(prefix string, n *analyze.Node)
	walk = func(prefix string, n *analyze.Node) {
		if len(n.Children) == 0 {
			leaves[prefix+n.Name] = flat{n.Kept, n.Drop, n.Shadowed, n.Why}
		}
		for _, c := range n.Children {
			walk(prefix+n.Name+"/", c)
		}
	}
	walk("", rep.Layers[0].Tree)
	want := map[string]flat{
		"//etc/conf":                   {Shadowed: 100, Why: "shadowed by layer 2"},
		"//usr/share/doc/pkg/README":   {Drop: 200, Why: "drop preset docs"},
		"//var/cache/apt/pkgcache.bin": {Drop: 500, Why: "drop preset apt"},
		"//opt/app/data":               {Shadowed: 300, Why: "shadowed by layer 2"},
	}
	if diff := cmp.Diff(want, leaves); diff != "" {
		t.Errorf("layer 1 leaves (-want +got):\n%s", diff)
	}
	if n := rep.Layers[1].Tree; n.Kept != 90 || n.Files != 2 {
		t.Errorf("layer 2: kept %d in %d files, want 90 in 2", n.Kept, n.Files)
	}
}

// Without Options.Tree there is no tree (and the JSON report stays small).
func TestNoTreeByDefault(t *testing.T) {
	rep := analyzeImage(t, imageOfTars(t, testenv.TarLayer(t, []testenv.File{file("a", 10)})), analyze.Options{})
	if rep.Layers[0].Tree != nil {
		t.Error("a tree without Options.Tree")
	}
}

// Many small files are summed into a bounded number of nodes, and the sums
// stay right.
func TestTreeBounded(t *testing.T) {
	var ents []testenv.File
	for d := range 30 {
		for f := range 100 {
			ents = append(ents, file(fmt.Sprintf("data/d%02d/f%03d", d, f), 1+d))
		}
	}
	rep := analyzeImage(t, imageOfTars(t, testenv.TarLayer(t, ents)), analyze.Options{Tree: true, TreeNodes: 200})
	tree := rep.Layers[0].Tree
	nodes := 0
	var files int
	var bytes int64
	var walk func(n *analyze.Node)
	walk = func(n *analyze.Node) {
		nodes++
		if len(n.Children) == 0 {
			files += n.Files
			bytes += n.Bytes()
		}
		var sum int64
		for _, c := range n.Children {
			sum += c.Bytes()
			walk(c)
		}
		if len(n.Children) > 0 && sum != n.Bytes() {
			t.Errorf("%s: children hold %d bytes, the node %d", n.Name, sum, n.Bytes())
		}
	}
	walk(tree)
	if nodes > 200 {
		t.Errorf("%d nodes, want at most 200", nodes)
	}
	if files != 3000 || bytes != rep.Layers[0].Tree.Kept || tree.Files != 3000 {
		t.Errorf("leaves stand for %d files and %d bytes, want 3000 and %d", files, bytes, tree.Kept)
	}
	// The largest directory is opened first.
	data := tree.Children[0]
	if data.Children[0].Name != "d29" || len(data.Children[0].Children) == 0 {
		t.Errorf("largest directory %q not opened", data.Children[0].Name)
	}
	if p := tree.Prune(10); countNodes(p) > 10 || p.Bytes() != tree.Bytes() {
		t.Errorf("Prune(10): %d nodes, %d bytes", countNodes(p), p.Bytes())
	}
}

func countNodes(n *analyze.Node) int {
	c := 1
	for _, k := range n.Children {
		c += countNodes(k)
	}
	return c
}
