// Package drop is the policy of what a rewrite leaves out of an image:
// named presets of paths an image does not need at run time (package
// manager caches, documentation, temporary files), extra globs, and the
// exceptions that keep license files and whatever the user names.
//
// It knows nothing about tar or layers: Matcher.Match answers for one
// clean path at a time.
package drop

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/layerslim/layerslim/internal/whiteout"
)

// ReasonDropPath is the reason Match gives for a path matched by a
// --drop-path glob (and no preset).
const ReasonDropPath = "drop-path"

// Matcher decides which entries are dropped. It is safe for concurrent use.
type Matcher struct {
	presets []compiledPreset // selected, in the order of Presets()
	// The preset globs and --drop-path globs, as rules ranked by preset
	// (--drop-path last): those whose first element is a literal, by that
	// element, and the others.
	anchored map[string][]rule
	floating []rule
	keeps    []*Pattern // --keep globs, then DefaultKeep
	// for String
	presetNames []string
	dropText    []string
	keepText    []string
}

type compiledPreset struct {
	name   string
	except []*Pattern
}

type rule struct {
	pat  *Pattern
	rank int // index in presets; len(presets) for --drop-path
}

// New builds a Matcher.
//
// presets are the names given to --drop, split at commas by the caller,
// applied in order to a set of presets: a name adds that preset, "-name"
// removes it, "default" adds the default ones and "none" empties the set.
// The set starts empty, except when the list is empty or begins with a
// removal: then it starts as the default set, so no --drop means the
// defaults and "--drop=-docs" means the defaults but docs. Empty names are
// ignored. An unknown name is an error that lists the valid ones.
//
// dropPaths are extra globs (--drop-path); Match reports them with the
// reason "drop-path". keeps are globs (--keep) that win over every preset
// and drop path, as do the license files of DefaultKeep. (A hardlink to a
// dropped file is dropped all the same: see Links and rewrite.Drop.)
func New(presets []string, dropPaths []string, keeps []string) (*Matcher, error) {
	sel, err := selectPresets(presets)
	if err != nil {
		return nil, err
	}
	m := &Matcher{anchored: map[string][]rule{}}
	for _, p := range Presets() {
		if !sel[p.Name] {
			continue
		}
		cp := compiledPreset{name: p.Name}
		for _, g := range p.Except {
			cp.except = append(cp.except, mustGlob(g))
		}
		for _, g := range p.Globs {
			m.addRule(rule{pat: mustGlob(g), rank: len(m.presets)})
		}
		m.presets = append(m.presets, cp)
		m.presetNames = append(m.presetNames, p.Name)
	}
	slices.Sort(m.presetNames)
	drops, dropText, err := compileAll("--drop-path", dropPaths)
	if err != nil {
		return nil, err
	}
	for _, g := range drops {
		m.addRule(rule{pat: g, rank: len(m.presets)})
	}
	m.dropText = dropText
	if m.keeps, m.keepText, err = compileAll("--keep", keeps); err != nil {
		return nil, err
	}
	for _, g := range defaultKeep {
		m.keeps = append(m.keeps, mustGlob(g))
	}
	return m, nil
}

func selectPresets(names []string) (map[string]bool, error) {
	known := map[string]bool{}
	defaults := map[string]bool{}
	for _, p := range presets {
		known[p.Name] = true
		if p.Default {
			defaults[p.Name] = true
		}
	}
	var given []string
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" {
			given = append(given, n)
		}
	}
	sel := map[string]bool{}
	if len(given) == 0 || strings.HasPrefix(given[0], "-") {
		for n := range defaults {
			sel[n] = true
		}
	}
	for _, n := range given {
		name, remove := strings.CutPrefix(n, "-")
		switch {
		case name == "default" && !remove:
			for d := range defaults {
				sel[d] = true
			}
		case name == "none" && !remove:
			clear(sel)
		case known[name]:
			if remove {
				delete(sel, name)
			} else {
				sel[name] = true
			}
		default:
			return nil, fmt.Errorf("unknown drop preset %q (valid: %s)", n, strings.Join(validNames(), ", "))
		}
	}
	return sel, nil
}

func validNames() []string {
	names := []string{"default", "none"}
	for _, p := range presets {
		names = append(names, p.Name)
	}
	return names
}

// compileAll compiles globs given to flag, and returns them with their
// canonical texts (no leading "/"), sorted and without duplicates.
func compileAll(flag string, globs []string) ([]*Pattern, []string, error) {
	var pats []*Pattern
	var texts []string
	for _, g := range globs {
		p, err := Glob(g)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", flag, err)
		}
		pats = append(pats, p)
		texts = append(texts, strings.TrimLeft(g, "/"))
	}
	slices.Sort(texts)
	return pats, slices.Compact(texts), nil
}

// Match reports whether the entry at clean path p (relative, as
// whiteout.Clean gives it) is dropped, and why: the preset's name, or
// "drop-path". Directories are never dropped (an emptied
// var/lib/apt/lists still exists), nor are whiteouts and opaque markers.
// --keep globs and the license files of DefaultKeep win over everything
// else. When several presets match, the first in Presets order is named.
func (m *Matcher) Match(p string, isDir bool) (reason string, drop bool) {
	if isDir || p == "" {
		return "", false
	}
	if _, _, ok := whiteout.Parse(p); ok {
		return "", false
	}
	var buf [48]string
	elems := splitPath(p, buf[:0])
	if len(elems) == 0 {
		return "", false
	}
	reason = m.rule(p, elems)
	if reason == "" {
		return "", false
	}
	// Most paths match no rule, so the exceptions are looked at last.
	if matchAny(m.keeps, p, elems) {
		return "", false
	}
	return reason, true
}

func (m *Matcher) addRule(r rule) {
	if lit, ok := r.pat.firstLiteral(); ok {
		m.anchored[lit] = append(m.anchored[lit], r)
	} else {
		m.floating = append(m.floating, r)
	}
}

// rule names the first preset, or else "drop-path", whose globs match.
// Only the rules that can match the path's first element are tried, in
// rank order.
func (m *Matcher) rule(p string, elems []string) string {
	a, f := m.anchored[elems[0]], m.floating
	excluded := -1 // a preset whose exceptions hold for p
	for len(a) > 0 || len(f) > 0 {
		var r rule
		if len(f) == 0 || len(a) > 0 && a[0].rank <= f[0].rank {
			r, a = a[0], a[1:]
		} else {
			r, f = f[0], f[1:]
		}
		if r.rank == excluded || !r.pat.matchElems(p, elems) {
			continue
		}
		if r.rank == len(m.presets) {
			return ReasonDropPath
		}
		cp := &m.presets[r.rank]
		if !matchAny(cp.except, p, elems) {
			return cp.name
		}
		excluded = r.rank
	}
	return ""
}

func matchAny(pats []*Pattern, p string, elems []string) bool {
	for _, x := range pats {
		if x.matchElems(p, elems) {
			return true
		}
	}
	return false
}

// Empty reports whether m drops nothing at all (--drop=none and no
// --drop-path), so a caller can leave the filter out.
func (m *Matcher) Empty() bool { return len(m.anchored) == 0 && len(m.floating) == 0 }

// String is the canonical text of the configuration, for provenance:
// "drop=apt,docs,… drop-path=… keep=…", each list sorted, the last two
// only when given. Values holding spaces, commas or quotes are quoted.
func (m *Matcher) String() string {
	drop := "none"
	if len(m.presetNames) > 0 {
		drop = strings.Join(m.presetNames, ",")
	}
	parts := []string{"drop=" + drop}
	if len(m.dropText) > 0 {
		parts = append(parts, "drop-path="+joinQuoted(m.dropText))
	}
	if len(m.keepText) > 0 {
		parts = append(parts, "keep="+joinQuoted(m.keepText))
	}
	return strings.Join(parts, " ")
}

func joinQuoted(vs []string) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		if strings.ContainsAny(v, " ,\"'\t\n") {
			v = strconv.Quote(v)
		}
		out[i] = v
	}
	return strings.Join(out, ",")
}
