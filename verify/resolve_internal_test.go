package verify

import (
	"archive/tar"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// randomRecord is an entry or a whiteout at a path made of a few short
// names, some of which sort around "/" ("a-b", "a.b").
func randomRecord(rng *rand.Rand) record {
	names := []string{"a", "b", "a-b", "a.b", "c"}
	var parts []string
	for range 1 + rng.IntN(3) {
		parts = append(parts, names[rng.IntN(len(names))])
	}
	p := strings.Join(parts, "/")
	n := node{mode: rng.Int64N(0o1000), mtime: time.Unix(rng.Int64N(1e9), 0)}
	switch k := rng.IntN(22); {
	case k < 7:
		n.typ, n.size = tar.TypeReg, rng.Int64N(100)
	case k < 11:
		n.typ = tar.TypeDir
	case k < 12:
		n.typ = tar.TypeDir
		p = ""
	case k < 13:
		n.typ, n.link = tar.TypeSymlink, "x"
	case k < 17:
		return record{name: p, op: opWhiteout}
	case k < 19:
		return record{name: p, op: opOpaque}
	case k < 20:
		return record{name: "", op: opOpaque}
	default:
		parts = parts[:0]
		for range 1 + rng.IntN(2) {
			parts = append(parts, names[rng.IntN(len(names))])
		}
		return record{name: p, op: opLink, target: strings.Join(parts, "/")}
	}
	return record{name: p, op: opPut, node: n}
}

func nodeString(p string, n *node) string {
	return fmt.Sprintf("%s %c %v %o %d %q %d", p, n.typ, n.implicit, n.mode, n.mtime.Unix(), n.link, n.size)
}

// The merge of sorted record files gives the tree that applying the
// layers in order builds, on random layers, with runs and merge rounds
// made small.
func TestStreamMatchesTree(t *testing.T) {
	defer func(r, f int) { runOf, fanIn = r, f }(runOf, fanIn)
	runOf, fanIn = 3, 2
	rng := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	n := 2000
	if testing.Short() {
		n = 200
	}
	for iter := range n {
		var files []string
		tr := newTree()
		var layers [][]record
		treeErr := ""
		for range 1 + rng.IntN(5) {
			var rs []record
			for range rng.IntN(10) {
				rs = append(rs, randomRecord(rng))
			}
			layers = append(layers, rs)
			s := &layerScan{}
			sorted := &sorter{dir: dir}
			prev := "\x00"
			for i, r := range rs {
				if err := s.add(sorted, r, uint64(i+1), &prev); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			if s.file, err = sorted.finish(); err != nil {
				t.Fatal(err)
			}
			files = append(files, s.file)
			back, err := s.entries()
			if err != nil {
				t.Fatal(err)
			}
			if want := len(slices.DeleteFunc(slices.Clone(rs), func(r record) bool { return r.op == opLink && r.name == r.target })); len(back) != want {
				t.Fatalf("%d records read back, want %d", len(back), want)
			}
			if err := tr.apply(back); err != nil && treeErr == "" {
				treeErr = err.Error()
			}
		}
		var want, got []string
		wantErr, gotErr := treeErr, ""
		if treeErr == "" {
			groups := tr.linkGroups()
			walkBoth(tr.root, newTree().root, func(p string, s, _ *node) {
				if s != nil {
					want = append(want, nodeString(p, s)+fmt.Sprint(groups[p], tr.links[p]))
				}
			})
		}
		keys := map[string]bool{}
		for _, rs := range layers {
			for _, r := range rs {
				if r.op == opLink && r.name != r.target {
					keys[r.name], keys[r.target] = true, true
				}
			}
		}
		info := &linkInfo{}
		if len(keys) > 0 {
			st, err := openImageStream(dir, files)
			if err != nil {
				t.Fatal(err)
			}
			st.keys, st.keyDirs, st.timelines = keys, map[string]bool{}, map[string][]event{}
			for k := range keys {
				for d := k; d != ""; {
					d = parentDir(d)
					st.keyDirs[d] = true
				}
			}
			for {
				_, _, ok, err := st.next()
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
			}
			st.close()
			info, err = resolveLinks(keys, st.timelines)
			if err != nil {
				gotErr = err.Error()
			}
		}
		if gotErr == "" {
			st, err := openImageStream(dir, files)
			if err != nil {
				t.Fatal(err)
			}
			st.links = info
			for {
				p, n, ok, err := st.next()
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				got = append(got, nodeString(displayPath(p), n)+fmt.Sprint(info.groups[p], info.links[p]))
				if keys[p] != info.has[p] {
					t.Fatalf("iteration %d: %s is a key: %v, has: %v", iter, p, keys[p], info.has[p])
				}
			}
			st.close()
		}
		if gotErr != wantErr {
			t.Fatalf("iteration %d, layers %+v: error %q, tree's %q", iter, layers, gotErr, wantErr)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("iteration %d, layers %+v:\nstream %q\ntree   %q", iter, layers, got, want)
		}
		for _, f := range files {
			os.Remove(f)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("%d record files left", len(left))
	}
}
