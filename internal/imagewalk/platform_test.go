package imagewalk_test

import (
	"reflect"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/internal/imagewalk"
)

func plat(s string) v1.Platform {
	p, err := v1.ParsePlatform(s)
	if err != nil {
		panic(err)
	}
	return *p
}

// TestSatisfies pins the one platform rule. The old copies disagreed on the
// rows marked: rewrite.MatchPlatform ignored os.version and os.features,
// verify.matchPlatform ignored os.features, analyze (ggcr Satisfies)
// honoured both; none of them knew that arm64 without a variant is v8.
func TestSatisfies(t *testing.T) {
	win := func(ver string, feats ...string) v1.Platform {
		return v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: ver, OSFeatures: feats}
	}
	for _, c := range []struct {
		name    string
		want, p v1.Platform
		ok      bool
		// what the old copies said, where they disagreed with ok
		rewrite, verify, analyze bool
		disagreed                bool
	}{
		{name: "same os/arch", want: plat("linux/amd64"), p: plat("linux/amd64"), ok: true},
		{name: "other arch", want: plat("linux/amd64"), p: plat("linux/arm64")},
		{name: "other os", want: plat("linux/amd64"), p: plat("windows/amd64")},
		{name: "no variant wanted: any", want: plat("linux/arm"), p: plat("linux/arm/v6"), ok: true},
		{name: "variant wanted", want: plat("linux/arm/v7"), p: plat("linux/arm/v6")},
		{name: "arm has no default variant", want: plat("linux/arm/v7"), p: plat("linux/arm")},
		{name: "arm64 wanted v8 selects no variant", want: plat("linux/arm64/v8"), p: plat("linux/arm64"), ok: true, disagreed: true},
		{name: "arm64 wanted without variant selects v8", want: plat("linux/arm64"), p: plat("linux/arm64/v8"), ok: true},
		{name: "arm64 v8 is not v9", want: plat("linux/arm64/v8"), p: plat("linux/arm64/v9")},
		{name: "no os.version wanted: any", want: plat("windows/amd64"), p: win("10.0.17763.1"), ok: true},
		{name: "os.version wanted, same", want: win("10.0.17763.1"), p: win("10.0.17763.1"), ok: true},
		{name: "os.version wanted, other", want: win("10.0.17763.1"), p: win("10.0.20348.1"), rewrite: true, disagreed: true},
		{name: "os.version wanted, none given", want: win("10.0.17763.1"), p: win(""), rewrite: true, disagreed: true},
		{name: "os.features wanted, present", want: win("", "win32k"), p: win("1", "win32k", "x"), ok: true},
		{name: "os.features wanted, absent", want: win("", "win32k"), p: win("1"), rewrite: true, verify: true, disagreed: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := imagewalk.Satisfies(c.want, c.p); got != c.ok {
				t.Errorf("Satisfies(%v, %v) = %v, want %v", c.want, c.p, got, c.ok)
			}
			if got := imagewalk.Match([]v1.Platform{plat("plan9/mips"), c.want}, c.p); got != c.ok {
				t.Errorf("Match = %v, want %v", got, c.ok)
			}
			if !c.disagreed {
				return
			}
			// Document the old answers: each copy, as it was written.
			old := func(w, p v1.Platform) bool {
				return w.OS == p.OS && w.Architecture == p.Architecture && (w.Variant == "" || w.Variant == p.Variant)
			}
			if got := old(c.want, c.p); got != c.rewrite {
				t.Errorf("old rewrite rule = %v, table says %v", got, c.rewrite)
			}
			if got := old(c.want, c.p) && (c.want.OSVersion == "" || c.want.OSVersion == c.p.OSVersion); got != c.verify {
				t.Errorf("old verify rule = %v, table says %v", got, c.verify)
			}
			if got := c.p.Satisfies(c.want); got != c.analyze {
				t.Errorf("old analyze rule = %v, table says %v", got, c.analyze)
			}
		})
	}
}

func TestMatchEmptySelectsAll(t *testing.T) {
	if !imagewalk.Match(nil, plat("linux/s390x")) {
		t.Error("an empty selection must select every platform")
	}
}

func TestParsePlatform(t *testing.T) {
	for _, c := range []struct {
		in   string
		want v1.Platform
		err  bool
	}{
		{in: "linux/amd64", want: plat("linux/amd64")},
		{in: " linux/arm64/v8 ", want: plat("linux/arm64/v8")},
		{in: "windows/amd64:10.0.17763.1", want: v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.1"}},
		// debug extract accepted these and then matched nothing; every
		// command now refuses them.
		{in: "linux", err: true},
		{in: "", err: true},
		{in: "/amd64", err: true},
		{in: "linux/arm/v7/x", err: true},
	} {
		got, err := imagewalk.ParsePlatform(c.in)
		if (err != nil) != c.err {
			t.Errorf("ParsePlatform(%q): error %v, want error %v", c.in, err, c.err)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParsePlatform(%q) = %+v, want %+v", c.in, got, c.want)
		}
		if err != nil && err.Error() != `"`+c.in+`": want os/arch[/variant]` {
			t.Errorf("ParsePlatform(%q) error %q", c.in, err)
		}
	}
	ps, err := imagewalk.ParsePlatforms([]string{"linux/amd64", "linux/arm64"})
	if err != nil || len(ps) != 2 {
		t.Errorf("ParsePlatforms = %v, %v", ps, err)
	}
	if _, err := imagewalk.ParsePlatforms([]string{"linux/amd64", "x"}); err == nil {
		t.Error("ParsePlatforms accepted a bad value")
	}
}

func TestOptionTextRoundTrip(t *testing.T) {
	want := []v1.Platform{plat("linux/arm64/v8"), plat("linux/amd64"), {OS: "windows", Architecture: "amd64", OSVersion: "10.0.1"}}
	text := imagewalk.OptionText(want)
	if text != "platforms=linux/amd64,linux/arm64/v8,windows/amd64:10.0.1" {
		t.Errorf("OptionText = %q", text)
	}
	if !imagewalk.IsOptionText(text) || imagewalk.IsOptionText("squash=auto") {
		t.Error("IsOptionText")
	}
	got := imagewalk.PlatformsFromOptions("compression=zstd level=3 " + text + " strip=unneeded")
	if len(got) != 3 {
		t.Fatalf("PlatformsFromOptions = %v", got)
	}
	for _, w := range want {
		if !imagewalk.Match(got, w) {
			t.Errorf("%v lost in the round trip: %v", w, got)
		}
	}
	if imagewalk.OptionText(nil) != "" || imagewalk.PlatformsFromOptions("compression=zstd") != nil {
		t.Error("no selection must round trip to none")
	}
}
