package rewrite

import (
	"archive/tar"
	"context"
	"errors"
	"sort"
	"strings"

	"github.com/layerslim/layerslim/internal/imagewalk"
	"github.com/layerslim/layerslim/internal/whiteout"
	"github.com/layerslim/layerslim/tarfilter"
)

// whiteoutsFirst is the last filter of a layer whose whiteouts are known
// before it is written: before the first entry under a directory it writes
// that directory's pending whiteouts (the opaque marker first, then by
// name), and a whiteout that comes by after it was written early is left
// out. Whiteouts have no body, so moving them ahead costs no memory. See
// whiteout.OrderCheck for the rule.
type whiteoutsFirst struct {
	pending map[string][]*tar.Header // by directory
	written map[string]bool          // whiteouts written, by clean name
}

func newWhiteoutsFirst(whiteouts []*tar.Header) *whiteoutsFirst {
	f := &whiteoutsFirst{pending: map[string][]*tar.Header{}, written: map[string]bool{}}
	for _, h := range whiteouts {
		dir, _ := whiteout.DirOf(whiteout.Clean(h.Name))
		f.pending[dir] = append(f.pending[dir], h)
	}
	for _, hs := range f.pending {
		sort.SliceStable(hs, func(i, j int) bool {
			a, b := whiteoutKey(hs[i]), whiteoutKey(hs[j])
			return a < b
		})
	}
	return f
}

// whiteoutKey sorts an opaque marker before the whiteouts beside it.
func whiteoutKey(h *tar.Header) string {
	p := whiteout.Clean(h.Name)
	if _, opaque, _ := whiteout.Parse(p); opaque {
		return "\x00"
	}
	return p
}

func (f *whiteoutsFirst) Filter(ctx context.Context, e tarfilter.Entry, next tarfilter.Writer) error {
	p := whiteout.Clean(e.Header.Name)
	if _, ok := whiteout.DirOf(p); ok {
		if f.written[p] {
			return nil
		}
		f.written[p] = true
		return next.WriteEntry(ctx, e)
	}
	if len(f.pending) > 0 {
		for _, d := range whiteout.Ancestors(p) {
			if err := f.emit(ctx, d, next); err != nil {
				return err
			}
		}
	}
	return next.WriteEntry(ctx, e)
}

// Flush writes the whiteouts of directories no entry was written under,
// by directory name.
func (f *whiteoutsFirst) Flush(ctx context.Context, next tarfilter.Writer) error {
	dirs := make([]string, 0, len(f.pending))
	for d := range f.pending {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		if err := f.emit(ctx, d, next); err != nil {
			return err
		}
	}
	return nil
}

func (f *whiteoutsFirst) emit(ctx context.Context, dir string, next tarfilter.Writer) error {
	hs, ok := f.pending[dir]
	if !ok {
		return nil
	}
	delete(f.pending, dir)
	for _, h := range hs {
		p := whiteout.Clean(h.Name)
		if f.written[p] {
			continue
		}
		f.written[p] = true
		if err := next.WriteEntry(ctx, tarfilter.Entry{Header: h, Body: strings.NewReader("")}); err != nil {
			return err
		}
	}
	return nil
}

// whiteoutTap is a Writer that sets whiteouts aside and passes every
// other entry on.
type whiteoutTap struct {
	next      tarfilter.Writer
	whiteouts []*tar.Header
}

func (w *whiteoutTap) WriteEntry(ctx context.Context, e tarfilter.Entry) error {
	if _, ok := whiteout.DirOf(whiteout.Clean(e.Header.Name)); ok {
		c := tarfilter.CloneHeader(e.Header)
		c.Size = 0
		w.whiteouts = append(w.whiteouts, &c)
		return nil
	}
	return w.next.WriteEntry(ctx, e)
}

// orderWatch is a filter that passes every entry on, remembers the
// whiteouts, and notes whether one came after an entry under its
// directory.
type orderWatch struct {
	check     whiteout.OrderCheck
	whiteouts []*tar.Header
	late      bool
}

func (w *orderWatch) Filter(ctx context.Context, e tarfilter.Entry, next tarfilter.Writer) error {
	p := whiteout.Clean(e.Header.Name)
	if w.check.Add(p) {
		w.late = true
	}
	if _, ok := whiteout.DirOf(p); ok {
		c := tarfilter.CloneHeader(e.Header)
		c.Size = 0
		w.whiteouts = append(w.whiteouts, &c)
	}
	return next.WriteEntry(ctx, e)
}

// errAgain ends a layer's first pass when a second one is needed: a
// whiteout came after entries beside it, or a kept hardlink lost its
// content with a dropped target.
var errAgain = errors.New("the layer needs a second pass")

// processLayer runs one source layer through the pipeline. A layer whose
// whiteouts come after entries under their directories (which an applier
// working in tar order reads wrongly), or whose hardlinks would go with a
// dropped target of the same layer, is read a second time: with the
// whiteouts the first pass saw written ahead of those entries, and the
// target's content written at the first link's name. It then counts as
// rewritten. The first pass keeps only headers.
func processLayer(ctx context.Context, in imagewalk.Layer, o *options, platform string, paths map[string]bool) (layerOut, error) {
	first := &layerPass{watch: &orderWatch{}}
	out, err := processLayerPass(ctx, in, o, platform, paths, first)
	if !errors.Is(err, errAgain) {
		return out, err
	}
	clear(paths)
	second := &layerPass{relink: first.relink}
	if first.watch.late {
		second.first = newWhiteoutsFirst(first.watch.whiteouts)
	}
	// The layer has started and its bytes were counted once already.
	again := *o
	again.reporter = ReporterFunc(func(e Event) {
		if e.Kind != LayerStarted && e.Kind != LayerProgress {
			o.reporter.Report(e)
		}
	})
	return processLayerPass(ctx, in, &again, platform, paths, second)
}

// layerPass is what a pass over a layer does beyond its filters: the
// first watches the order of whiteouts, the second puts the known
// whiteouts first and moves dropped targets' content to their links.
type layerPass struct {
	watch  *orderWatch
	first  *whiteoutsFirst
	relink *relinker
}

func (l *layerPass) wrap(f tarfilter.Filter) tarfilter.Filter {
	if l == nil {
		return f
	}
	fs := []tarfilter.Filter{f}
	if l.relink != nil {
		fs = append([]tarfilter.Filter{l.relink}, fs...)
	}
	if l.first != nil {
		fs = append(fs, l.first)
	}
	if l.watch != nil {
		fs = append(fs, l.watch)
	}
	return tarfilter.Chain(fs...)
}

// again reports, after the first pass, whether a second is needed.
func (l *layerPass) again(changes []Change) bool {
	if l == nil || l.watch == nil {
		return false
	}
	l.relink = relinks(changes)
	return l.watch.late || l.relink != nil
}
