package drop

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// defaultCases are paths from real Debian, Ubuntu, Alpine, Fedora, Python,
// Node and Go images, with the reason the default set drops them ("" for
// kept).
var defaultCases = []struct {
	path   string
	reason string
}{
	// apt
	{"var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease", "apt"},
	{"var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4", "apt"},
	{"var/lib/apt/lists/lock", "apt"},
	{"var/lib/apt/lists/auxfiles/x", "apt"},
	{"var/cache/apt/pkgcache.bin", "apt"},
	{"var/cache/apt/archives/lock", "apt"},
	{"var/cache/apt/archives/curl_7.88.1-10_amd64.deb", "apt"},
	{"var/lib/apt/extended_states", ""},
	{"etc/apt/sources.list.d/debian.sources", ""},
	// dpkg
	{"var/lib/dpkg/status-old", "dpkg"},
	{"var/lib/dpkg/diversions-old", "dpkg"},
	{"var/cache/debconf/config.dat-old", "dpkg"},
	{"var/cache/debconf/templates.dat-old", "dpkg"},
	{"var/log/dpkg.log", "dpkg"},
	{"var/log/alternatives.log", "dpkg"},
	{"var/log/apt/history.log", "dpkg"},
	{"var/log/apt/eipp.log.xz", "dpkg"},
	{"var/lib/dpkg/status", ""},
	{"var/lib/dpkg/info/bash.list", ""},
	{"var/lib/dpkg/info/libc6:amd64.md5sums", ""},
	{"var/cache/debconf/config.dat", ""},
	{"var/log/lastlog", ""},
	// apk
	{"var/cache/apk/APKINDEX.4ec9f1c4.tar.gz", "apk"},
	{"lib/apk/db/installed", ""},
	{"etc/apk/repositories", ""},
	// dnf, yum
	{"var/cache/dnf/fedora-2d95c80a1fa0a67d/repodata/primary.xml.zst", "dnf"},
	{"var/cache/dnf/packages.db", "dnf"},
	{"var/cache/yum/x86_64/7/base/packages/bash.rpm", "dnf"},
	{"var/cache/libdnf5/fedora-1b9b3b3b/repodata/repomd.xml", "dnf"},
	{"var/log/dnf.log", "dnf"},
	{"var/log/dnf.rpm.log", "dnf"},
	{"var/log/hawkey.log", "dnf"},
	{"var/lib/dnf/history.sqlite", ""},
	{"var/lib/rpm/rpmdb.sqlite", ""},
	// pip
	{"root/.cache/pip/http-v2/a/b/c/d/e/0123456789abcdef", "pip"},
	{"root/.cache/pip/wheels/ab/cd/numpy-1.26.0-cp311-linux_x86_64.whl", "pip"},
	{"home/app/.cache/pip/selfcheck/x.json", "pip"},
	{".cache/pip/x", "pip"},
	{"tmp/pip-install-abc123/foo/setup.py", "pip"}, // pip comes before tmp
	{"usr/local/lib/python3.12/site-packages/pip/_internal/cache.py", ""},
	{"usr/local/lib/python3.12/site-packages/requests/__init__.py", ""},
	{"usr/local/lib/python3.12/site-packages/requests/__pycache__/api.cpython-312.pyc", ""},
	// npm, yarn, pnpm
	{"root/.npm/_cacache/content-v2/sha512/ab/cd/ef", "npm"},
	{"root/.npm/_cacache/index-v5/12/34/abcd", "npm"},
	{"root/.npm/_logs/2024-01-01T00_00_00_000Z-debug-0.log", "npm"},
	{"home/node/.npm/_cacache/tmp/x", "npm"},
	{"usr/local/share/.cache/yarn/v6/npm-lodash-4.17.21/node_modules/lodash/lodash.js", "npm"},
	{"home/node/.cache/yarn/v6/.tmp/x", "npm"},
	{"app/.pnpm-store/v3/files/00/abcdef", ""}, // opt-in: node_modules links into it
	{"root/.local/share/pnpm/store/v3/files/ff/0123", ""},
	{"root/.npm/_npx/1234/package.json", ""},
	{"root/.npmrc", ""},
	{"app/node_modules/lodash/lodash.js", ""},
	{"app/node_modules/.pnpm/lodash@4.17.21/node_modules/lodash/lodash.js", ""},
	{"app/.yarn/cache/lodash-npm-4.17.21-6382451519-eb835a2e51.zip", ""},
	{"root/.yarn/berry/cache/lodash-npm-4.17.21-6382451519-10c0.zip", ""},
	{"app/.yarn/releases/yarn-4.1.0.cjs", ""},
	// Go build cache
	{"root/.cache/go-build/ab/abcdef0123-d", "gocache"},
	{"root/.cache/go-build/README", "gocache"},
	{"home/nonroot/.cache/go-build/trim.txt", "gocache"},
	{"go/pkg/mod/github.com/spf13/cobra@v1.8.0/command.go", ""},
	{"usr/local/go/src/cmd/go/internal/cache/cache.go", ""},
	{"usr/local/go/bin/go", ""},
	// docs, with their license files
	{"usr/share/doc/bash/README.gz", "docs"},
	{"usr/share/doc/libssl3/changelog.Debian.gz", "docs"},
	{"usr/share/doc/python3.11/html/index.html", "docs"},
	{"usr/local/share/doc/git/RelNotes/2.0.0.txt", "docs"},
	{"usr/share/doc/bash/copyright", ""},
	{"usr/share/doc/zlib/LICENSE", ""},
	{"usr/share/doc/gawk/COPYING.gz", ""},
	{"usr/share/doc/openssl/NOTICE", ""},
	{"usr/share/doc/ca-certificates/examples/copyright", ""},
	{"usr/share/doc/x/License.txt", ""},
	{"usr/share/doc/x/LiCeNsE", "docs"}, // not every spelling
	{"usr/share/doc/x/license.txt", ""},
	{"usr/share/common-licenses/GPL-3", ""},
	{"usr/share/doc-base/bash", ""},
	// man and info pages
	{"usr/share/man/man1/ls.1.gz", "man"},
	{"usr/share/man/de/man1/ls.1.gz", "man"},
	{"usr/local/share/man/man1/node.1", "man"},
	{"usr/share/info/coreutils.info.gz", "info"},
	{"usr/share/info/dir", "info"},
	{"usr/bin/man", ""},
	{"usr/lib/man-db/libman.so", ""},
	// tmp
	{"tmp/build.log", "tmp"},
	{"tmp/.X11-unix/X0", "tmp"},
	{"tmp/a/b/c", "tmp"},
	{"var/tmp/systemd-private/x", "tmp"},
	{"tmp/LICENSE", ""},
	{"app/tmp/x", ""},
	{"usr/tmp", ""},
	// opt-in presets are off
	{"usr/share/locale/de/LC_MESSAGES/coreutils.mo", ""},
	{"usr/lib/python3/dist-packages/__pycache__/six.cpython-311.pyc", ""},
	{"usr/lib/x86_64-linux-gnu/libc.a", ""},
	// everything else
	{"etc/passwd", ""},
	{"usr/bin/bash", ""},
	{"usr/lib/x86_64-linux-gnu/libc.so.6", ""},
	{"app/server", ""},
	{"root/.bashrc", ""},
	{"root/.cache/other/x", ""},
}

func TestMatchDefaults(t *testing.T) {
	m, err := New(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range defaultCases {
		reason, drop := m.Match(tc.path, false)
		if drop != (tc.reason != "") || reason != tc.reason {
			t.Errorf("Match(%q) = %q, %v; want %q, %v", tc.path, reason, drop, tc.reason, tc.reason != "")
		}
	}
}

func TestMatchOptInPresets(t *testing.T) {
	m, err := New([]string{"gomodcache", "locales", "pycache", "static-archives"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path   string
		reason string
	}{
		// gomodcache
		{"go/pkg/mod/github.com/spf13/cobra@v1.8.0/command.go", "gomodcache"},
		{"go/pkg/mod/cache/download/github.com/spf13/cobra/@v/v1.8.0.zip", "gomodcache"},
		{"root/go/pkg/mod/golang.org/x/sys@v0.20.0/unix/syscall.go", "gomodcache"},
		{"go/pkg/mod/github.com/spf13/cobra@v1.8.0/LICENSE.txt", ""}, // license files stay
		{"go/bin/app", ""},
		{"usr/local/go/pkg/tool/linux_amd64/compile", ""},
		// locales
		{"usr/share/locale/de/LC_MESSAGES/coreutils.mo", "locales"},
		{"usr/share/locale/pt_BR/LC_MESSAGES/dpkg.mo", "locales"},
		{"usr/share/locale/eo/LC_MESSAGES/apt.mo", "locales"},
		{"usr/share/locale/en/LC_MESSAGES/x.mo", ""},
		{"usr/share/locale/en_GB/LC_MESSAGES/x.mo", ""},
		{"usr/share/locale/en@quot/LC_MESSAGES/x.mo", ""},
		{"usr/share/locale/locale.alias", ""},
		{"usr/lib/locale/locale-archive", "locales"},
		{"usr/lib/locale/de_DE.utf8/LC_CTYPE", "locales"},
		{"usr/lib/locale/C.utf8/LC_CTYPE", ""},
		{"usr/lib/locale/C.UTF-8/LC_MESSAGES/SYS_LC_MESSAGES", ""},
		{"usr/lib/locale/en_US.utf8/LC_TIME", ""},
		{"usr/share/i18n/locales/de_DE", ""},
		// pycache
		{"usr/lib/python3/dist-packages/__pycache__/six.cpython-311.pyc", "pycache"},
		{"usr/local/lib/python3.12/site-packages/requests/__pycache__/api.cpython-312.pyc", "pycache"},
		{"app/legacy/module.pyc", "pycache"},
		{"usr/lib/python2.7/x.pyo", "pycache"},
		{"usr/lib/python3/dist-packages/six.py", ""},
		// static-archives
		{"usr/lib/x86_64-linux-gnu/libc.a", "static-archives"},
		{"usr/lib/libz.a", "static-archives"},
		{"usr/lib64/libssl.a", "static-archives"},
		{"usr/local/lib/python3.12/config-3.12-x86_64-linux-gnu/libpython3.12.a", "static-archives"},
		{"usr/lib/x86_64-linux-gnu/libc_nonshared.a", ""},
		{"usr/lib/gcc/x86_64-linux-gnu/12/libgcc.a", ""},
		{"usr/lib/x86_64-linux-gnu/libc.so", ""},
		{"usr/local/go/pkg/linux_amd64/runtime.a", ""},
		{"app/vendor/lib.a", ""},
		// and the defaults are off
		{"var/lib/apt/lists/lock", ""},
		{"tmp/x", ""},
	}
	for _, tc := range tests {
		reason, drop := m.Match(tc.path, false)
		if drop != (tc.reason != "") || reason != tc.reason {
			t.Errorf("Match(%q) = %q, %v; want %q, %v", tc.path, reason, drop, tc.reason, tc.reason != "")
		}
	}
}

func TestMatchKeepsAndDropPaths(t *testing.T) {
	m, err := New([]string{"default"}, []string{"/opt/app/testdata/**", "**/*.md"}, []string{"/usr/share/doc/keepme/**", "tmp/cache.db"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path   string
		reason string
	}{
		{"opt/app/testdata/big.bin", "drop-path"},
		{"opt/app/main", ""},
		{"README.md", "drop-path"},
		{"usr/share/doc/bash/FAQ.md", "docs"}, // the preset is named first
		{"usr/share/doc/keepme/README", ""},   // --keep wins over a preset
		{"usr/share/doc/keepme/x/y.md", ""},   // and over --drop-path
		{"tmp/cache.db", ""},
		{"tmp/other", "tmp"},
		{"opt/app/testdata/LICENSE", ""}, // license files win over --drop-path
		{"opt/app/LICENSE.md", ""},
	}
	for _, tc := range tests {
		reason, drop := m.Match(tc.path, false)
		if drop != (tc.reason != "") || reason != tc.reason {
			t.Errorf("Match(%q) = %q, %v; want %q, %v", tc.path, reason, drop, tc.reason, tc.reason != "")
		}
	}
}

func TestMatchNeverDropsDirsOrWhiteouts(t *testing.T) {
	m, err := New([]string{"default", "pycache"}, []string{"**"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"var/lib/apt/lists", "var/lib/apt/lists/partial", "tmp", "usr/share/doc/bash", "a/__pycache__", "etc"} {
		if reason, drop := m.Match(p, true); drop {
			t.Errorf("directory %q dropped (%s)", p, reason)
		}
	}
	for _, p := range []string{"tmp/.wh.x", "var/lib/apt/lists/.wh..wh..opq", ".wh.etc", "usr/share/doc/.wh.bash"} {
		if reason, drop := m.Match(p, false); drop {
			t.Errorf("whiteout %q dropped (%s)", p, reason)
		}
	}
	for _, p := range []string{"", "/", "//"} {
		if _, drop := m.Match(p, false); drop {
			t.Errorf("the root (%q) dropped", p)
		}
	}
	// "**" drops every other file, with the reason drop-path.
	if reason, drop := m.Match("etc/passwd", false); !drop || reason != ReasonDropPath {
		t.Errorf("etc/passwd: %q, %v", reason, drop)
	}
}

func TestNewSelection(t *testing.T) {
	var defaults, all []string
	for _, p := range Presets() {
		all = append(all, p.Name)
		if p.Default {
			defaults = append(defaults, p.Name)
		}
	}
	slices.Sort(defaults)
	without := func(names []string, drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(names), func(n string) bool { return slices.Contains(drop, n) })
	}
	tests := []struct {
		presets []string
		want    []string
	}{
		{nil, defaults},
		{[]string{""}, defaults},
		{[]string{"default"}, defaults},
		{[]string{"none"}, nil},
		{[]string{"apt", "pip"}, []string{"apt", "pip"}},
		{[]string{" apt ", "", "pip"}, []string{"apt", "pip"}},
		{[]string{"default", "pycache"}, append(slices.Clone(defaults), "pycache")},
		{[]string{"-docs", "-man"}, without(defaults, "docs", "man")},
		{[]string{"default", "-tmp"}, without(defaults, "tmp")},
		{[]string{"none", "gocache"}, []string{"gocache"}},
		{[]string{"apt", "none"}, nil},
		{[]string{"apt", "-apt"}, nil},
		{all, all},
	}
	for _, tc := range tests {
		m, err := New(tc.presets, nil, nil)
		if err != nil {
			t.Fatalf("New(%q): %v", tc.presets, err)
		}
		want := slices.Sorted(slices.Values(tc.want))
		if diff := cmp.Diff(want, m.presetNames); diff != "" {
			t.Errorf("New(%q) presets (-want +got):\n%s", tc.presets, diff)
		}
	}
}

func TestNewErrors(t *testing.T) {
	_, err := New([]string{"apt", "cache"}, nil, nil)
	if err == nil {
		t.Fatal("unknown preset accepted")
	}
	for _, want := range []string{`"cache"`, "default", "none", "apt", "static-archives"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	for _, bad := range [][]string{{"-nope"}, {"-default"}, {"-none"}, {"Apt"}} {
		if _, err := New(bad, nil, nil); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
	if _, err := New(nil, []string{"a/[b"}, nil); err == nil || !strings.Contains(err.Error(), "--drop-path") {
		t.Errorf("bad --drop-path: %v", err)
	}
	if _, err := New(nil, nil, []string{"../x"}); err == nil || !strings.Contains(err.Error(), "--keep") {
		t.Errorf("bad --keep: %v", err)
	}
}

func TestNoneAndEmpty(t *testing.T) {
	m, err := New([]string{"none"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Empty() {
		t.Error("--drop=none is not Empty")
	}
	for _, tc := range defaultCases {
		if reason, drop := m.Match(tc.path, false); drop {
			t.Errorf("--drop=none dropped %q (%s)", tc.path, reason)
		}
	}
	if m, _ := New([]string{"none"}, []string{"x/**"}, nil); m.Empty() {
		t.Error("a --drop-path is Empty")
	}
	if m, _ := New(nil, nil, nil); m.Empty() {
		t.Error("the default set is Empty")
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		presets, drops, keeps []string
		want                  string
	}{
		{nil, nil, nil, "drop=apk,apt,dnf,docs,dpkg,gocache,info,man,npm,pip,tmp"},
		{[]string{"none"}, nil, nil, "drop=none"},
		{[]string{"pip", "apt"}, []string{"/b/**", "a/**", "a/**"}, []string{"z", "/y y/**"}, `drop=apt,pip drop-path=a/**,b/** keep="y y/**",z`},
		{[]string{"-docs", "pycache"}, nil, []string{"k"}, "drop=apk,apt,dnf,dpkg,gocache,info,man,npm,pip,pycache,tmp keep=k"},
	}
	for _, tc := range tests {
		m, err := New(tc.presets, tc.drops, tc.keeps)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestPresets(t *testing.T) {
	ps := Presets()
	seen := map[string]bool{}
	sawOptIn := false
	for _, p := range ps {
		if seen[p.Name] || p.Name == "default" || p.Name == "none" || strings.HasPrefix(p.Name, "-") || strings.ContainsAny(p.Name, ", ") {
			t.Errorf("bad or duplicate preset name %q", p.Name)
		}
		seen[p.Name] = true
		if p.Default && sawOptIn {
			t.Errorf("default preset %s after an opt-in one", p.Name)
		}
		sawOptIn = sawOptIn || !p.Default
		if p.Description == "" || len(p.Globs) == 0 {
			t.Errorf("preset %s lacks a description or globs", p.Name)
		}
		for _, g := range append(slices.Clone(p.Globs), p.Except...) {
			if _, err := Glob(g); err != nil || strings.HasPrefix(g, "/") {
				t.Errorf("preset %s: glob %q: %v", p.Name, g, err)
			}
		}
	}
	// Presets returns copies.
	ps[0].Globs[0] = "changed"
	if Presets()[0].Globs[0] == "changed" {
		t.Error("Presets shares its slices")
	}
	keep := DefaultKeep()
	keep[0] = "changed"
	if DefaultKeep()[0] == "changed" {
		t.Error("DefaultKeep shares its slice")
	}
}

func TestTable(t *testing.T) {
	got := Table()
	for _, p := range Presets() {
		for _, g := range p.Globs {
			if !strings.Contains(got, g) {
				t.Errorf("table lacks %s glob %s", p.Name, g)
			}
		}
	}
	golden := filepath.Join("testdata", "table.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("Table() (-want +got):\n%s\nrun go test -update if the change is meant", diff)
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	m, err := New([]string{"default", "pycache", "locales", "static-archives", "gomodcache"}, []string{"**/*.md"}, []string{"opt/**"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"usr/share/doc/bash/README.gz", "usr/lib/x86_64-linux-gnu/libc.so.6", "usr/share/doc/bash/copyright"} {
		if n := testing.AllocsPerRun(100, func() { m.Match(p, false) }); n != 0 {
			t.Errorf("Match(%q) allocates %v times per call", p, n)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	m, err := New([]string{"default", "pycache", "locales", "static-archives", "gomodcache"}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	paths := make([]string, len(defaultCases))
	for i, tc := range defaultCases {
		paths[i] = tc.path
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.Match(paths[i%len(paths)], false)
	}
}
