// This file holds the plan stage of Image and Index: which layers of the
// images a run rewrites and what it does with each. A distinct source
// layer becomes one layerTask, shared by every image that lists it; the
// layers a squash merges become one merge task keyed by the whole stack
// (planLayers). Reading the source image itself is in image.go.

package rewrite

import (
	"context"
	"crypto/sha256"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/internal/imagewalk"
)

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

// indexChild is an entry of a source index: an image to rewrite (plan),
// or an entry kept as it is.
type indexChild struct {
	desc v1.Descriptor
	plan *imagePlan
	keep bool
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

func newTask(in imagewalk.Layer, platform string) *layerTask {
	return &layerTask{in: in, platform: platform, done: make(chan struct{})}
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

// planLayers decides what becomes of each layer of p (ins, read from its
// manifest mf and config cf): the layers below the merge, each a task
// shared with every image that has it, or passed through when they cannot
// be read; and, with a squash, the merge of the layers above the base.
func (r *run) planLayers(ctx context.Context, p *imagePlan, ins []imagewalk.Layer, mf *v1.Manifest, cf *v1.ConfigFile) error {
	from := len(ins)
	if r.o.squash != SquashNone {
		b, err := findBase(ctx, r.o, p.plat, mf, cf)
		if err != nil {
			return err
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
	return nil
}
