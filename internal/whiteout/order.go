package whiteout

import "strings"

// The image-spec says layers SHOULD be made with whiteouts before the
// entries beside them, so that an applier that works in tar order (apply
// each entry and each whiteout as it comes) reads a layer as the spec
// does (whiteouts delete lower layers' content only). layerslim holds its
// own layers to the strict form of that rule: a directory's opaque marker
// and whiteouts come before every other entry under that directory, at any
// depth. The directory's own entry may come before them.

// DirOf is the directory a whiteout (clean name) stands in: "a" for
// a/.wh.x and for a/.wh..wh..opq, "" for the root. ok is false for
// ordinary names.
func DirOf(name string) (dir string, ok bool) {
	if _, _, ok := Parse(name); !ok {
		return "", false
	}
	return parent(name), true
}

// OrderCheck finds whiteouts that come after other entries of their
// directory in one layer. Feed it every entry's clean name in layer order;
// it remembers the directories that have had an entry under them, no
// bodies.
type OrderCheck struct {
	used map[string]bool
}

// Add records the next entry and reports whether it is a whiteout that
// comes too late: after an entry under its directory.
func (c *OrderCheck) Add(name string) (late bool) {
	if c.used == nil {
		c.used = map[string]bool{}
	}
	if dir, ok := DirOf(name); ok {
		return c.used[dir]
	}
	if name == "" {
		return false // the root's own entry is under nothing
	}
	for a := parent(name); ; a = parent(a) {
		if c.used[a] {
			break // and so are its ancestors
		}
		c.used[a] = true
		if a == "" {
			break
		}
	}
	return false
}

// Ancestors returns the directories above clean name p, from the root
// ("") down to p's parent; nil for the root itself.
func Ancestors(p string) []string {
	if p == "" {
		return nil
	}
	out := []string{""}
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[:i])
		}
	}
	return out
}

// Unclean reports whether a raw tar entry name climbs out of the root: it
// is absolute or has a ".." element. Extractors (containerd, podman) write
// such an entry at Clean(name) inside the root; other tools refuse it or,
// worse, follow it.
func Unclean(name string) bool {
	if strings.HasPrefix(name, "/") {
		return true
	}
	for el := range strings.SplitSeq(name, "/") {
		if el == ".." {
			return true
		}
	}
	return false
}
