// Package batch rewrites many images: a plan names the work (source and
// destination pairs, or repositories with tag patterns and a destination
// template) and the options; Run processes it with bounded concurrency,
// skips what a previous run finished, rewrites a layer shared by several
// images once (see Memo) and reports every image. Each image is one job of
// package run (run.RunOpened), exactly what the single rewrite and
// recompress commands run.
//
// It is internal: its options and Memo name the internal imageref and run
// types (references, registry options, a job's options), which a caller
// outside the module could not build. A public batch API would need those
// as public types first.
package batch

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Commands an entry may name.
const (
	CommandRewrite    = "rewrite"
	CommandRecompress = "recompress"
)

// A Setting is one option of a plan: a flag of the rewrite (or recompress)
// command by its long name, with its value or values as text.
type Setting struct {
	Name   string
	Values []string
	Where  string // file:line, for messages
}

// Options are a plan's settings, in the order given.
type Options []Setting

// Over returns o with the settings of over added, over winning by name.
func (o Options) Over(over Options) Options {
	out := make(Options, 0, len(o)+len(over))
	for _, s := range o {
		if !over.has(s.Name) {
			out = append(out, s)
		}
	}
	return append(out, over...)
}

// value is the last value of the setting name, or "".
func (o Options) value(name string) string {
	v := ""
	for _, s := range o {
		if s.Name == name && len(s.Values) > 0 {
			v = s.Values[len(s.Values)-1]
		}
	}
	return v
}

// text is o's names and values, in order, without where they were set.
func (o Options) text() string {
	var b strings.Builder
	for _, s := range o {
		fmt.Fprintf(&b, "%s=%q;", s.Name, s.Values)
	}
	return b.String()
}

func (o Options) has(name string) bool {
	for _, s := range o {
		if s.Name == name {
			return true
		}
	}
	return false
}

// Entry is one item of a plan's images list: a source and a destination, or
// a repository whose tags matching Tags are each rewritten to the
// destination template.
type Entry struct {
	Src        string
	Repository string
	Tags       []string
	// Dst is a destination, or a text/template with fields .Registry,
	// .Repository, .Path and .Tag of the source (see Template).
	Dst     string
	Command string // "" means the plan's
	Options Options
	Where   string
}

// Cache is the plan's cache: section: where the Memo (the layer cache)
// keeps its entries.
type Cache struct {
	Dir        string // a local directory ("" means the default)
	Repository string // a registry repository for the shared memo ("" means none)
}

// Plan is a parsed batch plan.
type Plan struct {
	Command  string // rewrite (default) or recompress
	Defaults Options
	Cache    Cache
	Images   []Entry
}

// PlanError is a mistake in a plan, with its place.
type PlanError struct {
	Where string
	Msg   string
}

func (e *PlanError) Error() string { return e.Where + ": " + e.Msg }

// Parse reads a YAML plan. name is used in messages. Unknown keys are
// errors, with their line:
//
//	command: rewrite            # or recompress; also allowed in an entry
//	defaults: {squash: none}    # rewrite flags by long name
//	cache: {dir: DIR, repository: REPO}
//	images:
//	  - src: REF
//	    dst: REF-OR-TEMPLATE
//	    options: {...}          # per-image settings over the defaults
//	  - repository: REPO
//	    tags: ["1.*"]           # path.Match patterns
//	    dst: "{{.Repository}}:{{.Tag}}-slim"
func Parse(r io.Reader, name string) (*Plan, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(r)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &PlanError{name, "the plan is empty"}
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &Plan{Command: CommandRewrite}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	at := func(n *yaml.Node) string { return fmt.Sprintf("%s:%d", name, n.Line) }
	if root.Kind != yaml.MappingNode {
		return nil, &PlanError{at(root), "the plan must be a mapping with images: (and defaults:, cache:, command:)"}
	}
	seenImages := false
	err := eachKey(root, at, "the plan", []string{"command", "defaults", "cache", "images"}, func(k string, v *yaml.Node) error {
		switch k {
		case "command":
			c, err := command(v, at)
			p.Command = c
			return err
		case "defaults":
			o, c, err := options(v, at)
			if c != "" {
				p.Command = c
			}
			p.Defaults = o
			return err
		case "cache":
			return eachKey(v, at, "cache", []string{"dir", "repository"}, func(k string, v *yaml.Node) error {
				s, err := scalar(v, at, k)
				if k == "dir" {
					p.Cache.Dir = s
				} else {
					p.Cache.Repository = s
				}
				return err
			})
		case "images":
			seenImages = true
			if v.Kind != yaml.SequenceNode {
				return &PlanError{at(v), "images must be a list"}
			}
			for _, n := range v.Content {
				e, err := entry(n, at)
				if err != nil {
					return err
				}
				p.Images = append(p.Images, e)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !seenImages {
		return nil, &PlanError{at(root), "the plan has no images: list"}
	}
	return p, nil
}

func entry(n *yaml.Node, at func(*yaml.Node) string) (Entry, error) {
	e := Entry{Where: at(n)}
	if n.Kind != yaml.MappingNode {
		return e, &PlanError{at(n), "an image entry must be a mapping with src and dst, or repository, tags and dst"}
	}
	err := eachKey(n, at, "an image entry", []string{"src", "dst", "repository", "tags", "command", "options"}, func(k string, v *yaml.Node) error {
		var err error
		switch k {
		case "src":
			e.Src, err = scalar(v, at, k)
		case "dst":
			e.Dst, err = scalar(v, at, k)
		case "repository":
			e.Repository, err = scalar(v, at, k)
		case "tags":
			e.Tags, err = list(v, at, k)
			for _, t := range e.Tags {
				if _, perr := path.Match(t, ""); perr != nil {
					return &PlanError{at(v), fmt.Sprintf("tags: bad pattern %q", t)}
				}
			}
		case "command":
			e.Command, err = command(v, at)
		case "options":
			var c string
			e.Options, c, err = options(v, at)
			if c != "" {
				e.Command = c
			}
		}
		return err
	})
	if err != nil {
		return e, err
	}
	switch {
	case e.Src == "" && e.Repository == "":
		return e, &PlanError{e.Where, "an image entry needs src (one image) or repository (with tags)"}
	case e.Src != "" && e.Repository != "":
		return e, &PlanError{e.Where, "an image entry has src or repository, not both"}
	case e.Src != "" && len(e.Tags) > 0:
		return e, &PlanError{e.Where, "tags go with repository, not src"}
	case e.Repository != "" && len(e.Tags) == 0:
		return e, &PlanError{e.Where, `repository needs tags: patterns (["*"] for every tag)`}
	}
	return e, nil
}

// eachKey calls f for each key of mapping n, refusing keys not in allowed
// and keys given twice.
func eachKey(n *yaml.Node, at func(*yaml.Node) string, what string, allowed []string, f func(k string, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return &PlanError{at(n), what + " must be a mapping"}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ok := false
		for _, a := range allowed {
			ok = ok || a == k.Value
		}
		if !ok {
			return &PlanError{at(k), fmt.Sprintf("unknown key %q in %s (want %s)", k.Value, what, strings.Join(allowed, ", "))}
		}
		if seen[k.Value] {
			return &PlanError{at(k), fmt.Sprintf("%s given twice", k.Value)}
		}
		seen[k.Value] = true
		if err := f(k.Value, v); err != nil {
			return err
		}
	}
	return nil
}

func scalar(v *yaml.Node, at func(*yaml.Node) string, key string) (string, error) {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		return "", &PlanError{at(v), key + " must be a single value"}
	}
	return v.Value, nil
}

func list(v *yaml.Node, at func(*yaml.Node) string, key string) ([]string, error) {
	if v.Kind == yaml.ScalarNode {
		s, err := scalar(v, at, key)
		return []string{s}, err
	}
	if v.Kind != yaml.SequenceNode {
		return nil, &PlanError{at(v), key + " must be a value or a list of values"}
	}
	var out []string
	for _, c := range v.Content {
		s, err := scalar(c, at, key)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func command(v *yaml.Node, at func(*yaml.Node) string) (string, error) {
	s, err := scalar(v, at, "command")
	if err != nil {
		return "", err
	}
	if s != CommandRewrite && s != CommandRecompress {
		return "", &PlanError{at(v), fmt.Sprintf("command %q: want rewrite or recompress", s)}
	}
	return s, nil
}

// options reads a mapping of flag names to values. A "command" key is
// taken out and returned on its own.
func options(v *yaml.Node, at func(*yaml.Node) string) (Options, string, error) {
	if v.Kind != yaml.MappingNode {
		return nil, "", &PlanError{at(v), "options must be a mapping of flag names to values"}
	}
	var o Options
	cmd := ""
	seen := map[string]bool{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		name := strings.TrimPrefix(k.Value, "--")
		if seen[name] {
			return nil, "", &PlanError{at(k), fmt.Sprintf("%s given twice", name)}
		}
		seen[name] = true
		if name == "command" {
			c, err := command(val, at)
			if err != nil {
				return nil, "", err
			}
			cmd = c
			continue
		}
		vals, err := list(val, at, name)
		if err != nil {
			return nil, "", err
		}
		o = append(o, Setting{Name: name, Values: vals, Where: at(k)})
	}
	return o, cmd, nil
}

// ParseLines reads a list of images, one a line: "SRC DST", or "SRC" alone
// when a destination template is given to Expand. Blank lines and lines
// starting with # are skipped.
func ParseLines(r io.Reader, name string) (*Plan, error) {
	p := &Plan{Command: CommandRewrite}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		where := fmt.Sprintf("%s:%d", name, n)
		if len(f) > 2 {
			return nil, &PlanError{where, fmt.Sprintf("want SRC [DST], got %d words", len(f))}
		}
		e := Entry{Src: f[0], Where: where}
		if len(f) == 2 {
			e.Dst = f[1]
		}
		p.Images = append(p.Images, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return p, nil
}
