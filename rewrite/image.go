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

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/internal/blob"
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
	if len(o.platforms) > 0 && p.platform != "" && !MatchPlatform(o.platforms, p.plat) {
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
	if err := manifest.CheckNotNested(im); err != nil {
		return nil, err
	}
	var children []indexChild
	dropVariants := sourceVariants(im, o.codec)
	for i, d := range im.Manifests {
		if dropVariants[i] {
			continue
		}
		switch {
		case d.MediaType.IsImage() && !isAttestation(d):
			if d.Platform != nil && len(o.platforms) > 0 && !MatchPlatform(o.platforms, *d.Platform) {
				continue
			}
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("reading manifest %s: %w", d.Digest, err)
			}
			p, err := r.planImage(ctx, img, d.Platform)
			if err != nil {
				return nil, fmt.Errorf("%s (%s): %w", platformName(d.Platform), d.Digest, err)
			}
			if len(o.platforms) > 0 && !MatchPlatform(o.platforms, p.plat) {
				continue
			}
			p.desc = d
			children = append(children, indexChild{desc: d, plan: p})
		case len(o.platforms) == 0:
			children = append(children, indexChild{desc: d, keep: true})
		}
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

func isAttestation(d v1.Descriptor) bool {
	if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
		return true
	}
	return d.Platform != nil && d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown"
}

func platformName(p *v1.Platform) string {
	if p == nil {
		return "unknown platform"
	}
	return p.String()
}

// MatchPlatform reports whether p is one of want; an empty variant or OS version
// in want matches any.
func MatchPlatform(want []v1.Platform, p v1.Platform) bool {
	for _, w := range want {
		if w.OS == p.OS && w.Architecture == p.Architecture && (w.Variant == "" || w.Variant == p.Variant) {
			return true
		}
	}
	return false
}

// planImage reads img (its manifest, its config with the digest checked,
// its layers) and plans its layers (planLayers, in plan.go). plat is the
// platform its index gives it, if any.
func (r *run) planImage(ctx context.Context, img v1.Image, plat *v1.Platform) (*imagePlan, error) {
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	mf, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading config %s: %w", mf.Config.Digest, err)
	}
	if err := blob.Check(config, mf.Config); err != nil {
		return nil, fmt.Errorf("config %s (%d bytes): %w", mf.Config.Digest, mf.Config.Size, err)
	}
	cf, err := v1.ParseConfigFile(bytesReader(config))
	if err != nil {
		return nil, fmt.Errorf("parsing config %s: %w", mf.Config.Digest, err)
	}
	p := &imagePlan{src: img, digest: digest, mf: mf, config: config, diffIDs: cf.RootFS.DiffIDs}
	r.plans = append(r.plans, p)
	switch {
	case plat != nil:
		p.plat = *plat
	default:
		p.plat = v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	}
	if p.plat.OS != "" {
		p.platform = p.plat.String()
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading layers: %w", err)
	}
	if len(layers) != len(mf.Layers) {
		return nil, fmt.Errorf("image has %d layers but its manifest lists %d", len(layers), len(mf.Layers))
	}
	if len(cf.RootFS.DiffIDs) != len(mf.Layers) {
		return nil, fmt.Errorf("manifest lists %d layers but the config has %d diff_ids", len(mf.Layers), len(cf.RootFS.DiffIDs))
	}
	ins := make([]layerIn, len(mf.Layers))
	for i, d := range mf.Layers {
		if !compress.NonDistributable(d.MediaType) {
			if _, known := compress.MediaTypeCodec(d.MediaType); !known {
				return nil, fmt.Errorf("layer %s: %w %q", d.Digest, ErrUnsupportedMediaType, d.MediaType)
			}
		}
		ins[i] = layerIn{layer: layers[i], desc: d, diffID: cf.RootFS.DiffIDs[i]}
	}
	if err := r.planLayers(ctx, p, ins, mf, cf); err != nil {
		return nil, err
	}
	return p, nil
}
