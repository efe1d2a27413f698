package report_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/layerslim/layerslim/analyze"
	"github.com/layerslim/layerslim/analyze/report"
)

// Whatever a path holds, it stays inside its table cell and adds no markup,
// in Markdown and in HTML.
func FuzzPathsStayText(f *testing.F) {
	for _, s := range []string{"a|b", "x\ny", "<script>", "`code`", "[l](u)", "&amp;", "**b**", "\\|", "</code>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r := &report.Report{Source: p, Version: "v", Options: p, Exceeded: []string{p}, Images: []*analyze.ImageReport{{
			Platform: p,
			Layers:   []analyze.LayerReport{{CreatedBy: p, Tree: &analyze.Node{Name: "/", Kept: 1, Children: []*analyze.Node{{Name: p, Kept: 1, Why: p}}}}},
			Top:      []analyze.Item{{Path: p, Why: p, Bytes: 1, Layer: 1}},
		}}}
		var md bytes.Buffer
		if err := report.WriteMarkdown(&md, r); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(md.String(), "\n") {
			if strings.HasPrefix(line, "| ") && strings.Count(line, "|") != 5 && strings.Count(line, "|") != 9 {
				t.Fatalf("a table row with %d bars: %q", strings.Count(line, "|"), line)
			}
		}
		for _, bad := range []string{"<script", "`", "<img"} {
			if strings.Contains(md.String(), bad) {
				t.Fatalf("markdown holds %q", bad)
			}
		}
		var h bytes.Buffer
		if err := report.WriteHTML(&h, r); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(h.String(), "<script"); n != 3 {
			t.Fatalf("html holds %d <script, want the page's 3", n)
		}
	})
}
