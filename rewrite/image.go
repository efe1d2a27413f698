// This file holds the entry points Image and Index with their Result, and
// reading the source: which children of an index are rewritten, and each
// image's manifest, config and layers. The stages they run are in plan.go,
// schedule.go and assemble.go (see doc.go).

package rewrite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/internal/imagewalk"
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
	var children []indexChild
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
			children = append(children, indexChild{desc: d, keep: true})
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
		children = append(children, indexChild{desc: d, plan: p})
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
	return r.assembleIndex(ctx, idx, im, srcDigest, children, dropVariants, start)
}

// planImage reads img (its manifest, its config with the digest checked,
// its layers) and plans its layers (planLayers, in plan.go). plat is the
// platform its index gives it, if any.
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
	if err := r.planLayers(ctx, p, ins, mf, cf); err != nil {
		return nil, err
	}
	return p, nil
}
