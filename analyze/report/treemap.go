package report

import (
	"fmt"
	"html"
	"strings"

	"github.com/layerslim/layerslim/analyze"
)

// rect is an area of the picture, in SVG user units.
type rect struct{ x, y, w, h float64 }

// squarify lays out vals (largest first, all positive) in r as a squarified
// treemap (Bruls, Huizing and van Wijk): rows along the shorter side, each
// grown while that keeps its rectangles closer to squares.
func squarify(vals []float64, r rect) []rect {
	out := make([]rect, len(vals))
	var total float64
	for _, v := range vals {
		total += v
	}
	if total <= 0 || r.w <= 0 || r.h <= 0 {
		return out
	}
	scale := r.w * r.h / total
	areas := make([]float64, len(vals))
	for i, v := range vals {
		areas[i] = v * scale
	}
	for i := 0; i < len(areas); {
		side := min(r.w, r.h)
		j, sum := i+1, areas[i]
		best := worst(areas[i], areas[i], sum, side)
		for j < len(areas) {
			s := sum + areas[j]
			w := worst(areas[i], areas[j], s, side) // areas are sorted: i is the largest, j the smallest
			if w > best {
				break
			}
			best, sum = w, s
			j++
		}
		if r.w >= r.h {
			cw := sum / r.h
			y := r.y
			for k := i; k < j; k++ {
				h := areas[k] / cw
				out[k] = rect{r.x, y, cw, h}
				y += h
			}
			r.x, r.w = r.x+cw, r.w-cw
		} else {
			rh := sum / r.w
			x := r.x
			for k := i; k < j; k++ {
				w := areas[k] / rh
				out[k] = rect{x, r.y, w, rh}
				x += w
			}
			r.y, r.h = r.y+rh, r.h-rh
		}
		i = j
	}
	return out
}

// worst is the largest aspect ratio in a row of total area sum along side,
// whose largest area is hi and smallest lo.
func worst(hi, lo, sum, side float64) float64 {
	s2, w2 := sum*sum, side*side
	return max(w2*hi/s2, s2/(w2*lo))
}

// kinds are the kinds of bytes, in the order a leaf's slices are drawn, with
// their CSS classes.
var kinds = []struct {
	class string
	bytes func(*analyze.Node) int64
}{
	{"k", func(n *analyze.Node) int64 { return n.Kept }},
	{"g", func(n *analyze.Node) int64 { return n.Debug }},
	{"x", func(n *analyze.Node) int64 { return n.Drop }},
	{"s", func(n *analyze.Node) int64 { return n.Shadowed }},
}

// painter draws the trees of one image as SVG rectangles, and keeps per
// node what a hover shows: [parent, name, kept, debug, drop, shadowed,
// files, why]; a layer's node has parent -1.
type painter struct {
	svg   strings.Builder
	nodes [][]any
}

const header = 13 // height of a directory's label band

// layers draws each layer's tree as one block, sized by its bytes.
func (p *painter) layers(img *analyze.ImageReport, budget int, r rect) {
	type lt struct {
		n     int
		label string
		tree  *analyze.Node
	}
	var ls []lt
	var total int64
	for i, l := range img.Layers {
		if l.Tree != nil && l.Tree.Bytes() > 0 {
			label := fmt.Sprintf("layer %d", i+1)
			if c := CreatedBy(l.CreatedBy); c != "-" {
				label += ": " + c
			}
			ls = append(ls, lt{i + 1, label, l.Tree})
			total += l.Tree.Bytes()
		}
	}
	// Largest first, as squarify wants; ties in layer order.
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0 && ls[j].tree.Bytes() > ls[j-1].tree.Bytes(); j-- {
			ls[j], ls[j-1] = ls[j-1], ls[j]
		}
	}
	vals := make([]float64, len(ls))
	for i, l := range ls {
		vals[i] = float64(l.tree.Bytes())
	}
	for i, rr := range squarify(vals, r) {
		b := max(4, int(int64(budget)*ls[i].tree.Bytes()/max(total, 1)))
		t := *ls[i].tree.Prune(b)
		t.Name = ls[i].label
		p.node(&t, -1, rr)
	}
}

func (p *painter) node(n *analyze.Node, parent int, r rect) {
	if r.w < 0.3 || r.h < 0.3 {
		return
	}
	// A directory holding one directory and nothing else is drawn as one
	// block, named by both ("usr/local/go").
	for parent >= 0 && len(n.Children) == 1 && len(n.Children[0].Children) > 0 {
		c := *n.Children[0]
		c.Name = n.Name + "/" + c.Name
		n = &c
	}
	idx := len(p.nodes)
	p.nodes = append(p.nodes, []any{parent, n.Name, n.Kept, n.Debug, n.Drop, n.Shadowed, n.Files, n.Why})
	if len(n.Children) > 0 && r.w > 6 && r.h > 6 {
		p.rect("f", idx, r)
		inner := rect{r.x + 1, r.y + 1, r.w - 2, r.h - 2}
		if r.w > 40 && r.h > 2*header+4 {
			chars := int((r.w - 4) / 6.2)
			label := n.Name
			if len([]rune(label)) > chars {
				label = string([]rune(label)[:max(chars-1, 0)]) + "…"
			}
			if chars > 2 {
				fmt.Fprintf(&p.svg, `<text x="%.1f" y="%.1f">%s</text>`, r.x+3, r.y+header-3, html.EscapeString(label))
			}
			inner = rect{r.x + 1, r.y + header, r.w - 2, r.h - header - 1}
		}
		var kids []*analyze.Node
		var vals []float64
		for _, c := range n.Children {
			if c.Bytes() > 0 {
				kids = append(kids, c)
				vals = append(vals, float64(c.Bytes()))
			}
		}
		for i, rr := range squarify(vals, inner) {
			p.node(kids[i], idx, rr)
		}
		return
	}
	// A leaf: one slice per kind of byte, along the longer side.
	total := float64(n.Bytes())
	off := 0.0
	for _, k := range kinds {
		b := float64(k.bytes(n))
		if b <= 0 {
			continue
		}
		s := r
		if r.w >= r.h {
			s.x, s.w = r.x+off*r.w/total, b*r.w/total
		} else {
			s.y, s.h = r.y+off*r.h/total, b*r.h/total
		}
		off += b
		p.rect(k.class, idx, s)
	}
}

func (p *painter) rect(class string, idx int, r rect) {
	fmt.Fprintf(&p.svg, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="%s" data-n="%d"/>`,
		r.x, r.y, r.w, r.h, class, idx)
}
