package verify

import (
	"context"
	"errors"
	"fmt"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/layerslim/layerslim/internal/blob"
	"github.com/layerslim/layerslim/internal/imagewalk"
)

// imagePlan is one image to read: its config and layers, and how to name
// it in messages.
type imagePlan struct {
	role     string // "source" or "output"
	name     string // the platform, as results name it
	digest   string // the manifest digest, when known
	platform v1.Platform
	config   *v1.ConfigFile
	layers   []v1.Layer
	descs    []v1.Descriptor
}

// planImage reads img (its config checked against the manifest, by
// imagewalk.Read). digest names the image in errors when img's own digest
// cannot be read.
func planImage(img v1.Image, role, digest string) (*imagePlan, error) {
	if digest == "" {
		if h, err := img.Digest(); err == nil {
			digest = h.String()
		}
	}
	src, err := imagewalk.Read(img)
	if err != nil {
		return nil, fmt.Errorf("reading %s image %s: %w", role, digest, err)
	}
	p := &imagePlan{role: role, digest: digest, config: src.Config, layers: src.Blobs, descs: src.Manifest.Layers}
	p.platform = src.Platform(nil)
	p.name = p.platform.String()
	if p.platform.OS == "" {
		p.name = "unknown platform"
	}
	return p, nil
}

// desc describes the image for a platform Difference.
func (p *imagePlan) desc() string {
	if p.digest == "" {
		return p.name
	}
	return p.name + " (" + p.digest + ")"
}

// cache holds the scans of layers until the last pair that needs them is
// compared, so a layer shared by several images (or by SRC and DST) is
// read once.
//
// A blob that DST shares with SRC is still read from DST, whose store may
// lack it or hold it damaged, but only its digest is checked: its content
// was scanned from SRC.
type cache struct {
	o     Options
	uses  map[v1.Hash]int
	scans map[v1.Hash]*layerScan
	read  map[string]bool // role + " " + digest: blobs read from that side
}

func newCache(o Options) *cache {
	return &cache{o: o, uses: map[v1.Hash]int{}, scans: map[v1.Hash]*layerScan{}, read: map[string]bool{}}
}

// distinct returns the distinct layer digests of ps.
func distinct(ps ...*imagePlan) map[v1.Hash]bool {
	seen := map[v1.Hash]bool{}
	for _, p := range ps {
		for _, d := range p.descs {
			seen[d.Digest] = true
		}
	}
	return seen
}

// use records that a comparison of ps is coming.
func (c *cache) use(ps ...*imagePlan) {
	for h := range distinct(ps...) {
		c.uses[h]++
	}
}

// release forgets the scans no later comparison needs.
func (c *cache) release(ps ...*imagePlan) {
	for h := range distinct(ps...) {
		if c.uses[h]--; c.uses[h] <= 0 {
			delete(c.uses, h)
			if s := c.scans[h]; s != nil {
				s.remove()
			}
			delete(c.scans, h)
		}
	}
}

// close removes the record files of every scan still held.
func (c *cache) close() {
	for _, s := range c.scans {
		s.remove()
	}
	clear(c.scans)
}

// load scans the layers of ps that are not scanned yet, and checks the
// digest of those scanned from the other side, Jobs at a time.
func (c *cache) load(ctx context.Context, ps ...*imagePlan) error {
	type job struct {
		plan  *imagePlan
		i     int
		scan  bool // parse the layer, not just check its digest
		key   string
		layer v1.Layer
		desc  v1.Descriptor
		out   *layerScan
	}
	var jobs []*job
	queued := map[string]bool{}
	scanning := map[v1.Hash]bool{}
	for _, p := range ps {
		for i, d := range p.descs {
			key := p.role + " " + d.Digest.String()
			if c.read[key] || queued[key] {
				continue
			}
			queued[key] = true
			scan := c.scans[d.Digest] == nil && !scanning[d.Digest]
			scanning[d.Digest] = scanning[d.Digest] || scan
			jobs = append(jobs, &job{plan: p, i: i, scan: scan, key: key, layer: p.layers[i], desc: d})
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.o.Jobs)
	for _, j := range jobs {
		g.Go(func() error {
			var err error
			if j.scan {
				j.out, err = scanLayer(gctx, j.layer, j.desc, c.o)
			} else {
				err = checkBlob(gctx, j.layer, j.desc)
			}
			if err != nil {
				return fmt.Errorf("reading %s %s layer %d (%s): %w", j.plan.role, j.plan.name, j.i+1, j.desc.Digest, err)
			}
			return nil
		})
	}
	err := g.Wait()
	for _, j := range jobs {
		if err != nil {
			if j.out != nil {
				j.out.remove()
			}
			continue
		}
		c.read[j.key] = true
		if j.scan {
			c.scans[j.desc.Digest] = j.out
		}
	}
	return err
}

// compare reads, merges and compares one pair of images.
func (c *cache) compare(ctx context.Context, sp, dp *imagePlan) (*Result, error) {
	defer c.release(sp, dp)
	if err := c.load(ctx, sp, dp); err != nil {
		return nil, err
	}
	paths, diffs, err := c.compareFS(sp, dp)
	if err != nil {
		return nil, err
	}
	if err := c.checkDiffIDs(sp); err != nil {
		return nil, err
	}
	res := &Result{Platform: dp.name, Differences: []Difference{}, Paths: paths}
	res.Differences = append(res.Differences, diffs...)
	res.Differences = append(res.Differences, compareConfig(sp.config, dp.config)...)
	res.Differences = append(res.Differences, c.layerNames(sp, dp)...)
	if err := c.checkDiffIDs(dp); err != nil {
		res.Differences = append(res.Differences, Difference{
			Path: "config:rootfs.diff_ids", What: WhatConfig, Source: "matches the layers", Output: err.Error(), Verdict: Violation,
		})
	}
	if historyConsistent(sp) && !historyConsistent(dp) {
		res.Differences = append(res.Differences, Difference{
			Path: "config:history", What: WhatConfig,
			Source:  fmt.Sprintf("%d layer entries for %d layers", layerEntries(sp.config), len(sp.layers)),
			Output:  fmt.Sprintf("%d layer entries for %d layers", layerEntries(dp.config), len(dp.layers)),
			Verdict: Violation, Reason: "history does not match the layers",
		})
	}
	sort.SliceStable(res.Differences, func(i, j int) bool {
		a, b := res.Differences[i], res.Differences[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.What < b.What
	})
	res.Violations = res.Count(Violation)
	return res, nil
}

// compareFS compares the merged filesystems of sp and dp, read in path
// order from the layers' record files: a first pass over each resolves
// their hardlinks, if they have any.
func (c *cache) compareFS(sp, dp *imagePlan) (int, []Difference, error) {
	keys := c.linkNames(sp, dp)
	si, err := c.resolveLinks(sp, keys)
	if err != nil {
		return 0, nil, err
	}
	di, err := c.resolveLinks(dp, keys)
	if err != nil {
		return 0, nil, err
	}
	ss, err := c.stream(sp)
	if err != nil {
		return 0, nil, err
	}
	defer ss.close()
	ss.links = si
	ds, err := c.stream(dp)
	if err != nil {
		return 0, nil, err
	}
	defer ds.close()
	ds.links = di
	return compareStreams(ss, ds, c.o.Dropped)
}

// linkNames returns the paths the hardlinks of ps name, or nil.
func (c *cache) linkNames(ps ...*imagePlan) map[string]bool {
	var keys map[string]bool
	for _, p := range ps {
		for _, d := range p.descs {
			for _, n := range c.scans[d.Digest].linkNames {
				if keys == nil {
					keys = map[string]bool{}
				}
				keys[n] = true
			}
		}
	}
	return keys
}

// resolveLinks reads the merged filesystem of p once for the records of
// keys, and resolves its hardlinks. With no keys there is nothing to do.
func (c *cache) resolveLinks(p *imagePlan, keys map[string]bool) (*linkInfo, error) {
	if keys == nil {
		return &linkInfo{}, nil
	}
	s, err := c.stream(p)
	if err != nil {
		return nil, err
	}
	defer s.close()
	s.keys, s.keyDirs, s.timelines = keys, map[string]bool{}, map[string][]event{}
	for k := range keys {
		for d := k; d != ""; {
			d = parentDir(d)
			s.keyDirs[d] = true
		}
	}
	for {
		_, _, ok, err := s.next()
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", p.role, p.name, err)
		}
		if !ok {
			break
		}
	}
	info, err := resolveLinks(keys, s.timelines)
	var le *linkError
	if errors.As(err, &le) {
		return nil, fmt.Errorf("%s %s layer %d (%s): %w", p.role, p.name, le.layer+1, p.descs[le.layer].Digest, le.err)
	}
	return info, err
}

// stream opens the merged filesystem of p.
func (c *cache) stream(p *imagePlan) (*imageStream, error) {
	files := make([]string, len(p.descs))
	for i, d := range p.descs {
		files[i] = c.scans[d.Digest].file
	}
	s, err := openImageStream(c.o.TempDir, files)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", p.role, p.name, err)
	}
	return s, nil
}

// checkDiffIDs compares the config's diff_ids with the scanned layers.
func (c *cache) checkDiffIDs(p *imagePlan) error {
	ids := p.config.RootFS.DiffIDs
	if len(ids) != len(p.descs) {
		return fmt.Errorf("%s %s: config lists %d diff_ids for %d layers", p.role, p.name, len(ids), len(p.descs))
	}
	for i, d := range p.descs {
		if err := blob.CheckDiffID(c.scans[d.Digest].diffID, ids[i]); err != nil {
			return fmt.Errorf("%s %s layer %d (%s): %w", p.role, p.name, i+1, d.Digest, err)
		}
	}
	return nil
}

// historyConsistent reports whether p's history, if it has one, has one
// non-empty entry per layer.
func historyConsistent(p *imagePlan) bool {
	return len(p.config.History) == 0 || layerEntries(p.config) == len(p.layers)
}

func layerEntries(c *v1.ConfigFile) int {
	n := 0
	for _, h := range c.History {
		if !h.EmptyLayer {
			n++
		}
	}
	return n
}
