// Package analyze tells what a rewrite would save on an image, without
// writing anything: per layer and in total, the bytes of ELF debug
// sections, of paths the drop presets remove, of files that later layers
// shadow (overwrite, delete or hide under an opaque directory), and the
// size the image would have after the rewrite with zstd.
//
// Each layer is read once, from the top of the image down: what the layers
// above a layer hide is known (whiteout.Shadow) before its entries stream
// by, so a shadowed file is never inspected or compressed, and a dropped
// or debug byte is counted only when the file stays visible. Memory holds
// the paths of the image and the entries of one layer (metadata, never
// file bodies); an ELF file is spooled to memory below 1 MiB and to a
// temporary file above.
package analyze

import (
	"context"
	"errors"
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/drop"
	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/imagewalk"
	"github.com/layerslim/layerslim/internal/limit"
)

// TopItems is how many of the largest wasted items a report lists.
const TopItems = 20

// Options configure Image and Index. The zero value analyzes with no drop
// presets, no stripping (elf.None, as a rewrite without options), one
// layer at a time and zstd level 3.
type Options struct {
	// Drop decides which paths a rewrite drops; nil drops nothing.
	Drop *drop.Matcher
	// Strip is the --strip mode whose savings are counted. The zero value
	// is elf.None, as in a rewrite without rewrite.WithStrip: nothing is
	// stripped, so no strip savings; the command line passes --strip
	// (unneeded by default).
	Strip elf.Mode
	// Jobs is how many layer blobs are read at once. The walk itself is
	// top-down and sequential (a layer's result depends on every layer
	// above it), so with Jobs > 1 the next Jobs-1 layers below the one
	// being walked are downloaded ahead into TempDir, verified, and walked
	// from there. Worth it for a registry; for a local layout or archive,
	// 1 (no copies) is best. Values below 1 mean 1.
	Jobs int
	// TempDir holds the downloaded blobs and large ELF files; "" is the
	// system's.
	TempDir string
	// Level is the zstd level of the size estimate (default 3).
	Level int
	// Platforms, when not empty, selects the images of an index (and checks
	// the platform of a single image), by internal/imagewalk's rule: an
	// empty variant or os.version matches any.
	Platforms []v1.Platform
	// MaxLayerSize is the most uncompressed bytes one layer may hold (0:
	// 64 GiB, negative: no limit); MaxSpool the most bytes of one ELF file
	// spooled for inspection (0: 16 GiB, negative: no limit).
	MaxLayerSize, MaxSpool int64
	// Tree asks for LayerReport.Tree: where each layer's bytes are, by
	// directory, for a picture of the image. TreeNodes bounds the nodes of
	// all the trees of one image (0: DefaultTreeNodes), shared among the
	// layers by their compressed sizes.
	Tree      bool
	TreeNodes int
}

// normalize fills in the defaults; in the result a limit of 0 is none.
func (o Options) normalize() (Options, error) {
	o.Jobs = max(o.Jobs, 1)
	o.MaxLayerSize = limit.Resolve(o.MaxLayerSize, limit.DefaultMaxLayerSize)
	o.MaxSpool = limit.Resolve(o.MaxSpool, limit.DefaultMaxSpool)
	if o.Level == 0 {
		o.Level = compress.DefaultLevel(compress.Zstd)
	}
	if err := compress.ValidLevel(compress.Zstd, o.Level); err != nil {
		return o, fmt.Errorf("analyze: %w", err)
	}
	if o.Strip < elf.None || o.Strip > elf.All {
		return o, fmt.Errorf("analyze: unknown strip mode %s", o.Strip)
	}
	return o, nil
}

// LayerReport is what a rewrite would save in one layer. Byte counts of
// files are their content sizes (tar headers aside); CompressedSize,
// UncompressedSize and EstimatedZstd are whole blob and stream sizes.
type LayerReport struct {
	Digest    v1.Hash         `json:"digest,omitzero"`
	MediaType types.MediaType `json:"mediaType,omitempty"`
	// CreatedBy is the config history's created_by for the layer, when the
	// history's non-empty entries map one to one onto the layers.
	CreatedBy string `json:"createdBy,omitempty"`
	// CompressedSize is the blob's size as its descriptor gives it.
	CompressedSize int64 `json:"compressedSize"`
	// UncompressedSize is the size of the layer's tar stream.
	UncompressedSize int64 `json:"uncompressedSize"`
	// Files counts the entries that are not directories or whiteouts.
	Files int `json:"files"`
	// DebugBytes is what stripping removes from ELF files (and static
	// archives) that stay visible and are not dropped: elf.Info.DebugBytes.
	DebugBytes int64 `json:"debugBytes"`
	// DropBytes is the content of visible files the drop rules remove, and
	// DropByPreset the same by preset name ("drop-path" for --drop-path).
	DropBytes    int64            `json:"dropBytes"`
	DropByPreset map[string]int64 `json:"dropByPreset,omitempty"`
	// ShadowedBytes is the content of files the merged filesystem does not
	// show: overwritten, deleted or hidden by a later layer, or by a later
	// entry of the same path in this layer.
	ShadowedBytes int64 `json:"shadowedBytes"`
	// ELFFiles counts the visible, kept ELF files, stripped or not, and the
	// static archives that have debug sections to strip.
	ELFFiles int `json:"elfFiles"`
	// EstimatedZstd is the size of the layer after the rewrite: the tar
	// records of what stays (ELF files as stripped), compressed with zstd
	// at Options.Level.
	EstimatedZstd int64 `json:"estimatedZstd"`
	// Skipped says why a layer was not read (non-distributable layers are
	// passed through by a rewrite); its estimate is its compressed size.
	Skipped string `json:"skipped,omitempty"`
	// LateWhiteouts counts the whiteouts and opaque markers that come
	// after entries under their directory, against the image-spec's
	// SHOULD: an applier that works in tar order deletes what the layer
	// itself wrote. A rewrite writes them first.
	LateWhiteouts int `json:"lateWhiteouts,omitempty"`
	// Notes say what a reader of the layer should know (the first late
	// whiteout, by name).
	Notes []string `json:"notes,omitempty"`
	// Tree is where the layer's bytes are, by directory (Options.Tree).
	Tree *Node `json:"tree,omitempty"`
}

// Waste is what the layer's debug, drop and shadowed bytes add up to.
func (l *LayerReport) Waste() int64 { return l.DebugBytes + l.DropBytes + l.ShadowedBytes }

func (l *LayerReport) add(o *LayerReport) {
	l.CompressedSize += o.CompressedSize
	l.UncompressedSize += o.UncompressedSize
	l.Files += o.Files
	l.DebugBytes += o.DebugBytes
	l.DropBytes += o.DropBytes
	l.ShadowedBytes += o.ShadowedBytes
	l.ELFFiles += o.ELFFiles
	l.EstimatedZstd += o.EstimatedZstd
	for k, v := range o.DropByPreset {
		if l.DropByPreset == nil {
			l.DropByPreset = map[string]int64{}
		}
		l.DropByPreset[k] += v
	}
}

// Item is one wasted file.
type Item struct {
	Path  string `json:"path"`
	Layer int    `json:"layer"` // 1 is the bottom layer
	Bytes int64  `json:"bytes"`
	// Why is "shadowed by layer N", "drop preset NAME", "drop-path" or
	// "debug sections".
	Why string `json:"why"`
}

// ImageReport is the analysis of one image (one platform of an index).
type ImageReport struct {
	Platform string  `json:"platform,omitempty"`
	Digest   v1.Hash `json:"digest"` // of the image manifest
	// Layers are bottom first, as in the manifest.
	Layers []LayerReport `json:"layers"`
	// Totals adds the layers up (Digest, MediaType and CreatedBy unset).
	Totals LayerReport `json:"totals"`
	// WasteBytes is Totals' debug + drop + shadowed bytes, WastePercent
	// the share of the image's uncompressed size they make.
	WasteBytes   int64   `json:"wasteBytes"`
	WastePercent float64 `json:"wastePercent"`
	// Top lists the largest wasted items, largest first (at most TopItems).
	Top []Item `json:"top"`
}

// Image analyzes one image.
func Image(ctx context.Context, img v1.Image, o Options) (*ImageReport, error) {
	o, err := o.normalize()
	if err != nil {
		return nil, err
	}
	return analyzeImage(ctx, img, nil, &o)
}

// Index analyzes the images of an index that Options.Platforms selects (all
// by default), in index order. Attestations (entries for the "unknown"
// os, or marked as such) are skipped and nested indexes refused. The platforms are analyzed one
// after the other, and a layer shared by several of them is read once for
// each: what it wastes depends on the layers above it, which differ per
// platform.
func Index(ctx context.Context, idx v1.ImageIndex, o Options) ([]*ImageReport, error) {
	o, err := o.normalize()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading index: %w", err)
	}
	images, err := imagewalk.Images(im, o.Platforms)
	if err != nil {
		return nil, err
	}
	var out []*ImageReport
	for _, d := range images {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("reading manifest %s: %w", d.Digest, err)
		}
		rep, err := analyzeImage(ctx, img, d.Platform, &o)
		var pe *platformError
		switch {
		case errors.As(err, &pe):
			continue // the config says otherwise than the index
		case err != nil:
			return nil, fmt.Errorf("%s (%s): %w", imagewalk.PlatformName(d.Platform), d.Digest, err)
		}
		out = append(out, rep)
	}
	if len(out) == 0 {
		return nil, errors.New("no image in the index matches the selected platforms")
	}
	return out, nil
}

// platformError is analyzeImage's error for an image of a platform that
// Options.Platforms does not select.
type platformError struct{ platform string }

func (e *platformError) Error() string {
	return fmt.Sprintf("image is for %s, which the selected platforms do not include", e.platform)
}

func analyzeImage(ctx context.Context, img v1.Image, plat *v1.Platform, o *Options) (*ImageReport, error) {
	src, err := imagewalk.Read(img)
	if err != nil {
		return nil, err
	}
	mf, cf := src.Manifest, src.Config
	p := src.Platform(plat)
	if !imagewalk.Match(o.Platforms, p) {
		return nil, &platformError{platform: p.String()}
	}
	ins, err := src.Layers()
	if err != nil {
		return nil, err
	}
	rep := &ImageReport{Digest: src.Digest, Layers: make([]LayerReport, len(ins))}
	if p.OS != "" {
		rep.Platform = p.String()
	}
	created := createdBy(cf, len(ins))
	for i, in := range ins {
		d := in.Desc
		l := &rep.Layers[i]
		l.Digest, l.MediaType, l.CompressedSize = d.Digest, d.MediaType, d.Size
		if created != nil {
			l.CreatedBy = created[i]
		}
	}

	dir, err := os.MkdirTemp(o.TempDir, "layerslim-analyze-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	w := newWalker(o, dir)
	if o.Tree {
		w.treeBudget = treeBudgets(mf.Layers, o.TreeNodes)
	}
	if err := w.run(ctx, ins, rep.Layers); err != nil {
		return nil, err
	}

	for i := range rep.Layers {
		rep.Totals.add(&rep.Layers[i])
	}
	rep.WasteBytes = rep.Totals.Waste()
	if rep.Totals.UncompressedSize > 0 {
		rep.WastePercent = 100 * float64(rep.WasteBytes) / float64(rep.Totals.UncompressedSize)
	}
	rep.Top = w.top.sorted()
	return rep, nil
}

// createdBy maps the history's non-empty entries onto n layers, or returns
// nil when they do not map one to one.
func createdBy(cf *v1.ConfigFile, n int) []string {
	var out []string
	for _, h := range cf.History {
		if !h.EmptyLayer {
			out = append(out, h.CreatedBy)
		}
	}
	if len(out) != n {
		return nil
	}
	return out
}
