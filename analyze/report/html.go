package report

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"

	"github.com/layerslim/layerslim/analyze"
)

// HTMLNodes bounds the treemap nodes of a whole HTML page, shared among
// its platforms (at least htmlMinNodes each), which keeps the page of a
// huge image or index small (a few hundred kilobytes): small files are
// summed into "(N more)" blocks.
const (
	HTMLNodes    = 4000
	htmlMinNodes = 150
)

// The picture's size in SVG units; it scales to the page's width.
const mapW, mapH = 1200, 560

var (
	//go:embed html/page.tmpl
	pageTmpl string
	//go:embed html/page.css
	pageCSS string
	//go:embed html/page.js
	pageJS string

	page = template.Must(template.New("page").Funcs(template.FuncMap{"size": Size}).Parse(pageTmpl))
)

type htmlPage struct {
	*Report
	CSS      template.CSS
	JS       template.JS
	Data     template.JS
	Sections []htmlSection
}

type htmlSection struct {
	I        int
	Title    string
	R        *analyze.ImageReport
	Layers   []htmlLayer
	Presets  string
	SVG      template.HTML
	W, H     int
	HasTrees bool
}

type htmlLayer struct {
	N         int
	Digest    string
	CreatedBy string
	Full      string // the whole created_by, for a hover
	L         analyze.LayerReport
}

// WriteHTML writes one self-contained page: per platform a treemap of where
// the bytes are, by layer and directory, coloured by what a rewrite does to
// them (kept, debug sections stripped, dropped, shadowed), with details on
// hover, and the per-layer table and the largest wasted items, sortable.
// The page fetches nothing: its style, script and picture are inline, and
// its Content-Security-Policy forbids any request. The treemap needs the
// trees of analyze.Options.Tree; without them the page has the tables alone.
func WriteHTML(w io.Writer, r *Report) error {
	p := htmlPage{Report: r, CSS: template.CSS(pageCSS), JS: template.JS(pageJS)}
	budget := max(htmlMinNodes, HTMLNodes/max(len(r.Images), 1))
	var data [][][]any
	for i, img := range r.Images {
		s := htmlSection{I: i, Title: title(img), R: img, Presets: presets(img.Totals.DropByPreset), W: mapW, H: mapH}
		for j, l := range img.Layers {
			s.Layers = append(s.Layers, htmlLayer{N: j + 1, Digest: Short(l.Digest.String()), CreatedBy: CreatedBy(l.CreatedBy), Full: l.CreatedBy, L: l})
			if l.Tree != nil {
				s.HasTrees = true
			}
		}
		var pt painter
		if s.HasTrees {
			pt.layers(img, budget, rect{0, 0, mapW, mapH})
		}
		s.SVG = template.HTML(pt.svg.String()) // built of numbers and escaped labels
		data = append(data, pt.nodes)
		p.Sections = append(p.Sections, s)
	}
	b, err := json.Marshal(data) // escapes <, > and &: safe inside <script>
	if err != nil {
		return fmt.Errorf("encoding the treemap: %w", err)
	}
	p.Data = template.JS(b)
	return page.Execute(w, p)
}
