package verify

import (
	"maps"
	"slices"
	"sort"
	"strings"
)

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
