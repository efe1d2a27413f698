package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/layerslim/layerslim/analyze"
	"github.com/layerslim/layerslim/analyze/report"
	"github.com/layerslim/layerslim/drop"
	"github.com/layerslim/layerslim/elf"
)

// sample analyzes the two-platform sample layout of the repository.
func sample(t testing.TB, tree bool) *report.Report {
	t.Helper()
	p, err := layout.FromPath("../../testdata/sample")
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	child, err := idx.ImageIndex(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := drop.New(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reps, err := analyze.Index(context.Background(), child, analyze.Options{Drop: m, Strip: elf.Unneeded, Tree: tree})
	if err != nil {
		t.Fatal(err)
	}
	return &report.Report{Source: "oci:testdata/sample:sample", Version: "test", Options: m.String(), Images: reps}
}

func render(t testing.TB, f report.Format, r *report.Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := report.Write(&b, f, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]report.Format{"text": report.Text, "JSON": report.JSON, "md": report.Markdown, "markdown": report.Markdown, " html ": report.HTML} {
		if got, err := report.ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := report.ParseFormat("yaml"); err == nil || !strings.Contains(err.Error(), "text, json, markdown, html") {
		t.Errorf("ParseFormat(yaml): %v, want an error naming the formats", err)
	}
}

func TestMarkdown(t *testing.T) {
	r := sample(t, false)
	r.Exceeded = []string{"linux/amd64: waste 35.1% exceeds --max-waste 10%"}
	out := render(t, report.Markdown, r)
	for _, want := range []string{
		"## layerslim analyze: <code>oci:testdata/sample:sample</code>",
		"> [!WARNING]", "exceeds --max-waste 10%",
		"### linux/amd64", "### linux/arm64/v8",
		"| layer | created by | compressed |",
		"<summary>Largest wasted items",
		"<code>app/hello</code> | debug sections |",
		"| **total** |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	// Every table row has as many cells as its header.
	checkTables(t, out)
}

// Paths come from the image: none may break a table or inject markup.
func TestMarkdownEscapes(t *testing.T) {
	r := sample(t, false)
	evil := "a|b\n| x | y |<script>alert(1)</script>`*_[x](y)&amp;"
	r.Images[0].Top[0].Path = evil
	r.Images[0].Layers[0].CreatedBy = evil
	out := render(t, report.Markdown, r)
	checkTables(t, out)
	for _, bad := range []string{"<script>", "a|b", "`", "[x](y)", "&amp;"} {
		if strings.Contains(out, bad) {
			t.Errorf("markdown holds %q unescaped", bad)
		}
	}
}

// checkTables fails when a Markdown table row has another number of cells
// than its table's header.
func checkTables(t *testing.T, md string) {
	t.Helper()
	cells := -1
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			cells = -1
			continue
		}
		n := strings.Count(line, "|") - strings.Count(line, `\|`)
		if cells < 0 {
			cells = n
		} else if n != cells {
			t.Errorf("row with %d bars under a header with %d: %s", n, cells, line)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := sample(t, false)
	var got report.Report
	if err := json.Unmarshal([]byte(render(t, report.JSON, r)), &got); err != nil {
		t.Fatal(err)
	}
	if got.Source != r.Source || len(got.Images) != 2 || got.Images[1].WasteBytes != r.Images[1].WasteBytes {
		t.Errorf("round trip: %+v", got)
	}
}

func TestText(t *testing.T) {
	out := render(t, report.Text, sample(t, false))
	for _, want := range []string{"linux/amd64 sha256:", "EST. ZSTD", "largest wasted items:", "app/hello"} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q", want)
		}
	}
}

func TestHTML(t *testing.T) {
	r := sample(t, true)
	r.Exceeded = []string{"linux/amd64: waste over the gate"}
	out := render(t, report.HTML, r)
	for _, want := range []string{
		`<section id="p0" data-p="0">`, `<section id="p1" data-p="1">`, // one section per platform
		`<svg class="map" data-p="0"`, `class="g" data-n=`, `class="x" data-n=`, `class="s" data-n=`,
		`<table class="sortable">`, "Gate exceeded", "app/hello",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("html lacks %q", want)
		}
	}
	noFetch(t, out)
}

// noFetch fails when the page could load anything: it must be one file.
func noFetch(t *testing.T, page string) {
	t.Helper()
	for _, bad := range []string{"http:", "https:", " src=", "url(", "@import", "<link"} {
		if strings.Contains(page, bad) {
			t.Errorf("page holds %q: it must fetch nothing", bad)
		}
	}
	if !strings.Contains(page, `content="default-src 'none';`) {
		t.Error("page has no Content-Security-Policy forbidding requests")
	}
}

func TestHTMLEscapes(t *testing.T) {
	r := sample(t, true)
	evil := `</script><script>alert(1)</script><img src=x onerror=alert(2)>`
	r.Source = evil
	r.Images[0].Top[0].Path = evil
	r.Images[0].Layers[2].CreatedBy = evil
	r.Images[0].Layers[2].Tree.Children[0].Name = evil
	r.Images[0].Layers[2].Tree.Children[0].Why = evil
	out := render(t, report.HTML, r)
	if strings.Contains(out, "<script>alert") || strings.Contains(out, "<img") {
		t.Error("an image's names inject markup into the page")
	}
}

// A huge index still gives a small page: small files are summed.
func TestHTMLHugeIndexStaysSmall(t *testing.T) {
	r := &report.Report{Source: "huge", Version: "test"}
	for p := range 8 {
		img := &analyze.ImageReport{Platform: fmt.Sprintf("linux/arch%d", p)}
		for l := range 60 {
			tree := &analyze.Node{Name: "/"}
			for d := range 50 {
				dir := &analyze.Node{Name: fmt.Sprintf("dir-with-a-long-name-%03d", d)}
				for f := range 40 {
					n := &analyze.Node{Name: fmt.Sprintf("file-with-a-long-name-%05d.so", f), Kept: int64(1000 + f), Debug: int64(f), Shadowed: int64(l), Drop: int64(d), Files: 1, Why: "shadowed by layer 61"}
					dir.Children = append(dir.Children, n)
					dir.Kept, dir.Debug, dir.Shadowed, dir.Drop, dir.Files = dir.Kept+n.Kept, dir.Debug+n.Debug, dir.Shadowed+n.Shadowed, dir.Drop+n.Drop, dir.Files+1
				}
				tree.Children = append(tree.Children, dir)
				tree.Kept, tree.Debug, tree.Shadowed, tree.Drop, tree.Files = tree.Kept+dir.Kept, tree.Debug+dir.Debug, tree.Shadowed+dir.Shadowed, tree.Drop+dir.Drop, tree.Files+dir.Files
			}
			img.Layers = append(img.Layers, analyze.LayerReport{Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)},
				CreatedBy: strings.Repeat("RUN make ", 20), Tree: tree, UncompressedSize: tree.Bytes()})
		}
		for i := range analyze.TopItems {
			img.Top = append(img.Top, analyze.Item{Path: strings.Repeat("p/", 40) + fmt.Sprint(i), Bytes: 1, Layer: 1, Why: "debug sections"})
		}
		r.Images = append(r.Images, img)
	}
	out := render(t, report.HTML, r)
	t.Logf("page: %d bytes for 8 platforms × 60 layers × 2,000 files", len(out))
	if len(out) > 3<<20 {
		t.Errorf("page is %d bytes, want at most 3 MiB", len(out))
	}
	if n := strings.Count(out, "<section "); n != 8 {
		t.Errorf("%d sections, want 8", n)
	}
	if !strings.Contains(out, "(") || !strings.Contains(out, " more)") {
		t.Error("no aggregate of small files")
	}
}
