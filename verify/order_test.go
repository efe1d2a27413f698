package verify_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/layerslim/layerslim/verify"
)

// A DST layer whose whiteout comes after entries beside it, or whose entry
// climbs out of the root, merges to the same tree under the spec's rules,
// but is a violation naming the layer and the entry.
func TestImageLayerNames(t *testing.T) {
	lower := []ent{dir("a"), file("a/old", "1"), file("gone", "1")}
	for _, tc := range []struct {
		name     string
		src, dst [][]ent
		want     []got
		output   string
	}{
		{
			name: "whiteouts first", src: [][]ent{lower, {dir("a"), opaque("a"), file("a/x", "x")}},
			dst: [][]ent{lower, {whiteout("", "none"), dir("a"), opaque("a"), file("a/x", "x")}},
		},
		{
			name: "an opaque marker after its siblings", src: [][]ent{lower, {dir("a"), opaque("a"), file("a/x", "x")}},
			dst:    [][]ent{lower, {dir("a"), file("a/x", "x"), opaque("a")}},
			want:   []got{{"a/.wh..wh..opq", verify.WhatOrder, verify.Violation}},
			output: "layer 2 (sha256:",
		},
		{
			name: "a whiteout after an entry deeper down", src: [][]ent{lower, {whiteout("", "gone"), dir("b"), file("b/c", "1")}},
			dst:  [][]ent{lower, {dir("b"), file("b/c", "1"), whiteout("", "gone")}},
			want: []got{{".wh.gone", verify.WhatOrder, verify.Violation}},
		},
		{
			name: "names that climb out", src: [][]ent{lower, {file("x", "1"), file("y", "2")}},
			dst:    [][]ent{lower, {file("../../x", "1"), file("/y", "2")}},
			want:   []got{{"x", verify.WhatName, verify.Violation}, {"y", verify.WhatName, verify.Violation}},
			output: `entry named "../../x"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := imageOf(t, nil, tc.src...), imageOf(t, nil, tc.dst...)
			res, err := verify.Image(context.Background(), src, dst, verify.Options{TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, summarize(res)); diff != "" {
				t.Errorf("differences (-want +got):\n%s", diff)
			}
			if res.Violations != len(tc.want) {
				t.Errorf("%d violations, want %d", res.Violations, len(tc.want))
			}
			if tc.output != "" && (len(res.Differences) == 0 || !strings.Contains(res.Differences[0].Output, tc.output)) {
				t.Errorf("differences %+v do not say %q", res.Differences, tc.output)
			}
			// SRC's own order and names are not DST's fault, and neither
			// is a DST layer that is SRC's (a recompressed copy).
			if res, err := verify.Image(context.Background(), dst, src, verify.Options{TempDir: t.TempDir()}); err != nil || res.Violations != 0 {
				t.Errorf("SRC and DST swapped: %v, %+v", err, res)
			}
			if res, err := verify.Image(context.Background(), dst, dst, verify.Options{TempDir: t.TempDir()}); err != nil || res.Violations != 0 {
				t.Errorf("DST against itself: %v, %+v", err, res)
			}
		})
	}
}
