package rewrite

import (
	"archive/tar"
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/layerslim/layerslim/internal/whiteout"
	"github.com/layerslim/layerslim/tarfilter"
)

// FuzzWhiteoutsFirst feeds any list of entry names (one a line) through
// the whiteouts-first filter that knows the list's whiteouts: what comes
// out is the same entries (each whiteout once), and no whiteout comes
// after an entry under its directory.
func FuzzWhiteoutsFirst(f *testing.F) {
	for _, s := range []string{
		"a/\na/y\na/.wh..wh..opq\na/x",
		"b/c\n.wh.gone\na/b/.wh.x\na/.wh.b\n./\n../.wh.up",
		".wh..wh..opq\nx\n.wh.x\n.wh.x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		names := strings.Split(s, "\n")
		if len(names) > 200 {
			names = names[:200]
		}
		var whiteouts []*tar.Header
		var in []string
		for _, n := range names {
			if _, ok := whiteout.DirOf(whiteout.Clean(n)); ok {
				whiteouts = append(whiteouts, &tar.Header{Name: n, Typeflag: tar.TypeReg})
			}
			in = append(in, n)
		}
		w := newWhiteoutsFirst(whiteouts)
		var out []string
		sink := tarfilter.WriterFunc(func(_ context.Context, e tarfilter.Entry) error {
			out = append(out, e.Header.Name)
			return nil
		})
		ctx := context.Background()
		for _, n := range in {
			if err := w.Filter(ctx, tarfilter.Entry{Header: &tar.Header{Name: n, Typeflag: tar.TypeReg}, Body: strings.NewReader("")}, sink); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(ctx, sink); err != nil {
			t.Fatal(err)
		}
		var check whiteout.OrderCheck
		for _, n := range out {
			if check.Add(whiteout.Clean(n)) {
				t.Fatalf("%q: whiteout %q late in %q", in, n, out)
			}
		}
		// The same entries, each whiteout (by clean name) once.
		seen := map[string]bool{}
		var want []string
		for _, n := range in {
			p := whiteout.Clean(n)
			if _, ok := whiteout.DirOf(p); ok {
				if seen[p] {
					continue
				}
				seen[p] = true
			}
			want = append(want, n)
		}
		sort.Strings(want)
		got := append([]string(nil), out...)
		sort.Strings(got)
		if strings.Join(want, "\n") != strings.Join(got, "\n") {
			t.Fatalf("%q came out as %q", in, out)
		}
	})
}
