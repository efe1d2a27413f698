// This file holds the assemble stage of Image and Index: from the
// processed layers, the output images (manifest and config, with the
// layers' media types for the output format), the debug image beside each,
// and the output index with its debug index. The dual-compression variants
// are assembled in variants.go, the debug layer's content in
// debugimage.go.

package rewrite

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/manifest"
)

// assembleIndex builds the output index of Index (and its debug index)
// from the source index idx (manifest im, digest srcDigest) and its
// children, once their layers are processed. dropVariants are the source
// entries left out (see sourceVariants).
func (r *run) assembleIndex(ctx context.Context, idx v1.ImageIndex, im *v1.IndexManifest, srcDigest v1.Hash, children []indexChild, dropVariants map[int]bool, start time.Time) (*Result, error) {
	o := r.o
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
			dd := debugEntry(c.desc, ir.Debug.Digest, dbg)
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

// debugEntry is the index entry of a debug image: src, the slim image's
// entry (its platform and annotations), with the debug image's digest,
// size and media type.
func debugEntry(src v1.Descriptor, digest v1.Hash, img v1.Image) v1.Descriptor {
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
	if err := writeDebugLayer(ctx, sp.tar, files); err != nil {
		sp.discard()
		return nil, err
	}
	l, err := sp.close(sp.diffID())
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
