package rewrite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"sort"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/internal/imagewalk"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/manifest"
)

// AnnotationZstdVariant marks, on an index entry, the zstd variant of an
// image that the index also holds in another compression. It is the
// convention of containers/image (podman and buildah push
// --add-compression): clients that know it pick the zstd entry, the others
// take the first entry of their platform, which is the gzip one.
const AnnotationZstdVariant = imagewalk.AnnotationZstdVariant

// WithAddCompression also writes every image in codec c (at level, 0 for
// the codec's default): the output is an index holding, per platform, the
// image in the WithCompression codec and in c, with the same config. Entries
// of other codecs come before the zstd entries, which carry
// AnnotationZstdVariant. Each layer's tar stream is produced once and
// encoded into both codecs as it goes. The debug image gets the same shape.
// The layer cache is not used (it keeps one blob per layer).
func WithAddCompression(c compress.Codec, level int) Option {
	return func(o *options) error {
		o.addCodec, o.addLevel = c, level
		return nil
	}
}

// ValidAddCompression reports whether add may be added to images written in
// codec: the pair must be gzip and zstd, in either order.
func ValidAddCompression(codec, add compress.Codec) error {
	if add != compress.Gzip && add != compress.Zstd {
		return fmt.Errorf("%w: added compression %q: want gzip or zstd", compress.ErrUnsupported, add)
	}
	if add == codec {
		return fmt.Errorf("added compression %s is the compression itself: add the other one (gzip or zstd)", add)
	}
	if codec != compress.Gzip && codec != compress.Zstd {
		return fmt.Errorf("added compression %s needs the compression to be gzip or zstd, not %s", add, codec)
	}
	return nil
}

// dual reports whether every image is written in two compressions.
func (o *options) dual() bool { return o.addCodec != "" }

// checkAdd validates the added compression and fills in its level.
func (o *options) checkAdd() error {
	if !o.dual() {
		return nil
	}
	if err := ValidAddCompression(o.codec, o.addCodec); err != nil {
		return err
	}
	if err := compress.ValidLevel(o.addCodec, o.addLevel); err != nil {
		return fmt.Errorf("added compression: %w", err)
	}
	if o.addLevel == 0 {
		o.addLevel = compress.DefaultLevel(o.addCodec)
	}
	return nil
}

// describeAdd is the added compression's part of describe.
func (o *options) describeAdd() []string {
	var parts []string
	if o.chunked {
		parts = append(parts, "zstd-chunked=true")
	}
	if !o.dual() {
		return parts
	}
	return append(parts, "add-compression="+string(o.addCodec), fmt.Sprintf("add-level=%d", o.addLevel))
}

// variant is o for the added compression. It describes itself as o does.
func (o *options) variant() *options {
	v := *o
	v.codec, v.level = o.addCodec, o.addLevel
	v.primary = o
	return &v
}

// addVariant makes s encode what is written to it in the added compression
// too, into a spool of its own. Both encoders see the same bytes; the
// second runs on its own goroutine.
func (s *outSpool) addVariant(o *options) error {
	if !o.dual() || o.primary != nil {
		return nil
	}
	alt, err := newSpool(o.variant())
	if err != nil {
		return err
	}
	s.alt = alt
	s.enc = &teeEncoder{first: s.enc, second: newAsyncWriter(alt.enc)}
	return nil
}

// withVariants adds the variants' files to ls.
func withVariants(ls []*spooledLayer) []*spooledLayer {
	out := ls
	for _, l := range ls {
		if l.alt != nil {
			out = append(out, l.alt)
		}
	}
	return out
}

// teeEncoder writes to two encoders. Close drains and waits for the second
// (whose own spool closes it) and closes the first.
type teeEncoder struct {
	first  io.WriteCloser
	second *asyncWriter
	closed bool
}

func (t *teeEncoder) Write(p []byte) (int, error) {
	if _, err := t.second.Write(p); err != nil {
		return 0, err
	}
	return t.first.Write(p)
}

func (t *teeEncoder) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	err := t.second.Close()
	return errors.Join(err, t.first.Close())
}

// asyncWriter hands what is written to w on a goroutine of its own, in
// order, through a few fixed buffers: memory stays bounded, and the writer
// and w work at the same time.
type asyncWriter struct {
	w    io.Writer
	buf  []byte
	full chan []byte
	free chan []byte
	done chan struct{}
	err  error // set by the goroutine; read once done is closed
	once sync.Once
}

const asyncBuffer = 1 << 20

func newAsyncWriter(w io.Writer) *asyncWriter {
	a := &asyncWriter{w: w, full: make(chan []byte, 2), free: make(chan []byte, 3), done: make(chan struct{})}
	for range 2 {
		a.free <- make([]byte, 0, asyncBuffer)
	}
	a.buf = make([]byte, 0, asyncBuffer)
	go a.loop()
	return a
}

func (a *asyncWriter) loop() {
	defer close(a.done)
	for b := range a.full {
		if a.err == nil {
			_, a.err = a.w.Write(b)
		}
		a.free <- b[:0]
	}
}

func (a *asyncWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := copy(a.buf[len(a.buf):cap(a.buf)], p)
		a.buf, p = a.buf[:len(a.buf)+k], p[k:]
		if len(a.buf) == cap(a.buf) {
			a.full <- a.buf
			a.buf = <-a.free
		}
	}
	return n, nil
}

// Close writes what is buffered, waits for the goroutine and returns the
// first error of w.
func (a *asyncWriter) Close() error {
	a.once.Do(func() {
		if len(a.buf) > 0 {
			a.full <- a.buf
			a.buf = nil
		}
		close(a.full)
		<-a.done
	})
	return a.err
}

// variantState ties the run that assembles the added-compression images to
// the run whose layers it reuses.
type variantState struct {
	of     *run // in the variant run: the primary run
	run    *run // in the primary run: the variant run
	clones map[*layerTask]*layerTask
	debug  int // debug layers taken so far
}

// variantRun is the run that assembles the variants, created on first use.
func (r *run) variantRun() *run {
	if r.variant == nil {
		v := &run{o: r.o.variant(), tasks: map[v1.Hash]*layerTask{}}
		v.variant = &variantState{of: r, clones: map[*layerTask]*layerTask{}}
		r.variant = &variantState{run: v}
	}
	return r.variant.run
}

// isVariantRun reports whether r assembles added-compression variants.
func (r *run) isVariantRun() bool { return r.variant != nil && r.variant.of != nil }

// task is t with its output swapped for the variant.
func (v *variantState) task(t *layerTask) (*layerTask, error) {
	if t == nil {
		return nil, nil
	}
	if c, ok := v.clones[t]; ok {
		return c, nil
	}
	sp, _ := t.out.layer.(*spooledLayer)
	if sp == nil || sp.alt == nil {
		return nil, fmt.Errorf("layer %s: no %s variant was encoded", t.in.Desc.Digest, v.ofCodec())
	}
	a := sp.alt
	c := &layerTask{in: t.in, platform: t.platform, users: t.users, out: t.out, done: t.done, key: t.key, squash: t.squash, spool: a}
	c.out.layer = a
	c.out.report.Output = Blob{Digest: a.digest, Size: a.size, MediaType: a.mediaType, Codec: a.codec, DiffID: a.diffID}
	v.clones[t] = c
	return c, nil
}

func (v *variantState) ofCodec() compress.Codec {
	if v.of != nil {
		return v.of.o.addCodec
	}
	return ""
}

// plan is p with every layer task swapped for its variant.
func (v *variantState) plan(p *imagePlan) (*imagePlan, error) {
	q := *p
	q.layers = make([]*layerTask, len(p.layers))
	var err error
	for i, t := range p.layers {
		if q.layers[i], err = v.task(t); err != nil {
			return nil, err
		}
	}
	if q.squash, err = v.task(p.squash); err != nil {
		return nil, err
	}
	return &q, nil
}

// debugLayer is the variant of the primary run's next debug layer: the
// variant run assembles each image right after the primary one, so the
// debug layers come in the same order.
func (v *variantState) debugLayer() (*spooledLayer, error) {
	ex := v.of.extra
	if v.debug >= len(ex) || ex[v.debug].alt == nil {
		return nil, errors.New("no variant of the debug layer was encoded")
	}
	l := ex[v.debug].alt
	v.debug++
	return l, nil
}

// variantOut is an image in both compressions, as index entries.
type variantOut struct {
	entries, debugEntries []v1.Descriptor
	images, debugImages   map[v1.Hash]v1.Image
	report                ImageReport
}

// assembleVariant builds the added-compression variant of p, whose primary
// image img (debug image dbg, report ir) was just assembled, and returns
// both as index entries: desc is the source's entry (zero for a single
// image), whose platform and annotations they keep.
func (r *run) assembleVariant(ctx context.Context, p *imagePlan, desc v1.Descriptor, img, dbg v1.Image, ir ImageReport) (*variantOut, error) {
	vr := r.variantRun()
	q, err := vr.variant.plan(p)
	if err != nil {
		return nil, err
	}
	vimg, vdbg, vir, err := vr.assemble(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s variant: %w", r.o.addCodec, err)
	}
	if desc.Platform == nil && p.plat.OS != "" {
		plat := p.plat
		desc.Platform = &plat
	}
	out := &variantOut{images: map[v1.Hash]v1.Image{}, debugImages: map[v1.Hash]v1.Image{}, report: vir}
	add := func(list *[]v1.Descriptor, m map[v1.Hash]v1.Image, i v1.Image, codec compress.Codec) error {
		d, err := entry(desc, i, codec, true)
		if err != nil {
			return err
		}
		*list = append(*list, d)
		m[d.Digest] = i
		return nil
	}
	if err := add(&out.entries, out.images, img, r.o.codec); err != nil {
		return nil, err
	}
	if err := add(&out.entries, out.images, vimg, r.o.addCodec); err != nil {
		return nil, err
	}
	if dbg != nil && vdbg != nil {
		if err := add(&out.debugEntries, out.debugImages, dbg, r.o.codec); err != nil {
			return nil, err
		}
		if err := add(&out.debugEntries, out.debugImages, vdbg, r.o.addCodec); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// entry is the index entry of img, compressed with codec, in place of the
// source entry src. In a dual index (or where src claimed it) the zstd
// annotation says whether img is the zstd variant.
func entry(src v1.Descriptor, img v1.Image, codec compress.Codec, dual bool) (v1.Descriptor, error) {
	d := src
	var err error
	if d.Digest, err = img.Digest(); err != nil {
		return d, err
	}
	if d.Size, err = img.Size(); err != nil {
		return d, err
	}
	if d.MediaType, err = img.MediaType(); err != nil {
		return d, err
	}
	d.Annotations = variantAnnotations(src.Annotations, codec, dual)
	return d, nil
}

// variantAnnotations are a source entry's annotations for an output entry
// in codec: AnnotationZstdVariant is set on zstd entries of a dual index and
// removed from every other entry.
func variantAnnotations(a map[string]string, codec compress.Codec, dual bool) map[string]string {
	set := dual && codec == compress.Zstd
	if _, has := a[AnnotationZstdVariant]; !has && !set {
		return a
	}
	out := maps.Clone(a)
	if out == nil {
		out = map[string]string{}
	}
	delete(out, AnnotationZstdVariant)
	if set {
		out[AnnotationZstdVariant] = "true"
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// sortVariants puts the zstd variants after every other entry, keeping the
// order otherwise, as containers/image does.
func sortVariants(ds []v1.Descriptor) {
	sort.SliceStable(ds, func(i, j int) bool {
		return !imagewalk.IsZstdVariant(ds[i]) && imagewalk.IsZstdVariant(ds[j])
	})
}

// dualIndexes builds the index of the two variants of the single image p
// (and of its debug image likewise).
func (r *run) dualIndexes(ctx context.Context, p *imagePlan, img, dbg v1.Image, ir ImageReport) (*builtIndex, *builtIndex, *variantOut, error) {
	vo, err := r.assembleVariant(ctx, p, v1.Descriptor{}, img, dbg, ir)
	if err != nil {
		return nil, nil, nil, err
	}
	build := func(entries []v1.Descriptor, images map[v1.Hash]v1.Image, ann map[string]string) (*builtIndex, error) {
		sortVariants(entries)
		raw, desc, err := manifest.BuildIndex(manifest.Index{Source: &v1.IndexManifest{}, Format: manifest.OCI, Manifests: entries, Annotations: ann})
		if err != nil {
			return nil, err
		}
		return &builtIndex{raw: raw, desc: desc, images: images, indexes: map[v1.Hash]v1.ImageIndex{}}, nil
	}
	out, err := build(vo.entries, vo.images, manifest.Provenance(p.digest, r.o.describe(), r.o.version))
	if err != nil {
		return nil, nil, nil, err
	}
	if len(vo.debugEntries) == 0 {
		return out, nil, vo, nil
	}
	ann := manifest.Provenance(p.digest, r.o.describe(), r.o.version)
	ann[manifest.AnnotationDebugFor] = out.desc.Digest.String()
	dout, err := build(vo.debugEntries, vo.debugImages, ann)
	if err != nil {
		return nil, nil, nil, err
	}
	return out, dout, vo, nil
}

// sourceVariants returns the entries of a source index to leave out because
// they are another compression of an image the index already holds: for a
// platform with both zstd-annotated and other entries, only the entry in
// codec is kept (the zstd one for zstd, else the first other one). The
// output then holds each platform once per compression, never twice.
func sourceVariants(im *v1.IndexManifest, codec compress.Codec) map[int]bool {
	type group struct{ zstd, other []int }
	var keys []string
	groups := map[string]*group{}
	for i, d := range im.Manifests {
		if !d.MediaType.IsImage() || imagewalk.IsAttestation(d) || d.Platform == nil {
			continue
		}
		k := platformKey(*d.Platform)
		g, ok := groups[k]
		if !ok {
			g = &group{}
			groups[k] = g
			keys = append(keys, k)
		}
		if imagewalk.IsZstdVariant(d) {
			g.zstd = append(g.zstd, i)
		} else {
			g.other = append(g.other, i)
		}
	}
	skip := map[int]bool{}
	for _, k := range keys {
		g := groups[k]
		if len(g.zstd) == 0 || len(g.other) == 0 {
			continue
		}
		keep := g.other[0]
		if codec == compress.Zstd {
			keep = g.zstd[0]
		}
		for _, i := range append(append([]int(nil), g.zstd...), g.other...) {
			if i != keep {
				skip[i] = true
			}
		}
	}
	return skip
}

func platformKey(p v1.Platform) string {
	return fmt.Sprintf("%s\x00%s\x00%v", p.String(), p.OSVersion, p.OSFeatures)
}

// dualImage is a single image written as an index of its two variants.
type dualImage struct {
	index, debug *builtIndex
	variant      ImageReport
}

// dualImage assembles the variant of the single image p and builds the
// index of both (and the debug index likewise).
func (r *run) dualImage(ctx context.Context, p *imagePlan, img, dbg v1.Image, ir ImageReport) (*dualImage, error) {
	out, dout, vo, err := r.dualIndexes(ctx, p, img, dbg, ir)
	if err != nil {
		return nil, err
	}
	return &dualImage{index: out, debug: dout, variant: vo.report}, nil
}

// apply makes res the index of d (nothing for a nil d).
func (d *dualImage) apply(res *Result) {
	if d == nil {
		return
	}
	res.Image, res.DebugImage = nil, nil
	res.Index = d.index
	res.Report.OutputDigest, res.Report.MediaType = d.index.desc.Digest, d.index.desc.MediaType
	res.Report.Variants = []ImageReport{d.variant}
	res.Report.DebugDigest = nil
	if d.debug != nil {
		res.DebugIndex = d.debug
		res.Report.DebugDigest = &d.debug.desc.Digest
	}
}

// indexVariant assembles the variant of one image of an index and adds both
// entries (and both debug entries) to the output indexes.
func (r *run) indexVariant(ctx context.Context, p *imagePlan, src v1.Descriptor, img, dbg v1.Image, ir ImageReport, rep *Report, out, dbgOut *builtIndex, descs, dbgDescs *[]v1.Descriptor) error {
	vo, err := r.assembleVariant(ctx, p, src, img, dbg, ir)
	if err != nil {
		return err
	}
	*descs = append(*descs, vo.entries...)
	maps.Copy(out.images, vo.images)
	*dbgDescs = append(*dbgDescs, vo.debugEntries...)
	maps.Copy(dbgOut.images, vo.debugImages)
	rep.Images = append(rep.Images, ir)
	rep.Variants = append(rep.Variants, vo.report)
	return nil
}

// dropped lists the entries of im that skip marks.
func dropped(im *v1.IndexManifest, skip map[int]bool) []v1.Descriptor {
	var out []v1.Descriptor
	for i, d := range im.Manifests {
		if skip[i] {
			out = append(out, d)
		}
	}
	return out
}
