package analyze

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/drop"
	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/blob"
	"github.com/layerslim/layerslim/internal/imagewalk"
	"github.com/layerslim/layerslim/internal/limit"
	"github.com/layerslim/layerslim/internal/spool"
	"github.com/layerslim/layerslim/internal/tarentry"
	"github.com/layerslim/layerslim/internal/whiteout"
)

// memSpool is how much of an ELF file is kept in memory; larger ones go to
// a temporary file.
const memSpool = 1 << 20

var elfMagic = []byte("\x7fELF")

// walker walks the layers of one image from the top down.
type walker struct {
	o      *Options
	dir    string
	shadow *whiteout.Shadow
	// by names, for each path the walked layers put something at, the
	// nearest of those layers above the one being walked: it names the
	// layer that shadows a file.
	by  map[string]hider
	top topItems
	// treeBudget is the most tree nodes of each layer; nil: no trees.
	treeBudget []int
}

// hider holds the nearest layer that put anything at a path, and the
// nearest that put something there which hides what is below it: a
// non-directory, a whiteout or an opaque marker.
type hider struct{ any, hide int32 }

func newWalker(o *Options, dir string) *walker {
	return &walker{o: o, dir: dir, shadow: whiteout.NewShadow(), by: map[string]hider{}, top: topItems{n: TopItems}}
}

// run fills out[i] for every layer of ins.
func (w *walker) run(ctx context.Context, ins []imagewalk.Layer, out []LayerReport) error {
	skip := func(i int) bool { return compress.NonDistributable(ins[i].Desc.MediaType) }
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var p *prefetcher
	if w.o.Jobs > 1 && len(ins) > 1 {
		p = startPrefetch(ctx, ins, skip, w.o.Jobs, w.dir)
	}
	err := w.walk(ctx, ins, out, skip, p)
	cancel()
	if p != nil {
		// A download's error reaches the walk through its slot; what is
		// left here is the cancellation.
		p.g.Wait()
	}
	return err
}

func (w *walker) walk(ctx context.Context, ins []imagewalk.Layer, out []LayerReport, skip func(int) bool, p *prefetcher) error {
	for i := len(ins) - 1; i >= 0; i-- {
		if skip(i) {
			// Its paths are unknown, so it shadows nothing below.
			out[i].Skipped = "non-distributable layer: not read, passed through by a rewrite"
			out[i].EstimatedZstd = ins[i].Desc.Size
			continue
		}
		if err := w.layer(ctx, i, ins[i], p, &out[i]); err != nil {
			return fmt.Errorf("layer %d (%s): %w", i+1, ins[i].Desc.Digest, err)
		}
	}
	return nil
}

// layer reads layer i once and fills rep.
func (w *walker) layer(ctx context.Context, i int, in imagewalk.Layer, p *prefetcher, rep *LayerReport) error {
	b, err := p.open(ctx, i, in)
	if err != nil {
		return err
	}
	defer b.close()
	codec, r, err := compress.Detect(b.r)
	if err != nil {
		return fmt.Errorf("reading blob: %w", err)
	}
	dr, err := compress.NewReader(codec, r)
	if err != nil {
		return err
	}
	defer dr.Close()
	// The uncompressed stream, counted and hashed into the diff_id (a
	// blob.Reader with no digest to check: sha256).
	cr := blob.NewReader(ctx, limit.Reader(dr, w.o.MaxLayerSize, limit.Layer(w.o.MaxLayerSize)), v1.Hash{}, 0, nil)
	est, err := newEstimator(w.o.Level)
	if err != nil {
		return err
	}
	defer est.abort()
	lw := &layerWalk{w: w, i: i, est: est, last: map[string]int{}, touched: map[string]bool{}}
	if err := lw.entries(ctx, cr); err != nil {
		return err
	}
	// Read past the end-of-archive blocks, so both digests cover every byte.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return err
	}
	if err := b.finish(); err != nil {
		return err
	}
	if in.DiffID.Algorithm == "sha256" {
		if err := blob.CheckDiffID(cr.Digest(), in.DiffID); err != nil {
			return err
		}
	}
	rep.UncompressedSize = cr.N()
	return lw.finish(rep)
}

// hiddenBy names the layer that hides an entry at p that Shadow.Hidden
// reported hidden: the nearest layer above that put at p itself what hides
// the entry, or that deleted, made opaque or replaced by a non-directory a
// directory above p. -1 when none is found.
func (w *walker) hiddenBy(p string, isDir bool) int {
	best := int32(-1)
	consider := func(l int32) {
		if l >= 0 && (best < 0 || l < best) {
			best = l
		}
	}
	k := w.shadow.Upper(p)
	if h, ok := w.by[p]; ok {
		if k&(whiteout.File|whiteout.Deleted) != 0 {
			consider(h.hide)
		}
		if !isDir && k != 0 {
			consider(h.any) // anything at all replaces a non-directory
		}
	}
	for a := parentOf(p); a != ""; a = parentOf(a) {
		if w.shadow.Upper(a)&(whiteout.File|whiteout.Deleted|whiteout.Opaque) != 0 {
			consider(w.by[a].hide)
		}
	}
	return int(best)
}

// commit ends layer i: what it holds now shadows the layers below.
func (w *walker) commit(i int, touched map[string]bool) {
	w.shadow.Commit()
	for p, hides := range touched {
		h, ok := w.by[p]
		if !ok {
			h.hide = -1
		}
		h.any = int32(i)
		if hides {
			h.hide = int32(i)
		}
		w.by[p] = h
	}
}

func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

// class is what becomes of an entry.
type class uint8

const (
	kept class = iota
	shadowed
	dropped
)

// entryRec is what the walk of a layer keeps of one entry until the end of
// the layer: a later entry of the same path shadows it.
type entryRec struct {
	path       string
	link       string // a hardlink's clean target
	size       int64  // content bytes of a regular file
	est        int64  // bytes of its record in the estimate
	debug      int64  // debug bytes stripping removes
	reason     string // the drop rule
	by         int    // the layer that shadows it, -1 if unknown
	class      class
	elf        bool
	superseded bool // a later entry of this layer has the same path
	dup        bool // shadowed because it was superseded
}

// layerWalk is the walk of one layer.
type layerWalk struct {
	w        *walker
	i        int
	est      *estimator
	recs     []entryRec
	last     map[string]int  // path → its latest entry in recs
	links    []int           // the kept hardlinks, in recs
	touched  map[string]bool // paths the layer puts something at; true where it hides what is below
	linkRule *drop.Links     // rewrite.Drop's hardlink rule, made when needed
	files    int
	order    lateWhiteouts
}

func (lw *layerWalk) entries(ctx context.Context, r io.Reader) error {
	tr := tar.NewReader(r)
	// Sparse files' bodies are their holes expanded: bound them all.
	n := lw.w.o.MaxLayerSize
	bodies := limit.Reader(tr, n, limit.Files(n))
	prev := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if prev != "" {
				return fmt.Errorf("reading tar after %s: %w", prev, err)
			}
			return fmt.Errorf("reading tar: %w", err)
		}
		prev = h.Name
		lw.order.add(h.Name)
		if err := lw.entry(h, tarentry.Body(bodies, h.Size)); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
}

// touch records that this layer puts something at p, and so directories
// above it; hides says that what it puts at p hides what lower layers have
// there (a non-directory, a whiteout, an opaque marker).
func (lw *layerWalk) touch(p string, hides bool) {
	if _, ok := lw.touched[p]; !ok || hides {
		lw.touched[p] = hides
	}
	for a := parentOf(p); a != ""; a = parentOf(a) {
		if _, ok := lw.touched[a]; ok {
			return // and so are the directories above it
		}
		lw.touched[a] = false
	}
}

func (lw *layerWalk) entry(h *tar.Header, body io.Reader) error {
	sh := lw.w.shadow
	p := whiteout.Clean(h.Name)
	if p == "" {
		_, err := lw.est.record(h, nil) // the root itself: nothing hides it
		return err
	}
	if target, _, ok := whiteout.Parse(p); ok {
		if err := whiteout.Check(p); err != nil {
			return err
		}
		hidden := sh.AncestorHidden(p)
		sh.Mark(p, false)
		lw.touch(target, true)
		if hidden {
			return nil
		}
		_, err := lw.est.record(h, nil)
		return err
	}
	isDir := h.Typeflag == tar.TypeDir
	lw.touch(p, !isDir)
	r := entryRec{path: p, by: -1}
	if !isDir {
		lw.files++
	}
	if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeGNUSparse {
		r.size = h.Size
	}
	hidden := sh.Hidden(p, isDir)
	sh.Mark(p, isDir)
	if j, ok := lw.last[p]; ok {
		lw.recs[j].superseded = true
	}
	idx := len(lw.recs)
	lw.last[p] = idx
	defer func() { lw.recs = append(lw.recs, r) }()

	var err error
	switch {
	case hidden:
		r.class, r.by = shadowed, lw.w.hiddenBy(p, isDir)
		return nil
	case isDir:
		if sh.DirReplaced(p) {
			return nil // a directory entry above replaces it
		}
		r.est, err = lw.est.record(h, nil)
		return err
	}
	if reason, ok := lw.dropReason(p, h); ok {
		r.class, r.reason = dropped, reason
		return nil
	}
	if h.Typeflag == tar.TypeLink {
		r.link = whiteout.Clean(h.Linkname)
		lw.links = append(lw.links, idx)
	}
	if r.size > 0 {
		return lw.file(&r, h, body)
	}
	r.est, err = lw.est.record(h, nil)
	return err
}

// dropReason applies the drop rules as rewrite's Drop filter does, with
// its hardlink rule (drop.Links): a hardlink to a dropped file goes too. A
// rewrite also drops a link to a
// name a lower layer dropped as a link (a chain across layers); the walk
// goes from the top down and does not see that, which changes no
// estimate: a hardlink holds no content and its record is a header.
func (lw *layerWalk) dropReason(p string, h *tar.Header) (string, bool) {
	m := lw.w.o.Drop
	if m == nil {
		return "", false
	}
	reason, ok := m.Match(p, false)
	if !ok && h.Typeflag == tar.TypeLink {
		if lw.linkRule == nil {
			lw.linkRule = drop.NewLinks(m, nil)
		}
		return lw.linkRule.Match(p, whiteout.Clean(h.Linkname))
	}
	return reason, ok
}

// file estimates a kept regular file, stripped if it is ELF (found by its
// magic bytes) or a static archive.
func (lw *layerWalk) file(r *entryRec, h *tar.Header, body io.Reader) error {
	var head [8]byte
	n, err := io.ReadFull(body, head[:min(int64(len(head)), h.Size)])
	if err != nil {
		return err
	}
	all := io.MultiReader(bytes.NewReader(head[:n]), body)
	isELF := bytes.HasPrefix(head[:n], elfMagic)
	isAr := n == len(head) && string(head[:]) == "!<arch>\n"
	if lw.w.o.Strip == elf.None || (!isELF && !isAr) {
		r.elf = isELF
		r.est, err = lw.est.record(h, copyFrom(all))
		return err
	}
	if n := lw.w.o.MaxSpool; n > 0 && h.Size > n {
		return limit.Spool(h.Size, n)
	}
	sp := spool.New(lw.w.dir, memSpool, 0)
	defer sp.Close()
	if _, err := io.Copy(sp, all); err != nil {
		return err
	}
	if isAr {
		// Static archives are inputs to later links: a rewrite keeps them.
		r.est, err = lw.est.record(h, copyFrom(sp.Reader()))
		return err
	}
	return lw.elfFile(r, h, sp)
}

func copyFrom(src io.Reader) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.Copy(w, src)
		return err
	}
}

// elfFile counts an ELF file's debug bytes with elf.Inspect and puts the
// stripped file that elf.Split writes in the estimate.
func (lw *layerWalk) elfFile(r *entryRec, h *tar.Header, sp *spool.Spool) error {
	mode, size := lw.w.o.Strip, sp.Size()
	if elf.IsDebugFile(r.path, sp, size) {
		// A separate debug file moves whole to the debug image.
		r.elf, r.debug = true, size
		c := *h
		c.Size = 0
		var err error
		r.est, err = lw.est.record(&c, nil)
		return err
	}
	info, err := elf.Inspect(sp, size, mode)
	if err != nil && !errors.Is(err, elf.ErrUnchanged) {
		return fmt.Errorf("inspecting ELF: %w", err)
	}
	if err == nil && (info.LinkInput() || stripSkipped(r.path)) {
		info.DebugBytes = 0 // a rewrite leaves it as it is
	}
	if err != nil || info.DebugBytes == 0 {
		// Malformed (a rewrite keeps it as it is), or nothing to strip.
		r.elf = err == nil
		r.est, err = lw.est.record(h, copyFrom(sp.Reader()))
		return err
	}
	r.elf = true
	c := *h
	c.Size = size - info.DebugBytes // near enough for the header's bytes
	stripped := false
	r.est, err = lw.est.record(&c, func(w io.Writer) error {
		_, err := elf.Split(sp, size, mode, elf.DebugLinkName(r.path, info.BuildID), w, io.Discard)
		if errors.Is(err, elf.ErrUnchanged) {
			_, err = io.Copy(w, sp.Reader())
			return err
		}
		stripped = err == nil
		return err
	})
	if err != nil {
		return fmt.Errorf("splitting debug info: %w", err)
	}
	if stripped {
		r.debug = info.DebugBytes
	}
	return nil
}

// finish settles the layer: earlier entries of a path written again are
// shadowed, a shadowed file that a kept hardlink of the layer points to is
// not (the link keeps its content), and the totals and items go to rep.
func (lw *layerWalk) finish(rep *LayerReport) error {
	var superseded int64 // estimate bytes of records a later entry replaces
	for j := range lw.recs {
		r := &lw.recs[j]
		if r.superseded && r.class != shadowed {
			superseded += r.est
			r.class, r.by, r.dup = shadowed, lw.i, true
		}
	}
	for _, j := range lw.links {
		l := &lw.recs[j]
		if l.class != kept {
			continue
		}
		if k, ok := lw.last[l.link]; ok && k < j && lw.recs[k].class == shadowed && !lw.recs[k].dup {
			lw.recs[k].class = kept
		}
	}
	c, err := lw.est.close()
	if err != nil {
		return fmt.Errorf("estimating: %w", err)
	}
	// The encoder has seen the superseded records: take out their share,
	// at the layer's own compression ratio.
	if superseded > 0 && lw.est.in > 0 {
		c -= int64(float64(c) * float64(superseded) / float64(lw.est.in))
	}
	rep.EstimatedZstd = c
	rep.Files = lw.files
	lw.order.note(rep)
	layer := lw.i + 1
	var tb *treeBuilder
	if lw.w.treeBudget != nil {
		tb = newTreeBuilder()
		defer func() { rep.Tree = tb.tree(lw.w.treeBudget[lw.i]) }()
	}
	for j := range lw.recs {
		r := &lw.recs[j]
		tb.addRec(r)
		switch r.class {
		case shadowed:
			rep.ShadowedBytes += r.size
			lw.w.top.add(Item{Path: r.path, Layer: layer, Bytes: r.size, Why: shadowWhy(r)})
		case dropped:
			rep.DropBytes += r.size
			if r.size > 0 {
				if rep.DropByPreset == nil {
					rep.DropByPreset = map[string]int64{}
				}
				rep.DropByPreset[r.reason] += r.size
			}
			lw.w.top.add(Item{Path: r.path, Layer: layer, Bytes: r.size, Why: dropWhy(r.reason)})
		case kept:
			if r.elf {
				rep.ELFFiles++
			}
			rep.DebugBytes += r.debug
			lw.w.top.add(Item{Path: r.path, Layer: layer, Bytes: r.debug, Why: "debug sections"})
		}
	}
	lw.w.commit(lw.i, lw.touched)
	return nil
}

// dropWhy is an Item's Why for a drop rule's reason.
func dropWhy(reason string) string {
	if reason == drop.ReasonDropPath {
		return "drop-path"
	}
	return "drop preset " + reason
}

func shadowWhy(r *entryRec) string {
	switch {
	case r.dup:
		return fmt.Sprintf("shadowed by layer %d (a later entry of the same path)", r.by+1)
	case r.by >= 0:
		return fmt.Sprintf("shadowed by layer %d", r.by+1)
	}
	return "shadowed by a later layer"
}

// stripSkip are the compiled elf.DefaultStripSkip globs.
var stripSkip = func() []*drop.Pattern {
	var ps []*drop.Pattern
	for _, g := range elf.DefaultStripSkip {
		p, err := drop.Glob(g)
		if err != nil {
			panic(err)
		}
		ps = append(ps, p)
	}
	return ps
}()

// stripSkipped reports whether a rewrite leaves the ELF file at p as it is
// by default (elf.DefaultStripSkip).
func stripSkipped(p string) bool {
	for _, g := range stripSkip {
		if g.Match(p) {
			return true
		}
	}
	return false
}
