package rewrite

// The verify package is the judge of every rewrite test's output: what
// rewrite writes, verify must accept (issue 10, item 6). The helpers live
// in the internal test package so that its tests (TestImageDrop) and the
// external ones (through export_test.go) share them.

import (
	"context"
	"fmt"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/drop"
	"github.com/layerslim/layerslim/verify"
)

// verifyOutput runs verify on a rewrite's source (a v1.Image or a
// v1.ImageIndex) and its output, with the drop rules the rewrite used (nil:
// none), pairing them as the CLI's --verify does: index with index, an
// index with the image taken out of it, an image with the index of its
// compression variants, image with image.
func verifyOutput(t testing.TB, src any, res *Result, m *drop.Matcher) []*verify.Result {
	t.Helper()
	ctx := context.Background()
	vo := verify.Options{TempDir: t.TempDir()}
	if m != nil {
		vo.Dropped = m.Match
	}
	var (
		results []*verify.Result
		r       *verify.Result
		err     error
	)
	switch s := src.(type) {
	case v1.ImageIndex:
		if res.Index != nil {
			results, err = verify.Index(ctx, s, res.Index, vo)
		} else {
			r, err = verify.IndexImage(ctx, s, res.Image, vo)
		}
	case v1.Image:
		if res.Index != nil {
			results, err = verify.ImageIndex(ctx, s, res.Index, vo)
		} else {
			r, err = verify.Image(ctx, s, res.Image, vo)
		}
	default:
		t.Fatalf("verify: source is a %T, not an image or an index", src)
	}
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if r != nil {
		results = append(results, r)
	}
	return results
}

// violations lists, one a line, the differences verify does not allow.
func violations(results []*verify.Result) string {
	var b strings.Builder
	for _, r := range results {
		for _, d := range r.Differences {
			if d.Verdict == verify.Violation {
				fmt.Fprintf(&b, "\n\t%s: %s %s: %s → %s", r.Platform, d.Path, d.What, d.Source, d.Output)
				if d.Reason != "" {
					fmt.Fprintf(&b, " (%s)", d.Reason)
				}
			}
		}
	}
	return b.String()
}

// checkVerified fails t, listing them, on the violations verify finds in
// res against src: rewrite's output must keep the guarantee under the
// options it was made with, m being its drop rules (nil: none).
func checkVerified(t testing.TB, src any, res *Result, m *drop.Matcher) {
	t.Helper()
	if v := violations(verifyOutput(t, src, res, m)); v != "" {
		t.Errorf("verify rejects the output:%s", v)
	}
}

// checkRejected fails t unless verify finds a violation in res against
// src whose What is one of whats: for a test that makes, on purpose, an
// output the guarantee does not allow.
func checkRejected(t testing.TB, src any, res *Result, m *drop.Matcher, whats ...string) {
	t.Helper()
	results := verifyOutput(t, src, res, m)
	for _, r := range results {
		for _, d := range r.Differences {
			if d.Verdict != verify.Violation {
				continue
			}
			for _, w := range whats {
				if d.What == w {
					return
				}
			}
		}
	}
	t.Errorf("verify accepts an output it must reject (want a violation of %v); violations:%s", whats, violations(results))
}
