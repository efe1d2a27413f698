package verify

import (
	"archive/tar"
	"fmt"
	"strings"
)

// dirent is one path of a merged filesystem. Its node is shared with the
// layer record it came from (nodes are never changed once made: link
// copies before it sets an inode), so a tree costs little beyond its
// layers' records.
type dirent struct {
	*node
	kids map[string]*dirent // set for directories only
}

// tree is a merged filesystem, built by applying layers bottom-up.
type tree struct {
	root   *dirent
	inodes int // the last hardlink group number handed out
	// links holds, for each path whose last entry was a hardlink, the
	// path it linked to (entries of paths gone since may linger: only
	// paths the tree has are looked up).
	links map[string]string
}

func newTree() *tree {
	return &tree{root: &dirent{node: implicitDir(), kids: map[string]*dirent{}}}
}

// implicitDir is a directory that no entry describes: a runtime creates it
// for the paths below it, with metadata of its own choosing.
func implicitDir() *node {
	return &node{typ: tar.TypeDir, implicit: true, mode: 0o755}
}

// find returns the entry at clean path p, or nil.
func (t *tree) find(p string) *dirent {
	d := t.root
	for p != "" {
		var elem string
		elem, p, _ = strings.Cut(p, "/")
		if d = d.kids[elem]; d == nil {
			return nil
		}
	}
	return d
}

// dirOf returns the directory that holds clean path p (not the root) and
// p's last element. With create, missing directories on the way are made
// implicit, and a non-directory in the way is replaced by one (entries are
// taken literally: symlinks among the parents are not followed).
// Without create it returns nil when a parent is missing.
func (t *tree) dirOf(p string, create bool) (*dirent, string) {
	d := t.root
	for {
		elem, rest, more := strings.Cut(p, "/")
		if !more {
			return d, elem
		}
		next := d.kids[elem]
		if next == nil || next.kids == nil {
			if !create {
				return nil, ""
			}
			next = &dirent{node: implicitDir(), kids: map[string]*dirent{}}
			d.kids[elem] = next
		}
		d, p = next, rest
	}
}

// apply adds one layer. Whiteouts and opaque markers apply to the lower
// layers only, wherever they stand in the layer, so they go first; then
// the entries apply in order, a later one replacing an earlier one at the
// same path.
func (t *tree) apply(records []record) error {
	for _, r := range records {
		switch r.op {
		case opWhiteout:
			if r.name == "" {
				continue
			}
			if d, base := t.dirOf(r.name, false); d != nil {
				delete(d.kids, base)
			}
		case opOpaque:
			if d := t.find(r.name); d != nil && d.kids != nil {
				clear(d.kids)
			}
		}
	}
	for _, r := range records {
		switch r.op {
		case opPut:
			t.put(r.name, &r.node)
		case opLink:
			if err := t.link(r.name, r.target); err != nil {
				return err
			}
		}
	}
	return nil
}

// put sets the node at p. A directory over a directory keeps the children;
// anything else replaces the path and what was below it.
func (t *tree) put(p string, n *node) {
	delete(t.links, p)
	if p == "" {
		if n.typ == tar.TypeDir {
			t.root.node = n
		}
		return
	}
	d, base := t.dirOf(p, true)
	old := d.kids[base]
	switch {
	case n.typ == tar.TypeDir && old != nil && old.kids != nil:
		old.node = n
	case n.typ == tar.TypeDir:
		d.kids[base] = &dirent{node: n, kids: map[string]*dirent{}}
	default:
		d.kids[base] = &dirent{node: n}
	}
}

// link makes p a hardlink to target as target is now: p gets its node and
// joins its hardlink group.
func (t *tree) link(p, target string) error {
	if p == target {
		return nil
	}
	src := t.find(target)
	switch {
	case src == nil:
		return fmt.Errorf("%s: hardlink to %s, which does not exist", p, target)
	case src.kids != nil:
		return fmt.Errorf("%s: hardlink to %s, which is a directory", p, target)
	}
	if src.inode == 0 {
		// A copy: the node may be shared with a record, and with the
		// tree of another image that has the same layer.
		cp := *src.node
		t.inodes++
		cp.inode = t.inodes
		src.node = &cp
	}
	t.put(p, src.node)
	if t.links == nil {
		t.links = map[string]string{}
	}
	t.links[p] = target
	return nil
}

// linkToDropped reports whether p, a path of t, is a hardlink that goes
// with its target: the rewrite's drop rules (dropped) drop the path it
// links to, or that path is such a link in turn. The rewrite leaves such a
// link out rather than let it dangle (rewrite.Drop).
func (t *tree) linkToDropped(p string, dropped func(string, bool) (string, bool)) (string, bool) {
	target, ok := t.links[p]
	if !ok {
		return "", false
	}
	seen := map[string]bool{p: true}
	for q := target; !seen[q]; {
		if _, ok := dropped(q, false); ok {
			return "link to dropped " + target, true
		}
		seen[q] = true
		if q, ok = t.links[q]; !ok {
			break
		}
	}
	return "", false
}

// rootPath is how differences name the root directory.
const rootPath = "."
