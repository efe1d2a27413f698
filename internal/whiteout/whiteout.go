// Package whiteout holds the rules by which the layers of an image (OCI
// layer changesets) make one filesystem: entry names (Clean, Unclean),
// whiteouts and opaque directories (Parse, Check), which entries of a
// lower layer the layers above it hide (Shadow), and where a layer's
// whiteouts must come (OrderCheck). Squash, analyze and verify share these
// rules.
package whiteout

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

const (
	// Prefix marks a deleted path: dir/.wh.name deletes dir/name.
	Prefix = ".wh."
	// OpaqueMarker in a directory hides everything lower layers put there.
	OpaqueMarker = ".wh..wh..opq"
)

// Clean returns the canonical form of a tar entry name: relative, no "./"
// prefix, no trailing slash, no "." or ".." elements ("" for the root).
// Names that climb out of the root with ".." stay inside it, as runtimes
// treat them.
func Clean(name string) string {
	p := path.Clean("/" + name)
	if p == "/" {
		return ""
	}
	return p[1:]
}

// Parse tells what a (clean) entry name deletes: for dir/.wh.name the
// target dir/name; for dir/.wh..wh..opq the directory dir with opaque set.
// ok is false for ordinary names.
func Parse(name string) (target string, opaque bool, ok bool) {
	dir, base := path.Split(name)
	if !strings.HasPrefix(base, Prefix) {
		return "", false, false
	}
	dir = strings.TrimSuffix(dir, "/")
	if base == OpaqueMarker {
		return dir, true, true
	}
	return path.Join(dir, strings.TrimPrefix(base, Prefix)), false, true
}

// ErrNoFile is wrapped by Check's error.
var ErrNoFile = errors.New("whiteout of no file")

// Check refuses a whiteout that names no file: ".wh." alone, or a
// whiteout of "." or "..". Runtimes disagree on what it deletes
// (containerd's naive applier removes the directory it stands in, or the
// whole root for ".."), so layerslim does not guess.
func Check(name string) error {
	switch path.Base(name) {
	case Prefix, Prefix + ".", Prefix + "..":
		return fmt.Errorf("%w: %q deletes %q", ErrNoFile, path.Base(name), strings.TrimPrefix(path.Base(name), Prefix))
	}
	return nil
}

// Kind is what an upper layer put at a path.
type Kind uint8

const (
	// File is any non-directory entry: file, symlink, hardlink, device.
	File Kind = 1 << iota
	// Dir is a directory entry.
	Dir
	// Deleted is a whiteout of the path.
	Deleted
	// Opaque is an opaque marker on a directory.
	Opaque
	// Implied is a directory that entries below it imply.
	Implied
)

// Shadow records what the layers above a layer hold, to tell which of its
// entries they hide. Walk the layers from the top down: for each layer,
// ask Hidden for its entries, Mark them, and Commit before the next layer,
// so entries of one layer never hide each other.
type Shadow struct {
	upper   map[string]Kind
	pending map[string]Kind
}

// NewShadow returns an empty Shadow: nothing hidden yet.
func NewShadow() *Shadow {
	return &Shadow{upper: map[string]Kind{}, pending: map[string]Kind{}}
}

// Hidden reports whether an entry at clean name p, of a layer below every
// committed one, is invisible in the merged filesystem: the path itself is
// replaced or deleted above, or an ancestor is deleted, made opaque, or
// replaced by a non-directory.
func (s *Shadow) Hidden(p string, isDir bool) bool {
	if k := s.upper[p]; k&(File|Deleted) != 0 || (k&(Dir|Implied|Opaque) != 0 && !isDir) {
		return true
	}
	return s.AncestorHidden(p)
}

// AncestorHidden reports whether a directory above p is deleted, made
// opaque, or replaced by a non-directory in the committed layers; the root
// itself hides what is below it when it is made opaque.
func (s *Shadow) AncestorHidden(p string) bool {
	if p == "" {
		return false
	}
	for a := parent(p); a != ""; a = parent(a) {
		if s.upper[a]&(File|Deleted|Opaque) != 0 {
			return true
		}
	}
	return s.upper[""]&Opaque != 0
}

// Upper returns what the committed layers put at p.
func (s *Shadow) Upper(p string) Kind { return s.upper[p] }

// DirReplaced reports whether a directory entry at p is superseded by a
// directory entry above (its children may still show through).
func (s *Shadow) DirReplaced(p string) bool { return s.upper[p]&Dir != 0 }

// Mark records an entry of the current layer. name is the entry's clean
// name, whiteouts included.
func (s *Shadow) Mark(name string, isDir bool) {
	for a := parent(name); a != ""; a = parent(a) {
		if s.pending[a]&Implied != 0 {
			break
		}
		s.pending[a] |= Implied
	}
	if target, opaque, ok := Parse(name); ok {
		if opaque {
			s.pending[target] |= Opaque
		} else {
			s.pending[target] |= Deleted
		}
		return
	}
	if isDir {
		s.pending[name] |= Dir
	} else {
		s.pending[name] |= File
	}
}

// Commit ends the current layer: what it marked now hides lower layers.
func (s *Shadow) Commit() {
	for p, k := range s.pending {
		s.upper[p] |= k
	}
	clear(s.pending)
}

// Len is the number of paths recorded.
func (s *Shadow) Len() int { return len(s.upper) }

func parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return ""
	}
	return p[:i]
}
