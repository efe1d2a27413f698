package rewrite

import (
	"archive/tar"
	"context"
	"strings"

	"github.com/layerslim/layerslim/internal/whiteout"
	"github.com/layerslim/layerslim/tarfilter"
)

// relinks finds, in the changes of a layer's first pass, the hardlinks the
// drop rules left out only because their target was dropped in the same
// layer, and returns for each such target the link to hold its content
// (the first, in layer order) and every link to it (links to links
// included). nil when there is none.
func relinks(changes []Change) *relinker {
	files := map[string]bool{} // dropped in this layer, by clean name
	var r *relinker
	for _, c := range changes {
		if c.Action != ActionDropped {
			continue
		}
		p := whiteout.Clean(c.Path)
		target, ok := strings.CutPrefix(c.Reason, linkToDropped)
		if !ok {
			files[p] = true
			continue
		}
		root := target
		if r != nil {
			if t, ok := r.linkTo[target]; ok {
				root = t // a link to a link of the same target
			}
		}
		if !files[target] && (r == nil || r.holder[root] == "") {
			continue // dropped in a lower layer: its content is not here
		}
		if r == nil {
			r = &relinker{holder: map[string]string{}, linkTo: map[string]string{}, holderName: map[string]string{}}
		}
		if r.holder[root] == "" {
			r.holder[root] = p
			r.holderName[root] = c.Path
		}
		r.linkTo[p] = root
		files[p] = false
	}
	return r
}

// relinker is the first filter of a layer's second pass: the entry of a
// dropped file that kept links point to becomes the file at the first
// link's name (its own name a hardlink to it, which the drop rules leave
// out), and the other links point to that name. The layer's content stays
// where a link kept it, without keeping the dropped name.
type relinker struct {
	holder     map[string]string // target → the link that holds its content (clean)
	holderName map[string]string // target → that link's name as the layer spells it
	linkTo     map[string]string // link (clean) → its target
	moved      map[string]bool   // targets whose content went to their holder
}

func (r *relinker) Filter(ctx context.Context, e tarfilter.Entry, next tarfilter.Writer) error {
	h := e.Header
	p := whiteout.Clean(h.Name)
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		holder, ok := r.holderName[p]
		if !ok {
			break
		}
		if r.moved == nil {
			r.moved = map[string]bool{}
		}
		r.moved[p] = true
		moved := tarfilter.CloneHeader(h)
		moved.Name = holder
		if err := next.WriteEntry(ctx, tarfilter.Entry{Header: &moved, Body: e.Body}); err != nil {
			return err
		}
		link := tarfilter.CloneHeader(h)
		link.Typeflag, link.Linkname, link.Size = tar.TypeLink, holder, 0
		return next.WriteEntry(ctx, tarfilter.Entry{Header: &link, Body: strings.NewReader("")})
	case tar.TypeLink:
		target, ok := r.linkTo[p]
		if !ok || !r.moved[target] {
			break // the target was no file of this layer after all
		}
		if r.holder[target] == p {
			return nil // written where the target was
		}
		c := tarfilter.CloneHeader(h)
		c.Linkname = r.holderName[target]
		return next.WriteEntry(ctx, tarfilter.Entry{Header: &c, Body: strings.NewReader("")})
	}
	return next.WriteEntry(ctx, e)
}
