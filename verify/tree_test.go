package verify

import (
	"archive/tar"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// The tree is the reference model of a merged filesystem: the layers
// applied in order, as a runtime does, into a tree in memory. The streamed
// merge (resolve.go, links.go) must give what it gives
// (TestStreamMatchesTree).

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

// The two merged filesystems are compared by walking them side by side, in
// sorted order, one directory at a time: a flat map of every path of each
// tree (and a sorted list of all of them) used to double verify's memory on
// an image of many files. Only hardlinked paths are listed apart: they are
// few, and a difference in who is linked with whom needs all of them.

// walkBoth calls f for every path of a or b, in sorted order (parents
// before children; the root is "."), with the node each tree has there
// (nil when it has none).
func walkBoth(a, b *dirent, f func(p string, s, d *node)) {
	f(rootPath, a.node, b.node)
	walkKids("", a, b, f)
}

func walkKids(prefix string, a, b *dirent, f func(p string, s, d *node)) {
	var names []string
	if a != nil {
		names = slices.Collect(maps.Keys(a.kids))
	}
	if b != nil {
		for n := range b.kids {
			if a == nil || a.kids[n] == nil {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	for _, n := range names {
		var ak, bk *dirent
		var an, bn *node
		if a != nil {
			if ak = a.kids[n]; ak != nil {
				an = ak.node
			}
		}
		if b != nil {
			if bk = b.kids[n]; bk != nil {
				bn = bk.node
			}
		}
		p := prefix + n
		f(p, an, bn)
		var ad, bd *dirent
		if ak != nil && ak.kids != nil {
			ad = ak
		}
		if bk != nil && bk.kids != nil {
			bd = bk
		}
		if ad != nil || bd != nil {
			walkKids(p+"/", ad, bd, f)
		}
	}
}

// linkGroups maps each path of t that shares its inode with other paths to
// the sorted list of all of them.
func (t *tree) linkGroups() map[string][]string {
	groups := map[int][]string{}
	var walk func(prefix string, d *dirent)
	walk = func(prefix string, d *dirent) {
		for name, k := range d.kids {
			p := prefix + name
			if k.inode != 0 {
				groups[k.inode] = append(groups[k.inode], p)
			}
			if k.kids != nil {
				walk(p+"/", k)
			}
		}
	}
	walk("", t.root)
	out := map[string][]string{}
	for _, g := range groups {
		if len(g) < 2 {
			continue
		}
		sort.Strings(g)
		for _, p := range g {
			out[p] = g
		}
	}
	return out
}

// has reports whether t has a node at p ("." is the root).
func (t *tree) has(p string) bool {
	if p == rootPath {
		return true
	}
	return t.find(strings.TrimSuffix(p, "/")) != nil
}

// entries reads the scan's records back in the order tree.apply takes
// them: whiteouts first, then entries, each in layer order.
func (s *layerScan) entries() ([]record, error) {
	rr, err := openRecords(s.file, -1)
	if err != nil {
		return nil, err
	}
	defer rr.close()
	var all []srec
	for {
		var r srec
		ok, err := rr.next(&r)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if r.op != opTouch {
			all = append(all, r)
		}
	}
	slices.SortFunc(all, func(a, b srec) int { return a.pos.cmp(b.pos) })
	out := make([]record, len(all))
	for i := range all {
		out[i] = all[i].record
	}
	return out, nil
}
