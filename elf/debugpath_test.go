package elf

import "testing"

// TestDebugPath pins the debug file's path and the name .gnu_debuglink
// records: rewrite writes the one and analyze sizes the other, both from
// here.
func TestDebugPath(t *testing.T) {
	for _, c := range []struct{ p, id, path, link string }{
		{"usr/bin/app", "abcdef0123", "usr/lib/debug/.build-id/ab/cdef0123.debug", "cdef0123.debug"},
		{"usr/bin/app", "", "usr/lib/debug/usr/bin/app.debug", "app.debug"},
		{"usr/bin/app", "ab", "usr/lib/debug/usr/bin/app.debug", "app.debug"},
	} {
		if got := DebugPath(c.p, c.id); got != c.path {
			t.Errorf("DebugPath(%q, %q) = %q, want %q", c.p, c.id, got, c.path)
		}
		if got := DebugLinkName(c.p, c.id); got != c.link {
			t.Errorf("DebugLinkName(%q, %q) = %q, want %q", c.p, c.id, got, c.link)
		}
	}
}
