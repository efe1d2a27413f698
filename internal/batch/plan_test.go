package batch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The plan of the issue, as written.
const examplePlan = `defaults:
  squash: none
  compression: zstd
images:
  - src: 127.0.0.1:5000/team/api:1.4
    dst: 127.0.0.1:5000/team/api:1.4-slim
  - repository: 127.0.0.1:5000/team/web
    tags: ["1.*"]
    dst: "{{.Repository}}:{{.Tag}}-slim"
`

func fakeLister(tags map[string][]string) TagLister {
	return func(_ context.Context, repo string) ([]string, error) {
		t, ok := tags[repo]
		if !ok {
			return nil, fmt.Errorf("NAME_UNKNOWN: repository %s not known to registry", repo)
		}
		return slices.Clone(t), nil
	}
}

func TestParseExample(t *testing.T) {
	p, err := Parse(strings.NewReader(examplePlan), "plan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Plan{
		Command: CommandRewrite,
		Defaults: Options{
			{Name: "squash", Values: []string{"none"}, Where: "plan.yaml:2"},
			{Name: "compression", Values: []string{"zstd"}, Where: "plan.yaml:3"},
		},
		Images: []Entry{
			{Src: "127.0.0.1:5000/team/api:1.4", Dst: "127.0.0.1:5000/team/api:1.4-slim", Where: "plan.yaml:5"},
			{Repository: "127.0.0.1:5000/team/web", Tags: []string{"1.*"}, Dst: "{{.Repository}}:{{.Tag}}-slim", Where: "plan.yaml:7"},
		},
	}
	if d := cmp.Diff(want, p); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}

	// web has 1.4-slim from an earlier run, and 2.0, which the pattern
	// leaves out; tags come out sorted.
	list := fakeLister(map[string][]string{"127.0.0.1:5000/team/web": {"2.0", "1.4", "1.10", "1.4-slim", "1.2"}})
	items, err := Expand(context.Background(), p, "", false, list)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		if it.Err != nil {
			t.Fatalf("%s: %v", it.Src, it.Err)
		}
		if it.Command != CommandRewrite || len(it.Options) != 2 {
			t.Errorf("%s: command %q, options %v", it.Src, it.Command, it.Options)
		}
		got = append(got, it.Src+" "+it.Dst)
	}
	wantItems := []string{
		"127.0.0.1:5000/team/api:1.4 127.0.0.1:5000/team/api:1.4-slim",
		"127.0.0.1:5000/team/web:1.10 127.0.0.1:5000/team/web:1.10-slim",
		"127.0.0.1:5000/team/web:1.2 127.0.0.1:5000/team/web:1.2-slim",
		"127.0.0.1:5000/team/web:1.4 127.0.0.1:5000/team/web:1.4-slim",
	}
	if d := cmp.Diff(wantItems, got); d != "" {
		t.Errorf("items (-want +got)\n%s", d)
	}
}

func TestParseOptions(t *testing.T) {
	p, err := Parse(strings.NewReader(`command: recompress
defaults:
  jobs: 2
  drop: [default, pycache]
  force: true
cache: {dir: /tmp/c, repository: reg.example/cache}
images:
  - src: reg.example/a:1
    dst: reg.example/a:1-zstd
    options: {command: rewrite, force: false, keep: ["usr/share/doc/a/**"]}
`), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Command != CommandRecompress || p.Cache != (Cache{"/tmp/c", "reg.example/cache"}) {
		t.Errorf("command %q, cache %+v", p.Command, p.Cache)
	}
	items, err := Expand(context.Background(), p, "", false, fakeLister(nil))
	if err != nil {
		t.Fatal(err)
	}
	it := items[0]
	got := map[string][]string{}
	for _, s := range it.Options {
		got[s.Name] = s.Values
	}
	want := map[string][]string{"jobs": {"2"}, "drop": {"default", "pycache"}, "force": {"false"}, "keep": {"usr/share/doc/a/**"}}
	if it.Command != CommandRewrite || !cmp.Equal(want, got) {
		t.Errorf("command %q, options %v; want rewrite, %v", it.Command, got, want)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, plan, want string }{
		{"unknown top key", "images: []\nimage: []\n", `p.yaml:2: unknown key "image" in the plan`},
		{"unknown entry key", "images:\n  - src: a/b:1\n    dest: a/b:2\n", `p.yaml:3: unknown key "dest" in an image entry`},
		{"unknown cache key", "cache:\n  path: x\nimages: []\n", `p.yaml:2: unknown key "path" in cache`},
		{"no images", "defaults: {}\n", "p.yaml:1: the plan has no images: list"},
		{"src and repository", "images:\n  - src: a/b:1\n    repository: a/b\n    dst: x\n", "p.yaml:2: an image entry has src or repository, not both"},
		{"repository without tags", "images:\n  - repository: a/b\n    dst: x\n", "p.yaml:2: repository needs tags"},
		{"bad pattern", "images:\n  - repository: a/b\n    tags: [\"[\"]\n    dst: x\n", `p.yaml:3: tags: bad pattern "["`},
		{"bad command", "command: squash\nimages: []\n", `p.yaml:1: command "squash": want rewrite or recompress`},
		{"option mapping", "defaults:\n  drop: {a: b}\nimages: []\n", "p.yaml:2: drop must be a value or a list of values"},
		{"option twice", "defaults:\n  squash: none\n  squash: all\nimages: []\n", "squash given twice"},
		{"null value", "defaults:\n  squash:\nimages: []\n", "p.yaml:2: squash must be a single value"},
		{"not yaml", "images: [\n", "p.yaml: yaml:"},
		{"empty", "", "p.yaml: the plan is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.plan), "p.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParseLines(t *testing.T) {
	p, err := ParseLines(strings.NewReader("# images\nreg.example/a:1 reg.example/a:1-slim\n\n  reg.example/b:2  \n"), "stdin")
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Src: "reg.example/a:1", Dst: "reg.example/a:1-slim", Where: "stdin:2"},
		{Src: "reg.example/b:2", Where: "stdin:4"},
	}
	if d := cmp.Diff(want, p.Images); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
	if _, err := Expand(context.Background(), p, "", false, fakeLister(nil)); err == nil || !strings.Contains(err.Error(), "stdin:4: no dst, and no --dst-template") {
		t.Errorf("a line without DST and no template: %v", err)
	}
	items, err := Expand(context.Background(), p, "{{.Registry}}/slim/{{.Path}}:{{.Tag}}", false, fakeLister(nil))
	if err != nil {
		t.Fatal(err)
	}
	if items[0].Dst != "reg.example/a:1-slim" || items[1].Dst != "reg.example/slim/b:2" {
		t.Errorf("destinations %q, %q", items[0].Dst, items[1].Dst)
	}
	if _, err := ParseLines(strings.NewReader("a b c\n"), "stdin"); err == nil || !strings.Contains(err.Error(), "stdin:1: want SRC [DST], got 3 words") {
		t.Errorf("three words: %v", err)
	}
}

func TestExpand(t *testing.T) {
	p, err := Parse(strings.NewReader(`images:
  - repository: reg.example/gone
    tags: ["*"]
    dst: "{{.Repository}}:{{.Tag}}-slim"
  - src: reg.example/a@sha256:0123456789012345678901234567890123456789012345678901234567890123
    dst: "{{.Repository}}:{{.Tag}}-slim"
  - src: reg.example/b:1
    dst: "{{.Nope}}"
  - src: reg.example/c:1
    dst: reg.example/c:1-slim
  - src: reg.example/c:1
    dst: reg.example/c:1-slim
`), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	items, err := Expand(context.Background(), p, "", false, fakeLister(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 4 {
		t.Fatalf("%d items, want 4 (the duplicate kept once): %+v", len(items), items)
	}
	for i, want := range []string{"listing the tags of reg.example/gone: NAME_UNKNOWN", `dst template gave "reg.example/a:-slim": bad tag "-slim" (the source names no tag)`, "can't evaluate field Nope", ""} {
		if got := items[i].Err; (want == "") != (got == nil) || got != nil && !strings.Contains(got.Error(), want) {
			t.Errorf("item %d (%s): error %v, want %q", i, items[i].Src, got, want)
		}
	}

	// Two sources for one destination is a plan error.
	p.Images = append(p.Images, Entry{Src: "reg.example/d:1", Dst: "reg.example/c:1-slim", Where: "p.yaml:99"})
	_, err = Expand(context.Background(), p, "", false, fakeLister(nil))
	var pe *PlanError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "p.yaml:99: reg.example/d:1 and reg.example/c:1 (p.yaml:9) both write to reg.example/c:1-slim") {
		t.Errorf("conflicting destinations: %v", err)
	}
}

func TestShard(t *testing.T) {
	for _, s := range []string{"", "1", "3/3", "-1/2", "a/b", "0/0", "1/2/3"} {
		if _, err := ParseShard(s); err == nil {
			t.Errorf("ParseShard(%q) accepted", s)
		}
	}
	var srcs []string
	for i := range 300 {
		srcs = append(srcs, fmt.Sprintf("reg.example/team/app%d:1.%d", i%7, i))
	}
	const n = 4
	owner := map[string]int{}
	counts := make([]int, n)
	for i := range n {
		s, err := ParseShard(fmt.Sprintf("%d/%d", i, n))
		if err != nil {
			t.Fatal(err)
		}
		for _, src := range srcs {
			if s.Holds(src) {
				if prev, ok := owner[src]; ok {
					t.Fatalf("%s in shards %d and %d", src, prev, i)
				}
				owner[src] = i
				counts[i]++
			}
		}
	}
	if len(owner) != len(srcs) {
		t.Fatalf("%d of %d sources have a shard", len(owner), len(srcs))
	}
	for i, c := range counts {
		if c < len(srcs)/n/2 {
			t.Errorf("shard %d holds %d of %d sources: %v", i, c, len(srcs), counts)
		}
	}
	// The split does not depend on the spelling of a reference, on order,
	// or on the other items.
	s := Shard{owner["reg.example/team/app0:1.0"], n}
	if !s.Holds("docker://reg.example/team/app0:1.0") {
		t.Error("the same image spelled another way moved shards")
	}
	items := []Item{{Src: srcs[5]}, {Src: srcs[0]}}
	a := s.Select(items)
	b := s.Select([]Item{{Src: srcs[0]}, {Src: "reg.example/new:1"}, {Src: srcs[5]}})
	for _, it := range a {
		if !slices.ContainsFunc(b, func(x Item) bool { return x.Src == it.Src }) {
			t.Errorf("%s left the shard when the plan changed", it.Src)
		}
	}
}

// A rerun over tags ["*"] does not take the run's own outputs (the slim tag
// and its debug tag) as sources; nothing the plan names vanishes without a
// word.
func TestExpandOutputsAndSilentDrops(t *testing.T) {
	tags := fakeLister(map[string][]string{"reg.example/web": {"1.4", "1.4-slim", "1.4-slim-debug", "1.5", "1.5-slim", "1.5-slim-dbg"}})
	expand := func(t *testing.T, plan string) ([]Item, error) {
		t.Helper()
		p, err := Parse(strings.NewReader(plan), "p.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return Expand(context.Background(), p, "", false, tags)
	}
	srcs := func(items []Item) []string {
		var out []string
		for _, it := range items {
			if it.Err != nil {
				out = append(out, "error: "+it.Err.Error())
				continue
			}
			out = append(out, it.Src+" → "+it.Dst)
		}
		return out
	}
	t.Run("outputs and debug outputs are not sources", func(t *testing.T) {
		items, err := expand(t, "images:\n  - repository: reg.example/web\n    tags: [\"1.4*\"]\n    dst: \"{{.Repository}}:{{.Tag}}-slim\"\n")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"reg.example/web:1.4 → reg.example/web:1.4-slim"}
		if d := cmp.Diff(want, srcs(items)); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
	})
	t.Run("debug suffix of the plan", func(t *testing.T) {
		items, err := expand(t, "defaults:\n  debug-suffix: -dbg\nimages:\n  - repository: reg.example/web\n    tags: [\"1.5*\"]\n    dst: \"{{.Repository}}:{{.Tag}}-slim\"\n")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"reg.example/web:1.5 → reg.example/web:1.5-slim"}
		if d := cmp.Diff(want, srcs(items)); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
	})
	t.Run("a pattern that matches nothing", func(t *testing.T) {
		items, err := expand(t, "images:\n  - repository: reg.example/web\n    tags: [\"1.4\", \"2.*\"]\n    dst: \"{{.Repository}}:{{.Tag}}-slim\"\n")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{`error: tag pattern "2.*" matches no tag of reg.example/web (6 tags)`, "reg.example/web:1.4 → reg.example/web:1.4-slim"}
		if d := cmp.Diff(want, srcs(items)); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
	})
	t.Run("a template that writes the source stays, to be refused", func(t *testing.T) {
		items, err := expand(t, "images:\n  - repository: reg.example/web\n    tags: [\"1.4\"]\n    dst: \"{{.Repository}}:{{.Tag}}\"\n")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"reg.example/web:1.4 → reg.example/web:1.4"}
		if d := cmp.Diff(want, srcs(items)); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
	})
	t.Run("one pair with other options", func(t *testing.T) {
		_, err := expand(t, "images:\n  - src: reg.example/web:1.4\n    dst: reg.example/web:1.4-slim\n  - src: reg.example/web:1.4\n    dst: reg.example/web:1.4-slim\n    options:\n      squash: none\n")
		var pe *PlanError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "p.yaml:4: reg.example/web:1.4 → reg.example/web:1.4-slim is also in the plan at p.yaml:2, with other options") {
			t.Errorf("got %v", err)
		}
	})
}
