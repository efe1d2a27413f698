package rewrite

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/imagewalk"
	"github.com/layerslim/layerslim/manifest"
)

// Result is a rewritten image or index. Exactly one of Image and Index is
// set. Its layers live in temporary files until Close.
type Result struct {
	Image  v1.Image
	Index  v1.ImageIndex
	Report Report
	// DebugImage or DebugIndex is the debug image, with WithDebugImage:
	// the slim image plus a layer of debug files (an index of them for an
	// index).
	DebugImage v1.Image
	DebugIndex v1.ImageIndex

	spools []*spooledLayer
}

// Close removes the temporary files that hold the output layers.
func (r *Result) Close() error {
	var errs []error
	for _, s := range r.spools {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	r.spools = nil
	return errors.Join(errs...)
}

// Image rewrites one image: its layers go through the pipeline (in parallel,
// bounded by WithJobs) and a new manifest is built around them.
func Image(ctx context.Context, img v1.Image, opts ...Option) (*Result, error) {
	o, err := makeOptions(opts...)
	if err != nil {
		return nil, err
	}
	r := &run{o: o, tasks: map[v1.Hash]*layerTask{}}
	start := time.Now()
	p, err := r.planImage(ctx, img, nil)
	if err != nil {
		return nil, err
	}
	if p.platform != "" && !imagewalk.Match(o.platforms, p.plat) {
		return nil, fmt.Errorf("image is for %s, which --platform does not select", p.platform)
	}
	res := &Result{}
	if err := r.process(ctx); err != nil {
		r.cleanup()
		return nil, err
	}
	if err := r.consolidateDebug(ctx); err != nil {
		r.cleanup()
		return nil, err
	}
	out, dbg, ir, err := r.assemble(ctx, p)
	var dual *dualImage
	if err == nil && o.dual() {
		dual, err = r.dualImage(ctx, p, out, dbg, ir)
	}
	r.closeDebug()
	res.spools = r.spools()
	if err != nil {
		res.Close()
		return nil, err
	}
	res.Image, res.DebugImage = out, dbg
	res.Report = Report{
		SourceDigest: ir.SourceDigest, OutputDigest: ir.OutputDigest, MediaType: ir.MediaType, DebugDigest: debugDigest(ir),
		Options: o.describe(), Images: []ImageReport{ir}, Duration: time.Since(start),
	}
	dual.apply(res)
	r.totals(&res.Report)
	return res, nil
}

// Index rewrites every image of an index that the platform option selects
// and builds an index of the results, in the source's order. Entries that
// are not images (attestations and the like) are kept as they were when no
// platform selection is made. A layer that several platforms share is
// processed once.
func Index(ctx context.Context, idx v1.ImageIndex, opts ...Option) (*Result, error) {
	o, err := makeOptions(opts...)
	if err != nil {
		return nil, err
	}
	r := &run{o: o, tasks: map[v1.Hash]*layerTask{}}
	start := time.Now()
	srcDigest, err := idx.Digest()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading index: %w", err)
	}
	type child struct {
		desc v1.Descriptor
		plan *imagePlan
		keep bool
	}
	var children []child
	dropVariants := sourceVariants(im, o.codec)
	entries, err := imagewalk.Children(im, o.platforms, true)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		d := e.Desc
		if dropVariants[e.Position] {
			continue
		}
		if !e.Image {
			children = append(children, child{desc: d, keep: true})
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("reading manifest %s: %w", d.Digest, err)
		}
		p, err := r.planImage(ctx, img, d.Platform)
		if err != nil {
			return nil, fmt.Errorf("%s (%s): %w", imagewalk.PlatformName(d.Platform), d.Digest, err)
		}
		if !imagewalk.Match(o.platforms, p.plat) {
			continue
		}
		p.desc = d
		children = append(children, child{desc: d, plan: p})
	}
	if len(children) == 0 {
		return nil, fmt.Errorf("no manifest in the index matches the selected platforms")
	}
	if err := r.process(ctx); err != nil {
		r.cleanup()
		return nil, err
	}
	if err := r.consolidateDebug(ctx); err != nil {
		r.cleanup()
		return nil, err
	}
	res := &Result{}
	done := false
	defer func() {
		if !done {
			r.cleanup()
		}
	}()

	format := manifest.OutputFormat(manifest.FormatOf(im.MediaType), o.codec == compress.Gzip && !o.dual(), true)
	rep := Report{SourceDigest: srcDigest, Options: o.describe(), DroppedVariants: dropped(im, dropVariants)}
	out := &builtIndex{images: map[v1.Hash]v1.Image{}, indexes: map[v1.Hash]v1.ImageIndex{}}
	var descs, dbgDescs []v1.Descriptor
	dbgOut := &builtIndex{images: map[v1.Hash]v1.Image{}, indexes: map[v1.Hash]v1.ImageIndex{}}
	for _, c := range children {
		if c.keep {
			d := c.desc
			if d.MediaType.IsIndex() {
				sub, err := idx.ImageIndex(d.Digest)
				if err != nil {
					return nil, fmt.Errorf("reading index %s: %w", d.Digest, err)
				}
				out.indexes[d.Digest] = sub
			} else {
				img, err := idx.Image(d.Digest)
				if err != nil {
					return nil, fmt.Errorf("reading manifest %s: %w", d.Digest, err)
				}
				out.images[d.Digest] = img
			}
			descs = append(descs, d)
			rep.Kept = append(rep.Kept, d)
			continue
		}
		img, dbg, ir, err := r.assemble(ctx, c.plan)
		if err != nil {
			return nil, err
		}
		if dbg != nil && !o.dual() {
			dd := d0(c.desc, ir.Debug.Digest, dbg)
			dbgOut.images[dd.Digest] = dbg
			dbgDescs = append(dbgDescs, dd)
		}
		d := c.desc
		d.MediaType = ir.MediaType
		d.Digest = ir.OutputDigest
		d.Size, _ = img.Size()
		d.Annotations = variantAnnotations(c.desc.Annotations, o.codec, false)
		if o.dual() {
			if err := r.indexVariant(ctx, c.plan, c.desc, img, dbg, ir, &rep, out, dbgOut, &descs, &dbgDescs); err != nil {
				return nil, err
			}
			continue
		}
		out.images[d.Digest] = img
		descs = append(descs, d)
		rep.Images = append(rep.Images, ir)
	}
	descs, rep.Dropped = dropStaleAttestations(descs, rep.Images)
	rep.Kept, _ = dropStaleAttestations(rep.Kept, rep.Images)
	for _, d := range rep.Dropped {
		delete(out.images, d.Digest)
	}
	if o.dual() {
		sortVariants(descs)
		sortVariants(dbgDescs)
	}
	srcRaw, err := idx.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("reading index: %w", err)
	}
	raw, desc, err := manifest.BuildIndex(manifest.Index{
		Source: im, SourceRaw: srcRaw, Format: format, Manifests: descs,
		Annotations: manifest.Provenance(srcDigest, o.describe(), o.version),
	})
	if err != nil {
		return nil, err
	}
	out.raw, out.desc = raw, desc
	res.Index = out
	if len(dbgDescs) > 0 && allSameAsSlim(rep.Images) {
		// Nothing was split on any platform: the debug tag names the
		// slim index itself.
		res.DebugIndex = out
		rep.DebugDigest = &desc.Digest
	} else if len(dbgDescs) > 0 {
		ann := manifest.Provenance(srcDigest, o.describe(), o.version)
		ann[manifest.AnnotationDebugFor] = desc.Digest.String()
		draw, ddesc, err := manifest.BuildIndex(manifest.Index{Source: debugIndexSource(im, desc, format), Format: format, Manifests: dbgDescs, Annotations: ann})
		if err != nil {
			return nil, err
		}
		dbgOut.raw, dbgOut.desc = draw, ddesc
		res.DebugIndex = dbgOut
		rep.DebugDigest = &ddesc.Digest
	}
	r.closeDebug()
	rep.OutputDigest, rep.MediaType = desc.Digest, desc.MediaType
	rep.Duration = time.Since(start)
	r.totals(&rep)
	res.Report = rep
	res.spools = r.spools()
	done = true
	return res, nil
}

// d0 is the index entry of a debug image, with the platform of its slim one.
func d0(src v1.Descriptor, digest v1.Hash, img v1.Image) v1.Descriptor {
	d := src
	d.Digest = digest
	d.Size, _ = img.Size()
	d.MediaType, _ = img.MediaType()
	return d
}

func debugDigest(ir ImageReport) *v1.Hash {
	if ir.Debug == nil {
		return nil
	}
	return &ir.Debug.Digest
}

// run holds the state of one Image or Index call.
type run struct {
	o        *options
	tasks    map[v1.Hash]*layerTask
	order    []*layerTask    // single layers, in the order first seen
	squashes []*layerTask    // merges: they wait for the base layers below them
	extra    []*spooledLayer // debug layers
	// chosen is the debug file shipped for each build-id debug file name,
	// debugConflicts why, where copies disagreed (see consolidateDebug).
	chosen         map[string]DebugFile
	debugConflicts map[string]string
	variant        *variantState // with WithAddCompression
	plans          []*imagePlan  // every image rewritten, in the order planned
	// held caches, for dropChainedLinks, the names a layer's output writes.
	held map[*layerTask]map[string]bool
}

// squashKey names the merge of layers [from, n) of a stack: the result
// depends on the whole stack (the base's paths decide which whiteouts stay).
func squashKey(ins []imagewalk.Layer, from int) v1.Hash {
	h := sha256.New()
	fmt.Fprintf(h, "squash %d", from)
	for _, in := range ins {
		fmt.Fprintf(h, " %s", in.Desc.Digest)
	}
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
}

func newTask(in imagewalk.Layer, platform string) *layerTask {
	return &layerTask{in: in, platform: platform, done: make(chan struct{})}
}

// layerTask is the work on one distinct source layer, or on one merge.
type layerTask struct {
	in       imagewalk.Layer
	platform string // of the first image that has it, for messages
	users    int
	out      layerOut
	squash   *squashSpec     // set for a merge of several layers
	spool    *spooledLayer   // the output's temporary file, if it has one
	key      v1.Hash         // the merge's squashKey, or linksKey with lower
	lower    map[string]bool // names lower layers dropped as links (see dropChainedLinks)
	collect  bool            // record the output's paths (a merge above needs them)
	paths    map[string]bool
	done     chan struct{} // closed when the task has ended
	// assembled is set once an output image includes the layer; later
	// images report it as shared.
	assembled bool
}

// imagePlan is a source image read as far as its manifest and config.
type imagePlan struct {
	src      v1.Image
	blobs    []v1.Layer // src's layers, one per mf.Layers entry
	digest   v1.Hash
	mf       *v1.Manifest
	config   []byte
	diffIDs  []v1.Hash
	plat     v1.Platform
	platform string
	desc     v1.Descriptor // in the source index, if any
	layers   []*layerTask  // layers [0, from); nil entries are passed through
	from     int           // the first merged layer (len when none is)
	squash   *layerTask    // the merge of layers [from, n), if any
	base     *Base         // how the base was found, with --squash
}

func (r *run) planImage(ctx context.Context, img v1.Image, plat *v1.Platform) (*imagePlan, error) {
	src, err := imagewalk.Read(img)
	if err != nil {
		return nil, err
	}
	mf, cf := src.Manifest, src.Config
	p := &imagePlan{src: img, blobs: src.Blobs, digest: src.Digest, mf: mf, config: src.RawConfig, diffIDs: cf.RootFS.DiffIDs}
	r.plans = append(r.plans, p)
	p.plat = src.Platform(plat)
	if p.plat.OS != "" {
		p.platform = p.plat.String()
	}
	ins, err := src.Layers()
	if err != nil {
		return nil, err
	}
	from := len(ins)
	if r.o.squash != SquashNone {
		b, err := findBase(ctx, r.o, p.plat, mf, cf)
		if err != nil {
			return nil, err
		}
		p.base = &b
		from = min(max(b.Layers, 0), len(ins))
		for i := from; i < len(ins); i++ {
			if compress.NonDistributable(ins[i].Desc.MediaType) {
				from = i + 1 // nothing to merge with a layer we cannot read
			}
		}
		if len(ins)-from < 2 {
			from = len(ins)
		}
	}
	for _, in := range ins[:from] {
		if compress.NonDistributable(in.Desc.MediaType) {
			p.layers = append(p.layers, nil)
			continue
		}
		t, ok := r.tasks[in.Desc.Digest]
		if !ok {
			t = newTask(in, p.platform)
			r.tasks[in.Desc.Digest] = t
			r.order = append(r.order, t)
		}
		if from < len(ins) {
			t.collect = true
		}
		t.users++
		p.layers = append(p.layers, t)
	}
	if from < len(ins) {
		key := squashKey(ins, from)
		t, ok := r.tasks[key]
		if !ok {
			t = newTask(ins[len(ins)-1], p.platform)
			t.key = key
			t.squash = &squashSpec{all: ins, from: from}
			for _, bt := range p.layers {
				if bt != nil {
					t.squash.base = append(t.squash.base, bt)
				}
			}
			r.tasks[key] = t
			r.squashes = append(r.squashes, t)
		}
		t.users++
		p.squash = t
		p.from = from
	} else {
		p.from = len(ins)
	}
	return p, nil
}

// process runs every distinct layer, the largest first, at most jobs at a
// time, then the layers dropChainedLinks rewrites again. The first failure
// cancels the rest.
func (r *run) process(ctx context.Context) error {
	if err := r.runTasks(ctx, r.order, r.squashes); err != nil {
		return err
	}
	return r.dropChainedLinks(ctx)
}

// runTasks runs layers and then merges, the largest layers first, at
// most jobs at a time. The first failure cancels the rest.
func (r *run) runTasks(ctx context.Context, layers, merges []*layerTask) error {
	todo := append([]*layerTask(nil), layers...)
	sort.SliceStable(todo, func(i, j int) bool { return todo[i].in.Desc.Size > todo[j].in.Desc.Size })
	// Merges go last: they wait for the layers below them, which must have
	// started by then whatever the job limit.
	todo = append(todo, merges...)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(r.o.jobs)
	for _, t := range todo {
		g.Go(func() error {
			defer close(t.done)
			where := "layer " + t.in.Desc.Digest.String()
			if t.platform != "" {
				where = t.platform + " " + where
			}
			var key string
			owned := false
			if r.o.useCache() {
				key = t.cacheKey(r.o)
				hit, own, err := r.lookup(ctx, t, key)
				if err != nil {
					return fmt.Errorf("%s: %w", where, err)
				}
				if hit {
					return nil
				}
				owned = own
			}
			var out layerOut
			var err error
			o := t.options(r.o)
			if t.squash != nil {
				out, err = processSquash(ctx, t.squash, o, t.platform)
			} else {
				if t.collect && r.o.filter != nil {
					t.paths = map[string]bool{}
				}
				out, err = processLayer(ctx, t.in, o, t.platform, t.paths)
			}
			if err != nil {
				if owned {
					r.o.cache.Abandon(key)
				}
				return fmt.Errorf("%s: %w", where, err)
			}
			t.out = out
			if out.report.Action != Reused { // a reused source is not ours to remove
				t.spool, _ = out.layer.(*spooledLayer)
			}
			if r.o.useCache() {
				if err := r.store(ctx, t, key, owned); err != nil {
					return fmt.Errorf("%s: %w", where, err)
				}
			}
			return nil
		})
	}
	return g.Wait()
}

func (r *run) spools() []*spooledLayer {
	out := append([]*spooledLayer(nil), r.extra...)
	for _, t := range append(r.order, r.squashes...) {
		if t.spool != nil {
			out = append(out, t.spool)
		}
	}
	return withVariants(out)
}

func (r *run) cleanup() { (&Result{spools: r.spools()}).Close(); r.closeDebug() }

// closeDebug removes the debug files' spools once the debug layers hold them.
func (r *run) closeDebug() {
	for _, t := range append(r.order, r.squashes...) {
		closeDebug(t.out.debug)
		t.out.debug = nil
	}
}

// totals adds up the distinct blobs, so a layer shared by platforms counts once.
func (r *run) totals(rep *Report) {
	for _, t := range append(r.order, r.squashes...) {
		rep.SourceBytes += t.out.report.Source.Size
		rep.OutputBytes += t.out.report.Output.Size
	}
}

// assemble builds the output image of p from its processed layers.
func (r *run) assemble(ctx context.Context, p *imagePlan) (v1.Image, v1.Image, ImageReport, error) {
	format := manifest.OutputFormat(manifest.FormatOf(p.mf.MediaType), r.o.codec == compress.Gzip && !r.o.dual(), true)
	ir := ImageReport{Platform: p.platform, SourceDigest: p.digest, Base: p.base}
	var (
		layers  []v1.Layer
		descs   []v1.Descriptor
		diffIDs []v1.Hash
		empty   = map[int]bool{}
	)
	add := func(l v1.Layer, d v1.Descriptor, diffID v1.Hash) {
		layers = append(layers, l)
		descs = append(descs, d)
		diffIDs = append(diffIDs, diffID)
	}
	for i, t := range p.layers {
		sd := p.mf.Layers[i]
		if t == nil {
			mt := sd.MediaType
			if format == manifest.OCI && mt == types.DockerForeignLayer {
				mt = types.OCIRestrictedLayer
			}
			d := sd
			d.MediaType = mt
			add(retype(p.blobs[i], sd.MediaType, mt), d, p.diffIDs[i])
			ir.Layers = append(ir.Layers, LayerReport{
				Source: Blob{Digest: sd.Digest, Size: sd.Size, MediaType: sd.MediaType, DiffID: p.diffIDs[i]},
				Output: Blob{Digest: sd.Digest, Size: sd.Size, MediaType: mt, DiffID: p.diffIDs[i]},
				Action: PassedThrough,
			})
			continue
		}
		lr, l, d, err := r.output(t, sd, format)
		if err != nil {
			return nil, nil, ir, err
		}
		ir.Layers = append(ir.Layers, lr)
		if lr.Empty {
			empty[i] = true
			continue
		}
		add(l, d, lr.Output.DiffID)
	}
	var note string
	var merged []int
	if t := p.squash; t != nil {
		lr, l, d, err := r.output(t, p.mf.Layers[len(p.mf.Layers)-1], format)
		if err != nil {
			return nil, nil, ir, err
		}
		ir.Layers = append(ir.Layers, lr)
		// The merged layer gets its own history entry; the steps it
		// merges keep theirs, as empty_layer ones.
		n := len(p.mf.Layers)
		for i := p.from; i < n; i++ {
			if lr.Empty {
				empty[i] = true
			} else {
				merged = append(merged, i)
			}
		}
		if !lr.Empty {
			add(l, d, lr.Output.DiffID)
		}
		note = fmt.Sprintf("layerslim: layers %d-%d merged into one", p.from+1, n)
	}
	srcRaw, err := p.src.RawManifest()
	if err != nil {
		return nil, nil, ir, fmt.Errorf("reading manifest: %w", err)
	}
	b, err := manifest.BuildImage(manifest.Image{
		Source: p.mf, SourceRaw: srcRaw, Config: p.config, Format: format, Layers: descs, DiffIDs: diffIDs,
		Annotations: manifest.Provenance(p.digest, r.o.describe(), r.o.version),
		EmptyLayers: empty, AddHistory: note, Merged: merged,
	})
	if err != nil {
		return nil, nil, ir, err
	}
	img := &builtImage{b: b, layers: layers}
	ir.OutputDigest = b.Descriptor.Digest
	ir.MediaType = b.Descriptor.MediaType
	for _, l := range ir.Layers {
		ir.SourceBytes += l.Source.Size
		ir.OutputBytes += l.Output.Size
	}
	if r.o.strip == elf.None || !r.o.debugImage {
		return img, nil, ir, nil
	}
	files, conflicts := r.debugFiles(p)
	if len(files) == 0 {
		// Nothing to split: the debug tag names the slim image itself.
		ir.Debug = &DebugReport{Digest: b.Descriptor.Digest, SameAsSlim: true}
		return img, img, ir, nil
	}
	dl, err := r.debugLayer(ctx, files)
	if err != nil {
		return nil, nil, ir, fmt.Errorf("building the debug layer: %w", err)
	}
	mt, err := compress.LayerMediaType(r.o.codec, format == manifest.OCI)
	if err != nil {
		return nil, nil, ir, err
	}
	dd := v1.Descriptor{MediaType: mt, Size: dl.size, Digest: dl.digest, Annotations: dl.annotations}
	ann := manifest.Provenance(p.digest, r.o.describe(), r.o.version)
	ann[manifest.AnnotationDebugFor] = b.Descriptor.Digest.String()
	db, err := manifest.BuildImage(manifest.Image{
		Source: debugSource(b.ManifestObj, b.Descriptor, format), Config: b.Config, Format: format,
		Layers: append(append([]v1.Descriptor(nil), descs...), dd), DiffIDs: append(append([]v1.Hash(nil), diffIDs...), dl.diffID),
		Annotations:     ann,
		AddLayerHistory: debugHistory(files),
	})
	if err != nil {
		return nil, nil, ir, err
	}
	ir.Debug = &DebugReport{Digest: db.Descriptor.Digest, Files: len(files), Conflicts: conflicts, Layer: Blob{Digest: dl.digest, Size: dl.size, MediaType: mt, Codec: r.o.codec, DiffID: dl.diffID}}
	return img, &builtImage{b: db, layers: append(append([]v1.Layer(nil), layers...), retype(dl, dl.mediaType, mt))}, ir, nil
}

// debugLayer writes the debug files into a layer, in the output codec.
func (r *run) debugLayer(ctx context.Context, files []DebugFile) (*spooledLayer, error) {
	if r.isVariantRun() {
		return r.variant.debugLayer()
	}
	sp, err := newSpool(r.o)
	if err != nil {
		return nil, err
	}
	h := &hashWriter{w: sp.enc, h: sha256.New()}
	if err := writeDebugLayer(ctx, h, files); err != nil {
		sp.discard()
		return nil, err
	}
	l, err := sp.close(v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.h.Sum(nil))})
	if err != nil {
		sp.discard()
		return nil, err
	}
	r.extra = append(r.extra, l)
	return l, nil
}

// output is the layer a task produced, typed for format.
func (r *run) output(t *layerTask, sd v1.Descriptor, format manifest.Format) (LayerReport, v1.Layer, v1.Descriptor, error) {
	lr := t.out.report
	lr.Shared = t.assembled
	t.assembled = true
	d := v1.Descriptor{Digest: lr.Output.Digest, Size: lr.Output.Size}
	var l v1.Layer
	if lr.Action == Reused {
		codec := lr.Source.Codec
		mt, err := compress.LayerMediaType(codec, format == manifest.OCI)
		if err != nil {
			return lr, nil, d, err
		}
		if c, _ := compress.MediaTypeCodec(sd.MediaType); c == codec && manifest.FormatOf(layerFamily(sd.MediaType)) == format {
			// The same bytes under the same kind of type: keep the
			// descriptor's own type and annotations.
			mt = sd.MediaType
			d.Annotations = sd.Annotations
		}
		d.URLs = sd.URLs
		d.MediaType = mt
		l = retype(t.out.layer, sd.MediaType, mt)
	} else {
		mt, err := compress.LayerMediaType(r.o.codec, format == manifest.OCI)
		if err != nil {
			return lr, nil, d, err
		}
		d.MediaType = mt
		d.Annotations = layerAnnotations(t.out.layer)
		l = retype(t.out.layer, lr.Output.MediaType, mt)
	}
	lr.Output.MediaType = d.MediaType
	return lr, l, d, nil
}

// layerFamily maps a layer media type to a manifest media type of its family.
func layerFamily(mt types.MediaType) types.MediaType {
	switch mt {
	case types.DockerLayer, types.DockerForeignLayer, types.DockerUncompressedLayer, "application/vnd.docker.image.rootfs.diff.tar.zstd":
		return types.DockerManifestSchema2
	}
	return types.OCIManifestSchema1
}

// retype presents l under media type to when it differs from from, keeping a
// registry layer mountable.
func retype(l v1.Layer, from, to types.MediaType) v1.Layer {
	if from == to {
		return l
	}
	if ml, ok := l.(*remote.MountableLayer); ok {
		return &remote.MountableLayer{Layer: &typedLayer{Layer: ml.Layer, mediaType: to}, Reference: ml.Reference}
	}
	return &typedLayer{Layer: l, mediaType: to}
}
