package rewrite

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/internal/whiteout"
)

// dropChainedLinks finishes what Drop leaves to the image: once every
// layer is done, a layer holding a hardlink to a name a lower layer of its
// image dropped as a link (its report says "link to dropped …") is
// rewritten again, knowing those names, so the link goes too rather than
// dangle. Each round takes, in every image, the lowest layer that needs
// it (the layers above depend on what it drops), until none does. The
// names a layer is given depend on its image's lower layers alone, never
// on the order layers finish in, so the output is the same for any
// --jobs; and a layer shared by images whose lower layers differ gets one
// rewrite for each set of names (keyed by them, in the layer cache too).
func (r *run) dropChainedLinks(ctx context.Context) error {
	for {
		var layers, merges []*layerTask
		for _, p := range r.plans {
			t, fresh, err := r.chainLinks(p)
			if err != nil {
				return err
			}
			switch {
			case t == nil || !fresh:
			case t.squash != nil:
				merges = append(merges, t)
			default:
				layers = append(layers, t)
			}
		}
		if len(layers)+len(merges) == 0 {
			r.retire()
			return nil
		}
		if err := r.runTasks(ctx, layers, merges); err != nil {
			return err
		}
	}
}

// chainLinks walks p's layers from the bottom with the names dropped as
// links so far, and puts in place of the first layer that holds a link to
// one of them the task that rewrites it knowing them. It returns that
// task, and whether it is new to the run (to be processed); a task an
// earlier round finished for another image is taken in passing.
func (r *run) chainLinks(p *imagePlan) (*layerTask, bool, error) {
	gone := map[string]int{} // name → the layer (in p.layers) that dropped it as a link
	for i, t := range p.layers {
		if t == nil {
			continue
		}
		if t.lower == nil {
			lower, err := r.stillGone(p, i, t.linksTo(gone), gone)
			if err != nil {
				return nil, false, err
			}
			if lower != nil {
				nt, fresh := r.belowLinks(t, lower, p.platform)
				p.layers[i] = nt
				if fresh || !nt.finished() {
					return nt, fresh, nil
				}
				t = nt // done in an earlier round, for another image
			}
		}
		t.droppedLinks(gone, i)
	}
	if t := p.squash; t != nil && t.lower == nil && len(gone) > 0 {
		// A merge does not tell the links it keeps: it is rewritten
		// knowing every name.
		all := map[string]bool{}
		for n := range gone {
			all[n] = true
		}
		lower, err := r.stillGone(p, len(p.layers), all, gone)
		if err != nil || lower == nil {
			return nil, false, err
		}
		nt, fresh := r.belowLinks(t, lower, p.platform)
		p.squash = nt
		return nt, fresh, nil
	}
	return nil, false, nil
}

// stillGone is the part of names (taken from gone) that no layer of p
// between the one that dropped it and layer i writes again, nil for none.
// Those layers' outputs are read for it (a kept link already took its
// name out of gone: see droppedLinks), which only happens when a link
// would otherwise be dropped; a name found written again leaves gone.
func (r *run) stillGone(p *imagePlan, i int, names map[string]bool, gone map[string]int) (map[string]bool, error) {
	var out map[string]bool
	for n := range names {
		held := false
		for k := gone[n] + 1; k < i && !held; k++ {
			t := p.layers[k]
			if t == nil {
				continue
			}
			h, err := r.holds(t)
			if err != nil {
				return nil, err
			}
			held = h[n]
		}
		if held {
			delete(gone, n)
			continue
		}
		if out == nil {
			out = map[string]bool{}
		}
		out[n] = true
	}
	return out, nil
}

// holds is the set of names t's output writes (whiteouts aside), read
// once per run. dropChainedLinks calls it from one goroutine.
func (r *run) holds(t *layerTask) (map[string]bool, error) {
	if h, ok := r.held[t]; ok {
		return h, nil
	}
	rc, err := t.out.layer.Uncompressed()
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", t.in.Desc.Digest, err)
	}
	defer rc.Close()
	h := map[string]bool{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("layer %s: reading the output again: %w", t.in.Desc.Digest, err)
		}
		if _, _, wh := whiteout.Parse(hdr.Name); !wh {
			h[whiteout.Clean(hdr.Name)] = true
		}
	}
	if r.held == nil {
		r.held = map[*layerTask]map[string]bool{}
	}
	r.held[t] = h
	return h, nil
}

// finished reports whether t has been processed.
func (t *layerTask) finished() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// linksTo is the part of gone that t's output links to (every name when
// that is not known), nil for none.
func (t *layerTask) linksTo(gone map[string]int) map[string]bool {
	if len(gone) == 0 {
		return nil
	}
	if !t.out.linksKnown {
		all := map[string]bool{}
		for n := range gone {
			all[n] = true
		}
		return all
	}
	var lower map[string]bool
	for _, target := range t.out.links {
		if _, ok := gone[target]; ok {
			if lower == nil {
				lower = map[string]bool{}
			}
			lower[target] = true
		}
	}
	return lower
}

// droppedLinks updates gone with t's output: the links it dropped are
// gone, the ones it keeps are there again.
func (t *layerTask) droppedLinks(gone map[string]int, i int) {
	for _, c := range t.out.report.Changes {
		if c.Action == ActionDropped && strings.HasPrefix(c.Reason, linkToDropped) {
			gone[whiteout.Clean(c.Path)] = i
		}
	}
	for name := range t.out.links {
		delete(gone, name)
	}
}

// belowLinks is the task that rewrites t's source knowing lower, shared by
// the images that need the same.
func (r *run) belowLinks(t *layerTask, lower map[string]bool, platform string) (*layerTask, bool) {
	id := t.in.Desc.Digest
	if t.squash != nil {
		id = t.key
	}
	key := linksKey(id, lower)
	if nt, ok := r.tasks[key]; ok {
		nt.users++
		return nt, false
	}
	nt := newTask(t.in, platform)
	nt.squash, nt.collect, nt.key, nt.users = t.squash, t.collect, key, 1
	nt.lower = make(map[string]bool, len(lower))
	for n := range lower {
		nt.lower[n] = true
	}
	r.tasks[key] = nt
	if nt.squash != nil {
		r.squashes = append(r.squashes, nt)
	} else {
		r.order = append(r.order, nt)
	}
	return nt, true
}

// linksKey names the rewrite of a layer (or merge) id knowing lower.
func linksKey(id v1.Hash, lower map[string]bool) v1.Hash {
	names := make([]string, 0, len(lower))
	for n := range lower {
		names = append(names, n)
	}
	slices.Sort(names)
	h := sha256.New()
	fmt.Fprintf(h, "below links %s\n%s", id, strings.Join(names, "\x00"))
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
}

// retire takes out of the run the tasks no image uses any more: their
// outputs are not counted, and their files are removed with the rest. (A
// merge reads only the reports and paths of the layers below it.)
func (r *run) retire() {
	used := map[*layerTask]bool{}
	for _, p := range r.plans {
		for _, t := range p.layers {
			used[t] = true
		}
		used[p.squash] = true
	}
	keep := func(ts []*layerTask) []*layerTask {
		return slices.DeleteFunc(ts, func(t *layerTask) bool {
			if used[t] {
				return false
			}
			if t.spool != nil {
				r.extra = append(r.extra, t.spool)
			}
			closeDebug(t.out.debug)
			t.out.debug = nil
			return true
		})
	}
	r.order, r.squashes = keep(r.order), keep(r.squashes)
}

// options are o with what t must know beyond them.
func (t *layerTask) options(o *options) *options {
	if t.lower == nil {
		return o
	}
	c := *o
	c.lowerLinks = t.lower
	return &c
}
