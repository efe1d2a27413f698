package verify

import (
	"archive/tar"
	"errors"
	"os"
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
// keeps one position. The result is the tree that tree.apply builds,
// without hardlinks: an image with a hardlink is merged as a tree.

// imageStream is the merged filesystem of one image, read in path order.
type imageStream struct {
	m       *merger
	temps   []string // files of the earlier rounds of the merge
	peek    srec
	more    bool // peek holds the next record
	started bool
	stack   []openDir
}

// openDir is an ancestor of the paths still to come, and the last moment
// something deleted everything below it.
type openDir struct {
	path string
	del  pos
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

var errStreamLink = errors.New("internal error: a hardlink in a streamed merge")

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
		del := ancDel
		for s.more && s.peek.name == p {
			r := s.peek
			if s.more, err = s.m.next(&s.peek); err != nil {
				return "", nil, false, err
			}
			if r.pos.cmp(ancDel) < 0 {
				continue // undone by the deletion of an ancestor
			}
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
				return "", nil, false, errStreamLink
			}
		}
		s.stack = append(s.stack, openDir{path: p, del: del})
		if state != nil {
			return p, state, true, nil
		}
	}
	return "", nil, false, nil
}
