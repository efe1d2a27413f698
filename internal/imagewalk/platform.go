package imagewalk

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ParsePlatform parses one --platform value, os/arch[/variant][:os.version]
// (spaces around it are ignored). The error quotes s and says what is
// wanted; callers add the flag's name.
func ParsePlatform(s string) (v1.Platform, error) {
	p, err := v1.ParsePlatform(strings.TrimSpace(s))
	if err != nil || p.OS == "" || p.Architecture == "" {
		return v1.Platform{}, fmt.Errorf("%q: want os/arch[/variant]", s)
	}
	return *p, nil
}

// ParsePlatforms parses every value of a --platform flag, in order.
func ParsePlatforms(ss []string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, s := range ss {
		p, err := ParsePlatform(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Satisfies reports whether the wanted platform w selects p (see the
// package doc for the rule).
func Satisfies(w, p v1.Platform) bool {
	return w.OS == p.OS && w.Architecture == p.Architecture &&
		(w.Variant == "" || variant(w) == variant(p)) &&
		(w.OSVersion == "" || w.OSVersion == p.OSVersion) &&
		subset(w.OSFeatures, p.OSFeatures) && subset(w.Features, p.Features)
}

// Match reports whether one of want selects p. An empty want selects every
// platform.
func Match(want []v1.Platform, p v1.Platform) bool {
	if len(want) == 0 {
		return true
	}
	for _, w := range want {
		if Satisfies(w, p) {
			return true
		}
	}
	return false
}

// variant is p's variant, normalised: arm64 without one is v8.
func variant(p v1.Platform) string {
	if p.Architecture == "arm64" && p.Variant == "" {
		return "v8"
	}
	return p.Variant
}

func subset(want, have []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// optionKey names the platform selection in the options text of the
// provenance annotation (manifest.AnnotationOptions).
const optionKey = "platforms="

// OptionText is the platform selection's part of the options text a
// rewrite records in its provenance annotation: "platforms=" and the
// wanted platforms, sorted and comma separated; "" for none.
// PlatformsFromOptions reads it back.
func OptionText(want []v1.Platform) string {
	if len(want) == 0 {
		return ""
	}
	ps := make([]string, len(want))
	for i, p := range want {
		ps[i] = p.String()
	}
	sort.Strings(ps)
	return optionKey + strings.Join(ps, ",")
}

// IsOptionText reports whether field, one space-separated field of an
// options text, is the one OptionText writes.
func IsOptionText(field string) bool { return strings.HasPrefix(field, optionKey) }

// PlatformsFromOptions returns the platforms OptionText recorded in the
// options text s, or nil when s records no selection.
func PlatformsFromOptions(s string) []v1.Platform {
	var out []v1.Platform
	for _, f := range strings.Fields(s) {
		list, ok := strings.CutPrefix(f, optionKey)
		if !ok {
			continue
		}
		for _, s := range strings.Split(list, ",") {
			if p, err := v1.ParsePlatform(s); err == nil && p.OS != "" {
				out = append(out, *p)
			}
		}
	}
	return out
}
