package verify

import (
	"archive/tar"
	"errors"
	"os"

	"github.com/layerslim/layerslim/drop"
)

// An image's merged filesystem is read from its layers' sorted record
// files in one pass, path by path in the order of a tree walk. All the
// records of one path, from every layer, come together (by layer, then
// whiteouts before entries, then entry order), so what the path holds at
// the end follows from them and from its ancestors:
//
//   - a whiteout of an ancestor, an opaque marker on one, or an entry that
//     makes one something other than a directory deletes the path;
//   - an entry below the path (a touch record, made by the scan) makes it
//     an implicit directory unless it is a directory;
//   - the path's own records put, replace or delete it.
//
// Only the latest deletion by an ancestor matters, so each open ancestor
// keeps one position. The result is the tree that tree.apply builds.
//
// A hardlink takes the node its target has at that moment, which may be
// anywhere in the stream: a first pass keeps the records of the paths
// hardlinks name (and the deletions of their ancestors), which are few,
// and resolves the hardlinks in the order they apply (see links.go).

// imageStream is the merged filesystem of one image, read in path order.
type imageStream struct {
	m       *merger
	temps   []string // files of the earlier rounds of the merge
	peek    srec
	more    bool // peek holds the next record
	started bool
	stack   []openDir

	// First pass: the paths whose records are kept (keys), their
	// ancestors, and the records kept.
	keys, keyDirs map[string]bool
	timelines     map[string][]event
	// Second pass: the hardlinks, resolved.
	links *linkInfo
}

// openDir is an ancestor of the paths still to come, and the last moment
// something deleted everything below it.
type openDir struct {
	path string
	del  pos
	dels []pos // every deletion, for the first pass, on ancestors of keys
}

// openImageStream merges files, the sorted records of an image's layers
// bottom-up, in rounds of fanIn files (temporary files in dir).
func openImageStream(dir string, files []string) (*imageStream, error) {
	layers := make([]int64, len(files))
	for i := range layers {
		layers[i] = int64(i)
	}
	s := &imageStream{}
	for len(files) > fanIn {
		var next []string
		for i := 0; i < len(files); i += fanIn {
			j := min(i+fanIn, len(files))
			var ls []int64
			if layers != nil {
				ls = layers[i:j]
			}
			name, err := mergeFiles(dir, files[i:j], ls)
			if err != nil {
				s.close()
				return nil, err
			}
			s.temps = append(s.temps, name)
			next = append(next, name)
		}
		files, layers = next, nil
	}
	m, err := openMerge(files, layers)
	if err != nil {
		s.close()
		return nil, err
	}
	s.m = m
	if s.more, err = m.next(&s.peek); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *imageStream) close() {
	if s.m != nil {
		s.m.close()
	}
	for _, t := range s.temps {
		os.Remove(t)
	}
	s.temps = nil
}

var errStreamLink = errors.New("internal error: a hardlink the first pass did not resolve")

// linked stands, in the first pass, for what a hardlink puts: not a
// directory.
var linked = &node{typ: tar.TypeLink}

// under reports whether p is strictly below directory a ("" is the root).
func under(p, a string) bool {
	if a == "" {
		return p != ""
	}
	return len(p) > len(a) && p[len(a)] == '/' && p[:len(a)] == a
}

// next returns the next path the filesystem has ("" for the root, which it
// always has) and its node; ok is false at the end.
func (s *imageStream) next() (p string, n *node, ok bool, err error) {
	if !s.started {
		s.started = true
		if !s.more || s.peek.name != "" {
			s.stack = append(s.stack, openDir{path: "", del: never})
			return "", implicitDir(), true, nil
		}
	}
	for s.more {
		p := s.peek.name
		for len(s.stack) > 0 && !under(p, s.stack[len(s.stack)-1].path) {
			s.stack = s.stack[:len(s.stack)-1]
		}
		ancDel := never
		if len(s.stack) > 0 {
			ancDel = s.stack[len(s.stack)-1].del
		}
		var state *node
		if p == "" {
			state = implicitDir()
		}
		key, keyDir := s.keys[p], s.keyDirs[p]
		var tl []event
		if key {
			for _, d := range s.stack {
				for _, at := range d.dels {
					tl = append(tl, event{at: at, op: opWhiteout})
				}
			}
		}
		var dels []pos
		del := ancDel
		for s.more && s.peek.name == p {
			r := s.peek
			if s.more, err = s.m.next(&s.peek); err != nil {
				return "", nil, false, err
			}
			if r.op == opLink && r.target == p {
				continue // tree.link: a no-op
			}
			if key && r.op != opOpaque {
				tl = append(tl, event{at: r.pos, op: r.op, node: &r.node, target: r.target})
			}
			if keyDir && (r.op == opWhiteout && p != "" || r.op == opOpaque || r.op == opLink && p != "" ||
				r.op == opPut && p != "" && r.node.typ != tar.TypeDir) {
				dels = append(dels, r.pos)
			}
			if r.pos.cmp(ancDel) < 0 {
				continue // undone by the deletion of an ancestor
			}
			if state, del, err = s.apply(p, &r, state, del); err != nil {
				return "", nil, false, err
			}
		}
		if key {
			s.timelines[p] = tl
		}
		s.stack = append(s.stack, openDir{path: p, del: del, dels: dels})
		if state != nil {
			return p, state, true, nil
		}
	}
	return "", nil, false, nil
}

// implicitDir is a directory that no entry describes: a runtime creates it
// for the paths below it, with metadata of its own choosing.
func implicitDir() *node {
	return &node{typ: tar.TypeDir, implicit: true, mode: 0o755}
}

// linkToDropped reports whether p, a path with hardlinks links (tree.links),
// is a hardlink that goes with its target: the rewrite's drop rules (dropped) drop the path it
// links to, or that path is such a link in turn. The rewrite leaves such a
// link out rather than let it dangle (rewrite.Drop).
func linkToDropped(links map[string]string, p string, dropped func(string, bool) (string, bool)) (string, bool) {
	target, ok := links[p]
	if !ok {
		return "", false
	}
	seen := map[string]bool{p: true}
	for q := target; !seen[q]; {
		if _, ok := dropped(q, false); ok {
			return drop.LinkReason + target, true
		}
		seen[q] = true
		if q, ok = links[q]; !ok {
			break
		}
	}
	return "", false
}

// rootPath is how differences name the root directory.
const rootPath = "."

// apply applies record r of path p to what p holds (state), and to the
// last deletion of what is below p (del).
func (s *imageStream) apply(p string, r *srec, state *node, del pos) (*node, pos, error) {
	switch r.op {
	case opWhiteout:
		if p != "" {
			state, del = nil, maxPos(del, r.pos)
		}
	case opOpaque:
		del = maxPos(del, r.pos)
	case opPut:
		switch {
		case r.node.typ == tar.TypeDir:
			state = &r.node
		case p != "":
			state, del = &r.node, maxPos(del, r.pos)
		}
	case opTouch:
		if state == nil || state.typ != tar.TypeDir {
			state = implicitDir()
		}
	case opLink:
		if p == "" {
			break // the root stays a directory
		}
		switch {
		case s.links != nil:
			v := s.links.resolved[verKey{p, r.pos}]
			if v == nil {
				return nil, del, errStreamLink
			}
			state = v.node
		case s.keys != nil:
			state = linked
		default:
			return nil, del, errStreamLink
		}
		del = maxPos(del, r.pos)
	}
	return state, del, nil
}
