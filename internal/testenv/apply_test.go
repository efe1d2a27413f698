package testenv

import (
	"sort"
	"strings"
	"testing"
)

func keysOf(fs map[string]Node) string {
	var ks []string
	for k := range fs {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, " ")
}

// The appliers agree on layers whose whiteouts come first, and differ as
// issue 11 saw them on a merge with the opaque marker after its siblings.
func TestSpecAndNaiveApply(t *testing.T) {
	lower := TarLayer(t, []File{Dir("a"), Reg("a/old", "1"), Reg("gone", "1"), Reg("kept", "1")})
	good := TarLayer(t, []File{Dir("a"), Opaque("a"), Whiteout("gone"), Reg("a/x", "x"), Reg("a/y", "y"), Hardlink("k2", "kept")})
	bad := TarLayer(t, []File{Dir("a"), Reg("a/y", "y"), Opaque("a"), Reg("a/x", "x"), Reg("gone", "new"), Whiteout("gone")})
	for _, tc := range []struct {
		name        string
		layers      [][]byte
		spec, naive string
	}{
		{"whiteouts first", [][]byte{lower, good}, "a a/x a/y k2 kept", "a a/x a/y k2 kept"},
		{"whiteouts after siblings", [][]byte{lower, bad}, "a a/x a/y gone kept", "a a/x kept"},
	} {
		if got := keysOf(SpecApply(t, tc.layers...)); got != tc.spec {
			t.Errorf("%s: SpecApply = %q, want %q", tc.name, got, tc.spec)
		}
		if got := keysOf(NaiveApply(t, tc.layers...)); got != tc.naive {
			t.Errorf("%s: NaiveApply = %q, want %q", tc.name, got, tc.naive)
		}
	}
}
