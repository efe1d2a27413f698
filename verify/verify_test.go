package verify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/verify"
)

// base is a small filesystem with one entry of every kind.
func base() []ent {
	return []ent{
		dir("etc"),
		file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
		file("etc/motd", "hello\n"),
		file("etc/shadow", "root:*::\n", mode(0o640), owner(0, 42)),
		dir("usr"),
		dir("usr/bin"),
		file("usr/bin/tool", "#!/bin/sh\necho tool\n", mode(0o755)),
		hardlink("usr/bin/tool2", "usr/bin/tool"),
		file("usr/bin/su", "setuid\n", mode(0o4755)),
		file("usr/bin/ping", "ping\n", mode(0o755), xattr("security.capability", "\x01\x00\x00\x02\x00\x20\x00\x00")),
		symlink("bin", "usr/bin"),
		dir("dev"),
		chardev("dev/null", device(1, 3)),
		dir("tmp", mode(0o1777)),
		dir("usr/share"),
		dir("usr/share/doc"),
		dir("usr/share/doc/pkg"),
		file("usr/share/doc/pkg/README", "read me\n"),
		file("usr/share/doc/pkg/copyright", "GPL\n"),
	}
}

// dropDocs allows files under usr/share/doc to be dropped, but copyright.
func dropDocs(p string, isDir bool) (string, bool) {
	if !isDir && strings.HasPrefix(p, "usr/share/doc/") && !strings.HasSuffix(p, "/copyright") {
		return "docs", true
	}
	return "", false
}

func TestImage(t *testing.T) {
	later := mtime.Add(time.Second)
	noReadme := replace(base(), "usr/share/doc/pkg/README", ent{})
	for _, tc := range []struct {
		name    string
		src     [][]ent
		dst     [][]ent
		dstCfg  func(*v1.ConfigFile)
		dropped func(string, bool) (string, bool)
		want    []got
	}{
		{name: "identical", src: [][]ent{base()}, dst: [][]ent{base()}},
		{
			name: "identical, split into other layers",
			src:  [][]ent{base()},
			dst:  [][]ent{base()[:6], base()[6:]},
		},
		{
			name: "dropped path allowed", src: [][]ent{base()}, dst: [][]ent{noReadme}, dropped: dropDocs,
			want: []got{{"usr/share/doc/pkg/README", "missing", verify.Dropped}},
		},
		{
			name: "dropped path not allowed", src: [][]ent{base()}, dst: [][]ent{noReadme},
			want: []got{{"usr/share/doc/pkg/README", "missing", verify.Violation}},
		},
		{
			name: "kept licence dropped", src: [][]ent{base()}, dropped: dropDocs,
			dst:  [][]ent{replace(noReadme, "usr/share/doc/pkg/copyright", ent{})},
			want: []got{{"usr/share/doc/pkg/README", "missing", verify.Dropped}, {"usr/share/doc/pkg/copyright", "missing", verify.Violation}},
		},
		{
			// rewrite.Drop leaves out a hardlink whose target it drops,
			// rather than let it dangle; a chain of links goes with it.
			name: "hardlink to a dropped file", dropped: dropDocs,
			src:  [][]ent{base(), {hardlink("usr/bin/readme", "usr/share/doc/pkg/README"), hardlink("usr/bin/readme2", "usr/bin/readme")}},
			dst:  [][]ent{noReadme},
			want: []got{{"usr/bin/readme", "missing", verify.Dropped}, {"usr/bin/readme2", "missing", verify.Dropped}, {"usr/share/doc/pkg/README", "missing", verify.Dropped}},
		},
		{
			name: "the file a dropped hardlink names", dropped: dropDocs,
			src:  [][]ent{base(), {hardlink("usr/share/doc/pkg/su", "usr/bin/su")}},
			dst:  [][]ent{replace(base(), "usr/bin/su", ent{})},
			want: []got{{"usr/bin/su", "missing", verify.Violation}, {"usr/share/doc/pkg/su", "missing", verify.Dropped}},
		},
		{
			name: "added file", src: [][]ent{base()}, dst: [][]ent{append(base(), file("etc/new", "x"))},
			want: []got{{"etc/new", "added", verify.Violation}},
		},
		{
			name: "content", src: [][]ent{base()}, dst: [][]ent{replace(base(), "etc/motd", file("etc/motd", "hullo\n"))},
			want: []got{{"etc/motd", "content", verify.Violation}},
		},
		{
			name: "mode", src: [][]ent{base()}, dst: [][]ent{replace(base(), "usr/bin/su", file("usr/bin/su", "setuid\n", mode(0o755)))},
			want: []got{{"usr/bin/su", "mode", verify.Violation}},
		},
		{
			name: "sticky bit of a directory", src: [][]ent{base()}, dst: [][]ent{replace(base(), "tmp/", dir("tmp", mode(0o777)))},
			want: []got{{"tmp", "mode", verify.Violation}},
		},
		{
			name: "owner", src: [][]ent{base()}, dst: [][]ent{replace(base(), "etc/shadow", file("etc/shadow", "root:*::\n", mode(0o640)))},
			want: []got{{"etc/shadow", "owner", verify.Violation}},
		},
		{
			name: "xattr lost", src: [][]ent{base()}, dst: [][]ent{replace(base(), "usr/bin/ping", file("usr/bin/ping", "ping\n", mode(0o755)))},
			want: []got{{"usr/bin/ping", "xattrs", verify.Violation}},
		},
		{
			name: "file mtime", src: [][]ent{base()}, dst: [][]ent{replace(base(), "etc/passwd", file("etc/passwd", "root:x:0:0::/root:/bin/sh\n", modTime(later)))},
			want: []got{{"etc/passwd", "mtime", verify.Violation}},
		},
		{
			name: "directory mtime", src: [][]ent{base()}, dst: [][]ent{replace(base(), "etc/", dir("etc", modTime(later)))},
			want: []got{{"etc", "mtime", verify.Violation}},
		},
		{
			name: "implicit directory", src: [][]ent{base()}, dst: [][]ent{replace(base(), "dev/", ent{})},
			want: []got{{"dev", "type", verify.Violation}},
		},
		{
			name: "symlink target", src: [][]ent{base()}, dst: [][]ent{replace(base(), "bin", symlink("bin", "/usr/bin"))},
			want: []got{{"bin", "link", verify.Violation}},
		},
		{
			name: "device numbers", src: [][]ent{base()}, dst: [][]ent{replace(base(), "dev/null", chardev("dev/null", device(1, 5)))},
			want: []got{{"dev/null", "device", verify.Violation}},
		},
		{
			name: "type", src: [][]ent{base()}, dst: [][]ent{replace(base(), "bin", dir("bin"))},
			want: []got{{"bin", "type", verify.Violation}},
		},
		{
			name: "hardlink broken", src: [][]ent{base()},
			dst:  [][]ent{replace(base(), "usr/bin/tool2", file("usr/bin/tool2", "#!/bin/sh\necho tool\n", mode(0o755)))},
			want: []got{{"usr/bin/tool", "hardlink", verify.Violation}, {"usr/bin/tool2", "hardlink", verify.Violation}},
		},
		{
			name: "hardlink added", src: [][]ent{replace(base(), "usr/bin/tool2", file("usr/bin/tool2", "#!/bin/sh\necho tool\n", mode(0o755)))},
			dst:  [][]ent{base()},
			want: []got{{"usr/bin/tool", "hardlink", verify.Violation}, {"usr/bin/tool2", "hardlink", verify.Violation}},
		},
		{
			name: "hardlink partner dropped", src: [][]ent{base()}, dropped: func(p string, _ bool) (string, bool) { return "test", p == "usr/bin/tool2" },
			dst:  [][]ent{replace(base(), "usr/bin/tool2", ent{})},
			want: []got{{"usr/bin/tool2", "missing", verify.Dropped}},
		},
		{
			name: "hardlink to a file of a lower layer", src: [][]ent{base()},
			dst: [][]ent{replace(base(), "usr/bin/tool2", ent{}), {hardlink("usr/bin/tool2", "usr/bin/tool")}},
		},
		{
			name: "config", src: [][]ent{base()}, dst: [][]ent{base()},
			dstCfg: func(c *v1.ConfigFile) { c.Config.Env = c.Config.Env[:1]; c.Config.User = "root" },
			want:   []got{{"config:Env", "config", verify.Violation}, {"config:User", "config", verify.Violation}},
		},
		{
			name: "config: empty and missing are the same", src: [][]ent{base()}, dst: [][]ent{base()},
			dstCfg: func(c *v1.ConfigFile) { c.Config.Cmd = []string{}; c.Config.Volumes = map[string]struct{}{} },
		},
		{
			name: "whiteouts and opaque directories, squashed",
			src:  whiteoutLayers(),
			dst:  [][]ent{squashed()},
		},
		{
			// The trees agree, but DST's layer puts whiteouts after the
			// entries beside them, which layerslim never writes.
			name: "whiteouts and opaque directories, on both sides",
			src:  whiteoutLayers(),
			dst:  append(whiteoutLayers()[:1], concat(whiteoutLayers()[1], whiteoutLayers()[2])),
			want: []got{{"etc/.wh.passwd", verify.WhatOrder, verify.Violation}, {"srv/data/.wh..wh..opq", verify.WhatOrder, verify.Violation}},
		},
		{
			name: "a squash that resurrects a deleted file",
			src:  whiteoutLayers(),
			dst:  [][]ent{append(squashed(), file("etc/motd", "hello\n"))},
			want: []got{{"etc/motd", "added", verify.Violation}},
		},
		{
			name: "a squash that ignores an opaque directory",
			src:  whiteoutLayers(),
			dst:  [][]ent{append(squashed(), file("srv/data/old-1.txt", "1"))},
			want: []got{{"srv/data/old-1.txt", "added", verify.Violation}},
		},
		{
			name: "a squash that loses an overwrite",
			src:  whiteoutLayers(),
			dst:  [][]ent{replace(squashed(), "app/config.yaml", file("app/config.yaml", "v: 1\n", owner(1000, 1000)))},
			want: []got{{"app/config.yaml", "content", verify.Violation}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := imageOf(t, nil, tc.src...)
			dst := imageOf(t, tc.dstCfg, tc.dst...)
			res, err := verify.Image(context.Background(), src, dst, verify.Options{Dropped: tc.dropped, TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, summarize(res)); diff != "" {
				t.Errorf("differences (-want +got):\n%s\n%+v", diff, res.Differences)
			}
			violations := 0
			for _, g := range tc.want {
				if g.Verdict == verify.Violation {
					violations++
				}
			}
			if res.Violations != violations {
				t.Errorf("Violations = %d, want %d", res.Violations, violations)
			}
			if res.Platform != "linux/amd64" || res.Paths < 20 {
				t.Errorf("platform %q, %d paths", res.Platform, res.Paths)
			}
		})
	}
}

// whiteoutLayers are three layers: a base, then overwrites, a whiteout, an
// opaque directory and a directory replaced by a file, then a layer that
// deletes and recreates in one go.
func whiteoutLayers() [][]ent {
	return [][]ent{
		concat(base(), []ent{
			dir("app", owner(1000, 1000)),
			file("app/config.yaml", "v: 1\n", owner(1000, 1000)),
			dir("srv"), dir("srv/data"),
			file("srv/data/old-1.txt", "1"), file("srv/data/old-2.txt", "2"),
			dir("var"), dir("var/cache"), dir("var/cache/apt"), file("var/cache/apt/pkgcache.bin", "cache"),
			dir("opt"), dir("opt/thing"), file("opt/thing/a", "a"),
		}),
		{
			// The opaque marker comes after an entry of the same layer: it
			// still hides only what lower layers put there.
			file("srv/data/new.txt", "new"),
			opaque("srv/data"),
			whiteout("etc", "motd"),
			file("app/config.yaml", "v: 2\n", owner(1000, 1000)),
			// A file replaces a directory and its subtree.
			file("opt/thing", "now a file"),
			// The whiteout of a directory deletes what is below it.
			whiteout("var/cache", "apt"),
		},
		{
			// Deleted and recreated in the same layer; the whiteout comes
			// last and still applies to the lower layers only.
			file("etc/passwd", "root:x:0:0::/root:/bin/bash\n"),
			whiteout("etc", "passwd"),
			file("app/config.yaml", "v: 3\n", owner(1000, 1000)),
			file("app/config.yaml", "v: 4\n", owner(1000, 1000)), // a later entry of the same layer wins
		},
	}
}

// squashed is whiteoutLayers merged by hand.
func squashed() []ent {
	b := base()
	b = replace(b, "etc/motd", ent{})
	b = replace(b, "etc/passwd", file("etc/passwd", "root:x:0:0::/root:/bin/bash\n"))
	return concat(b, []ent{
		dir("app", owner(1000, 1000)),
		file("app/config.yaml", "v: 4\n", owner(1000, 1000)),
		dir("srv"), dir("srv/data"),
		file("srv/data/new.txt", "new"),
		dir("var"), dir("var/cache"),
		dir("opt"), file("opt/thing", "now a file"),
	})
}

func TestImageHardlinkToMissingFile(t *testing.T) {
	src := imageOf(t, nil, base())
	dst := imageOf(t, nil, append(base(), hardlink("usr/bin/ghost", "usr/bin/nothing")))
	_, err := verify.Image(context.Background(), src, dst, verify.Options{})
	if err == nil || !strings.Contains(err.Error(), "usr/bin/ghost") || !strings.Contains(err.Error(), "output") {
		t.Errorf("err = %v, want one naming the output and usr/bin/ghost", err)
	}
}
