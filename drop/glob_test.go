package drop

import (
	"path"
	"strings"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string
		noMatch []string
	}{
		{
			pattern: "usr/share/doc/**",
			match:   []string{"usr/share/doc/x", "usr/share/doc/bash/README.gz", "usr/share/doc/a/b/c/d"},
			noMatch: []string{"usr/share/doc", "usr/share/docs/x", "usr/share", "usr/share/doc-base/x", "x/usr/share/doc/y", ""},
		},
		{
			pattern: "a/**/b",
			match:   []string{"a/b", "a/x/b", "a/x/y/z/b"},
			noMatch: []string{"a", "b", "a/bb", "a/x/b/c", "x/a/b", "ab"},
		},
		{
			pattern: "**/__pycache__/**",
			match:   []string{"__pycache__/x.pyc", "usr/lib/python3/dist-packages/__pycache__/six.cpython-311.pyc", "a/__pycache__/b/c"},
			noMatch: []string{"__pycache__", "usr/lib/__pycache__", "a/__pycache__x/b", "a/x__pycache__/b"},
		},
		{
			pattern: "**/*.pyc",
			match:   []string{"x.pyc", "a/b/c.pyc", ".pyc", "a/.hidden.pyc"},
			noMatch: []string{"x.py", "a/b.pyc/c", "a/b.pyco"},
		},
		{
			pattern: "**",
			match:   []string{"a", "a/b", ".wh.x"},
			noMatch: []string{""},
		},
		{
			pattern: "*",
			match:   []string{"a", "abc", ".hidden"},
			noMatch: []string{"a/b", ""},
		},
		{
			pattern: "var/lib/dpkg/*-old",
			match:   []string{"var/lib/dpkg/status-old", "var/lib/dpkg/diversions-old", "var/lib/dpkg/-old"},
			noMatch: []string{"var/lib/dpkg/status", "var/lib/dpkg/info/x-old", "var/lib/dpkg/status-older"},
		},
		{
			pattern: "lib?.so",
			match:   []string{"libc.so", "libé.so"},
			noMatch: []string{"lib.so", "libcc.so", "lib/.so"},
		},
		{
			pattern: "x/[a-c]*[!0-9]",
			match:   []string{"x/ab", "x/bz", "x/c12x"},
			noMatch: []string{"x/a", "x/d", "x/a1", "x/b/c", "x/"},
		},
		{
			pattern: "[^a]",
			match:   []string{"b", "Z"},
			noMatch: []string{"a", "bb"},
		},
		{
			pattern: "[]]x",
			match:   []string{"]x"},
			noMatch: []string{"x", "[x"},
		},
		{
			pattern: "[!]]",
			match:   []string{"a"},
			noMatch: []string{"]"},
		},
		{
			pattern: "[a-]",
			match:   []string{"a", "-"},
			noMatch: []string{"b"},
		},
		{
			pattern: `star\*`,
			match:   []string{"star*"},
			noMatch: []string{"stars", "star"},
		},
		{
			pattern: `x/\[a\]*`,
			match:   []string{"x/[a]", "x/[a]b"},
			noMatch: []string{"x/a"},
		},
		{
			pattern: `[\]]`,
			match:   []string{"]"},
			noMatch: []string{`\`},
		},
		{
			pattern: "/tmp/**",
			match:   []string{"tmp/x", "/tmp/x", "tmp/x/"},
			noMatch: []string{"tmp", "var/tmp/x"},
		},
		{
			pattern: "usr/lib/**/*.a",
			match:   []string{"usr/lib/libc.a", "usr/lib/x86_64-linux-gnu/libc.a"},
			noMatch: []string{"usr/lib/libc.so", "usr/lib64/libc.a", "usr/lib/x.a/y"},
		},
		{
			pattern: "a/**/**/b",
			match:   []string{"a/b", "a/x/b"},
			noMatch: []string{"a/x/c"},
		},
		{
			pattern: "a/**/**",
			match:   []string{"a/b", "a/b/c"},
			noMatch: []string{"a"},
		},
		{
			pattern: "**/x/**/y/*",
			match:   []string{"x/y/z", "p/x/q/y/z", "x/x/y/y/z", "p/x/a/x/b/y/c"},
			noMatch: []string{"x/y", "x/z/z", "p/x/q/y/z/w"},
		},
		{
			pattern: "a*b*c",
			match:   []string{"abc", "aXbYc", "abbbc", "abcbc", "aXbc"},
			noMatch: []string{"ab", "acb", "abcd"},
		},
		{
			pattern: "a**b",
			match:   []string{"ab", "axxb"},
			noMatch: []string{"a/b", "ax/xb"},
		},
		{
			pattern: "./usr//share/./x/",
			match:   []string{"usr/share/x"},
			noMatch: []string{"usr/share/x/y"},
		},
		{
			pattern: "héllo/*",
			match:   []string{"héllo/wörld"},
			noMatch: []string{"hello/world"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.pattern, func(t *testing.T) {
			p, err := Glob(tc.pattern)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.match {
				if !p.Match(s) {
					t.Errorf("%q does not match %q, want a match", tc.pattern, s)
				}
			}
			for _, s := range tc.noMatch {
				if p.Match(s) {
					t.Errorf("%q matches %q, want no match", tc.pattern, s)
				}
			}
		})
	}
}

func TestGlobErrors(t *testing.T) {
	for _, pattern := range []string{"", "/", "./", "a/../b", "..", "a/[bc", "a/[!", `a\`, "[b-a]", `[\`, "x/[]"} {
		if p, err := Glob(pattern); err == nil {
			t.Errorf("Glob(%q) = %v, want an error", pattern, p.elems)
		}
	}
}

// TestGlobAgreesWithPathMatch checks that, for patterns without "**",
// the engine agrees with path.Match (whose "*" never crosses "/" either).
func TestGlobAgreesWithPathMatch(t *testing.T) {
	patterns := []string{"*", "a*", "*b", "a*b", "?", "a?c", "[ab]*", "[^ab]?", "*/*", "a/*/c", "*.tar.*", "*x*y*"}
	paths := []string{"a", "b", "ab", "abc", "a/b", "a/b/c", "a/x/c", "x.tar.gz", "axy", "xxyy", "ba", "c", "", "aab", "a.b"}
	for _, pat := range patterns {
		g := mustGlob(pat)
		for _, s := range paths {
			want, err := path.Match(pat, s)
			if err != nil {
				t.Fatal(err)
			}
			if s == "" {
				want = false // the root is no path
			}
			if got := g.Match(s); got != want {
				t.Errorf("Glob(%q).Match(%q) = %v, path.Match says %v", pat, s, got, want)
			}
		}
	}
}

func TestGlobMatchDoesNotAllocate(t *testing.T) {
	p := mustGlob("**/.cache/pip/**")
	s := "root/.cache/pip/http-v2/a/b/c/d/e/0123456789abcdef"
	if n := testing.AllocsPerRun(100, func() { p.Match(s) }); n != 0 {
		t.Errorf("Match allocates %v times per call", n)
	}
}

func FuzzGlob(f *testing.F) {
	f.Add("a/**/b", "a/x/b")
	f.Add("[!a-c]*?", "dxy")
	f.Add(`\*[]]`, "*]")
	f.Add("**/a*/**/?", "x/ab/y/z")
	f.Add("a/**", "a")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		p, err := Glob(pattern)
		if err != nil {
			return
		}
		if !strings.ContainsAny(pattern, `[\`) {
			// "*" and "?" mean in an element what they mean to path.Match.
			var pe []string
			for _, e := range splitPath(pattern, nil) {
				if e != "." {
					pe = append(pe, e)
				}
			}
			if got, want := p.Match(s), refMatch(t, pe, splitPath(strings.Trim(s, "/"), nil)); got != want {
				t.Errorf("Glob(%q).Match(%q) = %v, the reference says %v", pattern, s, got, want)
			}
		}
		// Without meta characters, a pattern matches its own clean form
		// and nothing longer.
		if strings.ContainsAny(pattern, `*?[\`) {
			return
		}
		clean := path.Clean("/" + pattern)[1:]
		if !p.Match(clean) {
			t.Errorf("literal %q does not match %q", pattern, clean)
		}
		if p.Match(clean + "/x") {
			t.Errorf("literal %q matches %q", pattern, clean+"/x")
		}
	})
}

// refMatch is a slow, obviously right matcher for patterns without classes
// or escapes.
func refMatch(t *testing.T, pe, se []string) bool {
	if len(pe) == 0 {
		return len(se) == 0
	}
	if pe[0] == "**" {
		if len(pe) == 1 {
			return len(se) > 0
		}
		for i := 0; i <= len(se); i++ {
			if refMatch(t, pe[1:], se[i:]) {
				return true
			}
		}
		return false
	}
	if len(se) == 0 {
		return false
	}
	ok, err := path.Match(pe[0], se[0])
	if err != nil {
		t.Fatal(err)
	}
	return ok && refMatch(t, pe[1:], se[1:])
}
