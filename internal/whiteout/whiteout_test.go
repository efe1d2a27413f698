package whiteout

import (
	"errors"
	"strings"
	"testing"
)

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"./etc/passwd": "etc/passwd", "/etc/": "etc", "etc//x/../y": "etc/y",
		"../../etc/shadow": "etc/shadow", ".": "", "./": "",
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, target string
		opaque, ok   bool
	}{
		{"etc/.wh.motd", "etc/motd", false, true},
		{".wh.top", "top", false, true},
		{"srv/data/.wh..wh..opq", "srv/data", true, true},
		{"etc/motd", "", false, false},
		{"etc/x.wh.y", "", false, false},
	}
	for _, tc := range tests {
		target, opaque, ok := Parse(tc.name)
		if target != tc.target || opaque != tc.opaque || ok != tc.ok {
			t.Errorf("Parse(%q) = %q %v %v", tc.name, target, opaque, ok)
		}
	}
}

func TestShadow(t *testing.T) {
	s := NewShadow()
	// The top layer.
	for _, e := range []struct {
		name string
		dir  bool
	}{
		{"etc", true}, {"etc/passwd", false}, {"etc/.wh.motd", false},
		{"srv/data/.wh..wh..opq", false}, {"opt", false}, {"var/lib/.wh.apt", false},
	} {
		s.Mark(e.name, e.dir)
	}
	// Entries of the same layer do not hide each other before Commit.
	if s.Hidden("etc/passwd", false) {
		t.Error("an uncommitted mark hides")
	}
	s.Commit()
	for _, tc := range []struct {
		p      string
		dir    bool
		hidden bool
	}{
		{"etc", true, false},        // directory metadata replaced, not hidden
		{"etc/passwd", false, true}, // overwritten
		{"etc/group", false, false}, // untouched sibling
		{"etc/motd", false, true},   // whited out
		{"srv/data", true, false},   // the opaque directory itself stays
		{"srv/data/old.txt", false, true},
		{"srv/data/sub/deep", false, true},
		{"srv/other", false, false},
		{"opt/app/bin", false, true}, // a file replaced the directory opt
		{"var/lib/apt/lists/x", false, true},
		{"var/lib/dpkg", true, false},
		{"etc", false, true}, // a file below a directory above
	} {
		if got := s.Hidden(tc.p, tc.dir); got != tc.hidden {
			t.Errorf("Hidden(%q, dir=%v) = %v, want %v", tc.p, tc.dir, got, tc.hidden)
		}
	}
	if !s.DirReplaced("etc") || s.DirReplaced("srv") {
		t.Error("DirReplaced")
	}
}

// An opaque marker on the root hides everything below it; the root
// itself stays.
func TestShadowOpaqueRoot(t *testing.T) {
	s := NewShadow()
	s.Mark(Clean("./.wh..wh..opq"), false)
	s.Mark("new", false)
	s.Commit()
	for p, want := range map[string]bool{"old": true, "etc/passwd": true, "new": true} {
		if got := s.Hidden(p, false); got != want {
			t.Errorf("Hidden(%q) = %v, want %v", p, got, want)
		}
	}
	if s.AncestorHidden("") {
		t.Error("the root hides itself")
	}
}

func TestCheck(t *testing.T) {
	for name, bad := range map[string]bool{
		"a/.wh.x": false, ".wh.x": false, "a/.wh..wh..opq": false, ".wh....": false,
		"a/.wh.": true, ".wh..": true, "a/.wh...": true,
	} {
		err := Check(name)
		if (err != nil) != bad || (err != nil && !errors.Is(err, ErrNoFile)) {
			t.Errorf("Check(%q) = %v, want bad %v", name, err, bad)
		}
	}
}

func TestOrderCheck(t *testing.T) {
	tests := []struct {
		names []string
		late  []string // the whiteouts reported
	}{
		{[]string{"", "a", "a/.wh..wh..opq", "a/x", ".wh.b", "c"}, []string{".wh.b"}},
		{[]string{"a", "a/y", "a/.wh..wh..opq", "a/x"}, []string{"a/.wh..wh..opq"}},
		{[]string{"a/b/c", "a/.wh.x"}, []string{"a/.wh.x"}},
		{[]string{"a/b/c", "a/b/.wh.x", "d/.wh.y"}, []string{"a/b/.wh.x"}},
		{[]string{".wh.z", "a/.wh.x", "a/b/.wh.y", "a/b/c", "a/d"}, nil},
		{[]string{"a/b/.wh.x", "a/.wh.b"}, nil}, // whiteouts do not count as entries
	}
	for _, tc := range tests {
		var c OrderCheck
		var late []string
		for _, n := range tc.names {
			if c.Add(n) {
				late = append(late, n)
			}
		}
		if strings.Join(late, ",") != strings.Join(tc.late, ",") {
			t.Errorf("%q: late %q, want %q", tc.names, late, tc.late)
		}
	}
}

func TestUnclean(t *testing.T) {
	for name, want := range map[string]bool{
		"etc/x": false, "./etc/x": false, "a/../b": true, "../../x": true, "/x": true, "..": true,
		"a..b/c": false, "x/..y": false, "etc/": false,
	} {
		if got := Unclean(name); got != want {
			t.Errorf("Unclean(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestAncestors(t *testing.T) {
	if got := strings.Join(Ancestors("a/b/c"), "|"); got != "|a|a/b" {
		t.Errorf("Ancestors(a/b/c) = %q", got)
	}
	if Ancestors("") != nil {
		t.Error("the root has ancestors")
	}
}
