package batch

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/layerslim/layerslim/internal/imageref"
)

// Item is one image to process: what an entry of the plan names once its
// repository's tags are listed and its destination template is filled in.
type Item struct {
	Src, Dst string
	Command  string
	Options  Options // the plan's defaults with the entry's options over them
	Where    string  // the plan entry, file:line
	// Err is set when the entry could not be expanded (its repository
	// could not be listed, its template failed); the item then fails.
	Err error
}

// TagLister lists the tags of a registry repository.
type TagLister func(ctx context.Context, repo string) ([]string, error)

// Fields are what a destination template sees of the source.
type Fields struct {
	Registry   string // "registry.example:5000"
	Repository string // registry and path: "registry.example:5000/team/web"
	Path       string // the path alone: "team/web"
	Tag        string // "1.4" ("" for a source by digest)
}

// Expand turns a plan into items: each repository entry becomes one item
// per tag matching one of its patterns, in sorted tag order; every
// destination is a template over the source's Fields (a destination without
// "{{" is itself). An entry without dst uses dstTemplate. A listed tag that
// is the destination of another item is left out (so tags ["1.*"] with dst
// "{{.Repository}}:{{.Tag}}-slim" does not take 1.4-slim for a source on a
// rerun). Items that name
// the same source and destination twice are kept once; two sources that
// write to one destination are an error. An entry whose repository cannot be
// listed, or whose template fails, gives a failed item rather than an error,
// so the rest of the plan still runs.
func Expand(ctx context.Context, p *Plan, dstTemplate string, insecure bool, list TagLister) ([]Item, error) {
	var items []Item
	listed := map[int]bool{} // items that come from a tag list
	for _, e := range p.Images {
		cmd := e.Command
		if cmd == "" {
			cmd = p.Command
		}
		if cmd == "" {
			cmd = CommandRewrite
		}
		opts := p.Defaults.Over(e.Options)
		tmplText := e.Dst
		if tmplText == "" {
			tmplText = dstTemplate
		}
		if tmplText == "" {
			return nil, &PlanError{e.Where, "no dst, and no --dst-template"}
		}
		tmpl, err := template.New(e.Where).Option("missingkey=error").Parse(tmplText)
		if err != nil {
			return nil, &PlanError{e.Where, fmt.Sprintf("dst template: %v", err)}
		}
		if e.Src != "" {
			it := Item{Src: e.Src, Command: cmd, Options: opts, Where: e.Where}
			it.Dst, it.Err = fill(tmplText, tmpl, e.Src, insecure)
			items = append(items, it)
			continue
		}
		repo, err := name.NewRepository(e.Repository, nameOpts(insecure)...)
		if err != nil {
			return nil, &PlanError{e.Where, fmt.Sprintf("repository %q: %v", e.Repository, err)}
		}
		tags, err := list(ctx, repo.Name())
		if err != nil {
			items = append(items, Item{Src: repo.Name(), Command: cmd, Options: opts, Where: e.Where,
				Err: fmt.Errorf("listing the tags of %s: %w", repo.Name(), err)})
			continue
		}
		sort.Strings(tags)
		if p := unmatched(e.Tags, tags); p != "" {
			// The entry would vanish without a word.
			items = append(items, Item{Src: repo.Name(), Command: cmd, Options: opts, Where: e.Where,
				Err: fmt.Errorf("tag pattern %q matches no tag of %s (%d tags)", p, repo.Name(), len(tags))})
		}
		for _, t := range tags {
			if !matchAny(e.Tags, t) {
				continue
			}
			src := repo.Name() + ":" + t
			it := Item{Src: src, Command: cmd, Options: opts, Where: e.Where}
			it.Dst, it.Err = fill(tmplText, tmpl, src, insecure)
			listed[len(items)] = true
			items = append(items, it)
		}
	}
	// A listed tag that the plan writes ("1.4-slim" from "1.4" under
	// tags ["1.*"], and its debug image "1.4-slim-debug") is output, not a
	// source. An item that writes its own source stays, to be refused as
	// a literal src == dst is.
	dsts := map[string]bool{}
	for _, it := range items {
		if it.Err == nil {
			for _, o := range outputs(it, insecure) {
				dsts[o] = true
			}
		}
	}
	kept := items[:0]
	for i, it := range items {
		src := canonical(it.Src)
		if !listed[i] || !dsts[src] || it.Err == nil && src == canonical(it.Dst) {
			kept = append(kept, it)
		}
	}
	return dedupe(kept)
}

// unmatched returns the first of patterns that matches none of tags, or "".
func unmatched(patterns, tags []string) string {
	for _, p := range patterns {
		if !matchAny([]string{p}, tags...) {
			return p
		}
	}
	return ""
}

// outputs are the references item writes, canonical: its destination and,
// for a rewrite that makes a debug image, the debug image (--debug-to, or
// the destination with --debug-suffix, as the rewrite command derives it).
func outputs(it Item, insecure bool) []string {
	out := []string{canonical(it.Dst)}
	if it.Command == CommandRecompress || it.Options.value("strip") == "none" || it.Options.value("no-debug-image") == "true" {
		return out
	}
	if to := it.Options.value("debug-to"); to != "" {
		return append(out, canonical(to))
	}
	suffix := it.Options.value("debug-suffix")
	if suffix == "" {
		suffix = "-debug"
	}
	if r, err := imageref.Parse(it.Dst, insecure); err == nil {
		if d, err := imageref.WithSuffix(r, suffix, insecure); err == nil {
			out = append(out, d.String())
		}
	}
	return out
}

func nameOpts(insecure bool) []name.Option {
	if insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// matchAny reports whether one of patterns matches one of tags.
func matchAny(patterns []string, tags ...string) bool {
	for _, p := range patterns {
		for _, tag := range tags {
			if ok, _ := path.Match(p, tag); ok {
				return true
			}
		}
	}
	return false
}

// Template returns the Fields of a source reference.
func Template(src string, insecure bool) (Fields, error) {
	r, err := imageref.Parse(src, insecure)
	if err != nil {
		return Fields{}, err
	}
	if r.Kind != imageref.Registry {
		return Fields{}, fmt.Errorf("%s: a destination template needs a registry source", src)
	}
	f := Fields{
		Registry:   r.Name.Context().RegistryStr(),
		Repository: r.Name.Context().Name(),
		Path:       r.Name.Context().RepositoryStr(),
	}
	if t, ok := r.Name.(name.Tag); ok {
		f.Tag = t.TagStr()
	}
	return f, nil
}

// validTag is a tag as the distribution spec has it.
var validTag = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

func fill(text string, tmpl *template.Template, src string, insecure bool) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	f, err := Template(src, insecure)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, f); err != nil {
		return "", fmt.Errorf("dst template: %w", err)
	}
	r, err := imageref.Parse(b.String(), insecure)
	if t, ok := r.Name.(name.Tag); err == nil && ok && !validTag.MatchString(t.TagStr()) {
		err = fmt.Errorf("bad tag %q", t.TagStr())
	}
	if err != nil {
		if f.Tag == "" {
			err = fmt.Errorf("%w (the source names no tag)", err)
		}
		return "", fmt.Errorf("dst template gave %q: %w", b.String(), err)
	}
	return b.String(), nil
}

// dedupe keeps the first of items that name the same source and
// destination with the same command and options, and refuses the same pair
// with other options (one of them would vanish) and two sources for one
// destination.
func dedupe(items []Item) ([]Item, error) {
	type pair struct{ src, dst string }
	seen := map[pair]Item{}
	dsts := map[string]Item{}
	out := items[:0]
	for _, it := range items {
		if it.Err != nil {
			out = append(out, it)
			continue
		}
		k := pair{canonical(it.Src), canonical(it.Dst)}
		if prev, ok := seen[k]; ok {
			if prev.Command != it.Command || prev.Options.text() != it.Options.text() {
				return nil, &PlanError{it.Where, fmt.Sprintf("%s → %s is also in the plan at %s, with other options; one of them would be lost", it.Src, it.Dst, prev.Where)}
			}
			continue
		}
		seen[k] = it
		if prev, ok := dsts[k.dst]; ok {
			return nil, &PlanError{it.Where, fmt.Sprintf("%s and %s (%s) both write to %s", it.Src, prev.Src, prev.Where, it.Dst)}
		}
		dsts[k.dst] = it
		out = append(out, it)
	}
	return out, nil
}

// canonical is the fully qualified form of a reference, or s itself when it
// does not parse (the item fails later with a clear message).
func canonical(s string) string {
	r, err := imageref.Parse(s, false)
	if err != nil {
		return s
	}
	return r.String()
}

// Shard is a part of a plan: items whose source hashes to Index, of Count.
type Shard struct{ Index, Count int }

// ParseShard reads "I/N" with 0 <= I < N (I as in a Kubernetes Indexed Job's
// JOB_COMPLETION_INDEX).
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("shard %q: want I/N with 0 <= I < N, as 0/3, 1/3, 2/3", s)
	}
	return Shard{i, n}, nil
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Holds reports whether the item with source src belongs to s: the first 8
// bytes of sha256 of the canonical source reference, modulo Count, are
// Index. The split depends on nothing but the source, not on plan order or
// on which other tags exist, so N shards that expand the plan at different
// moments still process each image exactly once.
func (s Shard) Holds(src string) bool {
	if s.Count <= 1 {
		return true
	}
	sum := sha256.Sum256([]byte(canonical(src)))
	return binary.BigEndian.Uint64(sum[:8])%uint64(s.Count) == uint64(s.Index)
}

// Select returns the items of s.
func (s Shard) Select(items []Item) []Item {
	var out []Item
	for _, it := range items {
		if s.Holds(it.Src) {
			out = append(out, it)
		}
	}
	return out
}
