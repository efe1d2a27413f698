package testenv

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"testing"
)

// Node is what a merged filesystem holds at one path, as tests compare it.
// A hardlink reads as the regular file it shares.
type Node struct {
	Type    byte
	Mode    int64
	Content string
	Link    string // symlink target
}

// SpecApply merges uncompressed tar layers bottom-up as the image-spec
// says: a layer's whiteouts and opaque markers delete what the layers
// below hold, wherever they stand in the layer, and never what the layer
// itself adds. containerd, podman and umoci read layers this way.
func SpecApply(t testing.TB, layers ...[]byte) map[string]Node {
	t.Helper()
	fs, err := apply(layers, false)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// NaiveApply merges tar layers bottom-up in tar order: each entry is
// written as it comes, each whiteout deletes its target when it is
// reached, and an opaque marker empties its directory when it is reached,
// whatever the layer itself put there before. Many scripts and some tools
// apply layers this way; a layer whose whiteouts come before the entries
// beside them reads the same under both.
func NaiveApply(t testing.TB, layers ...[]byte) map[string]Node {
	t.Helper()
	fs, err := apply(layers, true)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// CleanName is the path an extractor writes a tar entry name to: relative,
// no "." or ".." elements, inside the root ("" is the root).
func CleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

type entry struct {
	h    *tar.Header
	body string
}

func apply(layers [][]byte, naive bool) (map[string]Node, error) {
	fs := map[string]Node{}
	removeTree := func(p string) {
		for k := range fs {
			if p == "" || k == p || strings.HasPrefix(k, p+"/") {
				delete(fs, k)
			}
		}
	}
	removeChildren := func(d string) {
		for k := range fs {
			if d == "" || strings.HasPrefix(k, d+"/") {
				delete(fs, k)
			}
		}
	}
	for li, l := range layers {
		var ents []entry
		tr := tar.NewReader(bytes.NewReader(l))
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, err
			}
			body, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			ents = append(ents, entry{h: h, body: string(body)})
		}
		whiteout := func(p string) {
			dir, base := path.Split(p)
			dir = strings.TrimSuffix(dir, "/")
			switch {
			case base == ".wh..wh..opq":
				removeChildren(dir)
			case strings.HasPrefix(base, ".wh."):
				removeTree(path.Join(dir, strings.TrimPrefix(base, ".wh.")))
			}
		}
		if !naive {
			// Whiteouts first, on the lower layers only.
			for _, e := range ents {
				whiteout(CleanName(e.h.Name))
			}
		}
		for _, e := range ents {
			p := CleanName(e.h.Name)
			if strings.HasPrefix(path.Base(p), ".wh.") {
				if naive {
					whiteout(p)
				}
				continue
			}
			if p == "" {
				continue // the root's own entry
			}
			n := Node{Type: e.h.Typeflag, Mode: e.h.Mode, Content: e.body, Link: e.h.Linkname}
			switch e.h.Typeflag {
			case tar.TypeLink:
				target, ok := fs[CleanName(e.h.Linkname)]
				if !ok {
					return nil, fmt.Errorf("layer %d: %s: hardlink to missing %s", li+1, e.h.Name, e.h.Linkname)
				}
				n = Node{Type: tar.TypeReg, Mode: target.Mode, Content: target.Content}
			case tar.TypeRegA:
				n.Type = tar.TypeReg
			}
			if old, ok := fs[p]; ok && old.Type == tar.TypeDir && n.Type != tar.TypeDir {
				removeTree(p)
			}
			fs[p] = n
		}
	}
	return fs, nil
}
