package verify

import (
	"archive/tar"
	"fmt"
	"slices"
)

// Hardlinks in a streamed merge (resolve.go). A node that a hardlink
// shares is a version: the entry that put it, at a path and a moment. A
// hardlink at p takes the version its target holds when the hardlink
// applies; the paths that hold one version at the end are a hardlink group
// (tree.linkGroups). Only the paths hardlinks name (keys) can hold a
// shared version, so the first pass keeps their records alone.

// event is a record of a key, or (op opWhiteout) the deletion of it or of
// an ancestor.
type event struct {
	at     pos
	op     op
	node   *node
	target string
}

// verKey names a version (or a hardlink entry): its path and moment.
type verKey struct {
	path string
	at   pos
}

type version struct {
	verKey
	node *node
}

// linkInfo is what the first pass learns of an image.
type linkInfo struct {
	resolved map[verKey]*version // each hardlink entry → the version it takes
	groups   map[string][]string // path → the sorted paths of its group (two or more)
	links    map[string]string   // path → the target of its last hardlink entry (tree.links)
	has      map[string]bool     // the keys the merged filesystem has
}

// linkError is a hardlink that cannot be made, in layer layer (from 0).
type linkError struct {
	layer int64
	err   error
}

func (e *linkError) Error() string { return e.err.Error() }
func (e *linkError) Unwrap() error { return e.err }

// resolveLinks resolves the hardlinks among the kept records, in the order
// they apply, and finds the groups. timelines holds each key's events.
func resolveLinks(keys map[string]bool, timelines map[string][]event) (*linkInfo, error) {
	info := &linkInfo{resolved: map[verKey]*version{}, groups: map[string][]string{}, links: map[string]string{}, has: map[string]bool{}}
	type hardlink struct {
		p string
		event
	}
	var all []hardlink
	for p, tl := range timelines {
		slices.SortStableFunc(tl, func(a, b event) int { return a.at.cmp(b.at) })
		for _, e := range tl {
			if e.op == opLink {
				all = append(all, hardlink{p, e})
			}
		}
	}
	slices.SortFunc(all, func(a, b hardlink) int { return a.at.cmp(b.at) })
	for _, l := range all {
		v := info.replay(l.target, timelines[l.target], &l.at)
		switch {
		case v == nil:
			return nil, &linkError{l.at.layer, fmt.Errorf("%s: hardlink to %s, which does not exist", l.p, l.target)}
		case v.node.typ == tar.TypeDir:
			return nil, &linkError{l.at.layer, fmt.Errorf("%s: hardlink to %s, which is a directory", l.p, l.target)}
		}
		info.resolved[verKey{l.p, l.at}] = v
	}
	holders := map[verKey][]string{}
	for p := range keys {
		tl := timelines[p]
		if v := info.replay(p, tl, nil); v != nil {
			info.has[p] = true
			holders[v.verKey] = append(holders[v.verKey], p)
		}
		for i := len(tl) - 1; i >= 0; i-- {
			if tl[i].op == opPut {
				break
			}
			if tl[i].op == opLink {
				info.links[p] = tl[i].target
				break
			}
		}
	}
	for _, g := range holders {
		if len(g) < 2 {
			continue
		}
		slices.Sort(g)
		for _, p := range g {
			info.groups[p] = g
		}
	}
	return info, nil
}

// replay returns the version path p holds just before until (nil: at the
// end), from its events; nil when it has none.
func (info *linkInfo) replay(p string, tl []event, until *pos) *version {
	var cur *version
	if p == "" {
		cur = &version{node: implicitDir()}
	}
	for _, e := range tl {
		if until != nil && e.at.cmp(*until) >= 0 {
			break
		}
		switch e.op {
		case opWhiteout:
			if p != "" {
				cur = nil
			}
		case opPut:
			if p == "" && e.node.typ != tar.TypeDir {
				continue
			}
			cur = &version{verKey{p, e.at}, e.node}
		case opTouch:
			if cur == nil || cur.node.typ != tar.TypeDir {
				cur = &version{verKey{p, e.at}, implicitDir()}
			}
		case opLink:
			if p != "" {
				cur = info.resolved[verKey{p, e.at}]
			}
		}
	}
	return cur
}
