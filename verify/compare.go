package verify

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// compareStreams compares two merged filesystems path by path, reading
// them side by side in path order, with their hardlinks as their first
// passes resolved them. It returns the number of paths compared and the
// differences (unsorted).
func compareStreams(ss, ds *imageStream, dropped func(string, bool) (string, bool)) (int, []Difference, error) {
	si, di := ss.links, ds.links
	c := &pathComparer{
		slinks: si.links, shas: func(p string) bool { return si.has[p] }, dhas: func(p string) bool { return di.has[p] },
		sl: si.groups, dl: di.groups, dropped: dropped,
	}
	sp, sn, sok, err := ss.next()
	if err != nil {
		return 0, nil, err
	}
	dp, dn, dok, err := ds.next()
	if err != nil {
		return 0, nil, err
	}
	for sok || dok {
		order := 0
		switch {
		case !dok:
			order = -1
		case !sok:
			order = 1
		default:
			order = cmpPath(sp, dp)
		}
		switch {
		case order < 0:
			c.visit(displayPath(sp), sn, nil)
			sp, sn, sok, err = ss.next()
		case order > 0:
			c.visit(displayPath(dp), nil, dn)
			dp, dn, dok, err = ds.next()
		default:
			c.visit(displayPath(sp), sn, dn)
			if sp, sn, sok, err = ss.next(); err == nil {
				dp, dn, dok, err = ds.next()
			}
		}
		if err != nil {
			return 0, nil, err
		}
	}
	acceptEmptiedDirs(c.diffs)
	return c.n, c.diffs, nil
}

// pathComparer compares two merged filesystems one path at a time.
type pathComparer struct {
	slinks     map[string]string   // SRC's hardlinks (tree.links)
	shas, dhas func(string) bool   // whether each has a path (one of a hardlink group)
	sl, dl     map[string][]string // hardlink groups
	dropped    func(string, bool) (string, bool)
	n          int
	diffs      []Difference
}

// visit compares the nodes at p (nil where a side has none).
func (c *pathComparer) visit(p string, s, d *node) {
	c.n++
	switch {
	case d == nil:
		diff := Difference{Path: p, What: WhatMissing, Source: describe(s), Output: "(missing)", Verdict: Violation, Reason: "not dropped by the rewrite options"}
		if c.dropped != nil {
			if reason, ok := c.dropped(p, s.typ == tar.TypeDir); ok {
				diff.Verdict, diff.Reason = Dropped, reason
			} else if reason, ok := linkToDropped(c.slinks, p, c.dropped); ok && s.typ != tar.TypeDir {
				diff.Verdict, diff.Reason = Dropped, reason
			}
		}
		if s.debugFile && diff.Verdict == Violation {
			diff.Verdict, diff.Reason = Dropped, "separate debug file, moved to the debug image"
		}
		c.diffs = append(c.diffs, diff)
	case s == nil:
		c.diffs = append(c.diffs, Difference{Path: p, What: WhatAdded, Source: "(missing)", Output: describe(d), Verdict: Violation, Reason: "not in SRC"})
	default:
		c.diffs = append(c.diffs, compareNodes(p, s, d)...)
		so, do := linkedWith(c.sl[p], p, c.dhas), linkedWith(c.dl[p], p, c.shas)
		if !slices.Equal(so, do) {
			c.diffs = append(c.diffs, Difference{Path: p, What: WhatHardlink, Source: describeLinks(so), Output: describeLinks(do), Verdict: Violation})
		}
	}
}

// acceptEmptiedDirs accepts a missing implicit directory (one no entry
// described, made for paths below it) when everything below it is missing
// and allowed to be: it goes with them, in any applier. Directories are
// looked at deepest first, so a chain of them goes together.
func acceptEmptiedDirs(diffs []Difference) {
	for i := len(diffs) - 1; i >= 0; i-- {
		d := &diffs[i]
		if d.What != WhatMissing || d.Verdict != Violation || d.Source != "directory (implicit)" {
			continue
		}
		below := false
		for _, e := range diffs {
			if strings.HasPrefix(e.Path, d.Path+"/") {
				if e.Verdict == Violation || e.What != WhatMissing {
					below = false
					break
				}
				below = true
			}
		}
		if below {
			d.Verdict, d.Reason = Dropped, "implicit directory of dropped or moved paths only"
		}
	}
}

// linkedWith returns the paths of group, other than p, that the other tree
// also has: a hardlink partner dropped from one side does not count.
func linkedWith(group []string, p string, otherHas func(string) bool) []string {
	var out []string
	for _, q := range group {
		if q != p && otherHas(q) {
			out = append(out, q)
		}
	}
	return out
}

func describeLinks(ps []string) string {
	switch {
	case len(ps) == 0:
		return "not hardlinked"
	case len(ps) > 3:
		return fmt.Sprintf("hardlinked with %s and %d more", strings.Join(ps[:3], ", "), len(ps)-3)
	}
	return "hardlinked with " + strings.Join(ps, ", ")
}

// compareNodes lists the differences between two nodes at the same path.
func compareNodes(p string, s, d *node) []Difference {
	if s.typ != d.typ || s.implicit != d.implicit {
		return []Difference{{Path: p, What: WhatType, Source: describe(s), Output: describe(d), Verdict: Violation}}
	}
	var diffs []Difference
	add := func(what, src, out string) {
		diffs = append(diffs, Difference{Path: p, What: what, Source: src, Output: out, Verdict: Violation})
	}
	// Symlinks have no permissions of their own on Linux.
	if s.typ != tar.TypeSymlink && s.mode != d.mode {
		add(WhatMode, fmt.Sprintf("%04o", s.mode), fmt.Sprintf("%04o", d.mode))
	}
	if s.uid != d.uid || s.gid != d.gid {
		add(WhatOwner, fmt.Sprintf("%d:%d", s.uid, s.gid), fmt.Sprintf("%d:%d", d.uid, d.gid))
	}
	if !maps.Equal(s.xattrs, d.xattrs) {
		add(WhatXattrs, describeXattrs(s.xattrs), describeXattrs(d.xattrs))
	}
	if s.link != d.link {
		add(WhatLink, s.link, d.link)
	}
	if !s.mtime.Equal(d.mtime) {
		add(WhatMtime, describeTime(s.mtime), describeTime(d.mtime))
	}
	if s.major != d.major || s.minor != d.minor {
		add(WhatDevice, fmt.Sprintf("%d:%d", s.major, s.minor), fmt.Sprintf("%d:%d", d.major, d.minor))
	}
	if s.typ == tar.TypeReg && (s.sum != d.sum || s.size != d.size) {
		diff := Difference{Path: p, What: WhatContent, Source: describeContent(s), Output: describeContent(d), Verdict: Violation}
		switch {
		case s.elf != nil && d.elf != nil && *s.elf == *d.elf:
			diff.Verdict, diff.Reason = ELFStripped, "loadable segments identical"
		case s.elf != nil && d.elf != nil:
			diff.Reason = "ELF loadable segments differ"
		}
		diffs = append(diffs, diff)
	}
	return diffs
}

func describe(n *node) string {
	switch n.typ {
	case tar.TypeDir:
		if n.implicit {
			return "directory (implicit)"
		}
		return "directory"
	case tar.TypeReg:
		if n.elf != nil {
			return fmt.Sprintf("ELF file, %d bytes", n.size)
		}
		return fmt.Sprintf("file, %d bytes", n.size)
	case tar.TypeSymlink:
		return "symlink to " + n.link
	case tar.TypeChar:
		return fmt.Sprintf("character device %d:%d", n.major, n.minor)
	case tar.TypeBlock:
		return fmt.Sprintf("block device %d:%d", n.major, n.minor)
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("tar type %q", n.typ)
}

func describeContent(n *node) string {
	return fmt.Sprintf("sha256:%x…, %d bytes", n.sum[:6], n.size)
}

func describeTime(t time.Time) string {
	if t.IsZero() {
		return "(none)"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func describeXattrs(x map[string]string) string {
	if len(x) == 0 {
		return "(none)"
	}
	keys := slices.Sorted(maps.Keys(x))
	parts := make([]string, len(keys))
	for i, k := range keys {
		v := fmt.Sprintf("%q", x[k])
		if len(v) > 40 {
			v = v[:37] + "…"
		}
		parts[i] = k + "=" + v
	}
	return strings.Join(parts, " ")
}

// compareConfig compares the config fields a rewrite must keep.
func compareConfig(s, d *v1.ConfigFile) []Difference {
	sc, dc := s.Config, d.Config
	fields := []struct {
		name string
		a, b any
	}{
		{"Entrypoint", sc.Entrypoint, dc.Entrypoint},
		{"Cmd", sc.Cmd, dc.Cmd},
		{"Env", sc.Env, dc.Env},
		{"Labels", sc.Labels, dc.Labels},
		{"User", sc.User, dc.User},
		{"WorkingDir", sc.WorkingDir, dc.WorkingDir},
		{"ExposedPorts", sc.ExposedPorts, dc.ExposedPorts},
		{"Volumes", sc.Volumes, dc.Volumes},
		{"StopSignal", sc.StopSignal, dc.StopSignal},
		{"Shell", sc.Shell, dc.Shell},
		{"Healthcheck", sc.Healthcheck, dc.Healthcheck},
		{"OnBuild", sc.OnBuild, dc.OnBuild},
		{"os", s.OS, d.OS},
		{"architecture", s.Architecture, d.Architecture},
		{"variant", s.Variant, d.Variant},
		{"os.version", s.OSVersion, d.OSVersion},
	}
	var diffs []Difference
	for _, f := range fields {
		a, b := jsonText(f.a), jsonText(f.b)
		if a != b {
			diffs = append(diffs, Difference{Path: "config:" + f.name, What: WhatConfig, Source: a, Output: b, Verdict: Violation})
		}
	}
	return diffs
}

// jsonText renders a config value; every kind of empty value is "(none)",
// so a missing field equals an empty one.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	switch s := string(b); s {
	case "null", "[]", "{}", `""`:
		return "(none)"
	default:
		return s
	}
}
