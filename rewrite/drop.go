package rewrite

import (
	"archive/tar"
	"context"

	"github.com/layerslim/layerslim/internal/drop"
	"github.com/layerslim/layerslim/internal/layerfs"
)

// Drop is the filter that leaves out the entries m matches and records
// each one in rec: Change{Path: the entry's name, Action: "dropped",
// Bytes: its size (0 unless a regular file), Reason: the preset or rule}.
// Every other entry, whiteouts and directories included, goes on
// unchanged, so the driver copies it byte for byte.
//
// A hardlink to a dropped file must not dangle: a link whose target was
// dropped, earlier in this layer or by the same rules in a lower layer, is
// dropped too, with the reason "link to dropped <target>". A kept file
// stays as it is, whatever links to it. When a rewrite sees such a link
// that no rule names itself and whose target is a file of the same layer,
// it reads the layer again and writes the target's content at the link's
// name instead (see relink.go).
//
// A link dropped that way may be the target of a link in a higher layer
// of the image (b → a in layer 3, where layer 2 dropped a → README with
// README): that link would dangle too, and it goes the same way, with the
// reason "link to dropped a". The layers are rewritten in parallel, each
// with its own filter, so Image and Index find such links once every
// layer is done (their reports list the links dropped) and rewrite the
// layers holding them again, with the names lower layers dropped as links
// (see linkChain and dropChainedLinks). The rule is the one for a link
// to a file of a lower layer, which is dropped rather than given the
// content: a chain always ends at a file the rules drop, in a lower
// layer, so the content is not in the layer being written and nothing the
// rules kept is lost. A name a layer in between writes again (a file, a
// kept link) is no longer dropped for the links above it. A merge of the
// layers above a base (--squash auto) is done again the same way, knowing
// every name its base layers dropped as links.
//
// The filter remembers what it dropped: make one per layer, as WithFilter
// does. A nil m drops nothing.
func Drop(m *drop.Matcher, rec Recorder) Filter {
	return &dropFilter{m: m, rec: rec}
}

// linkToDropped starts the reason of a hardlink dropped with its target.
const linkToDropped = "link to dropped "

type dropFilter struct {
	m   *drop.Matcher
	rec Recorder
	// linkDropped holds the hardlinks dropped because their target was:
	// a link to one of them is dropped as well, though no rule names it.
	linkDropped map[string]bool
}

func (f *dropFilter) Filter(ctx context.Context, e Entry, next Writer) error {
	h := e.Header
	if f.m == nil {
		return next.WriteEntry(ctx, e)
	}
	name := layerfs.Clean(h.Name)
	reason, ok := f.m.Match(name, h.Typeflag == tar.TypeDir)
	if !ok && h.Typeflag == tar.TypeLink {
		target := layerfs.Clean(h.Linkname)
		// Match depends on the path alone, so a target it drops was
		// dropped wherever it was.
		if _, dropped := f.m.Match(target, false); dropped || f.linkDropped[target] {
			reason, ok = linkToDropped+target, true
			if f.linkDropped == nil {
				f.linkDropped = map[string]bool{}
			}
			f.linkDropped[name] = true
		}
	}
	if !ok {
		return next.WriteEntry(ctx, e)
	}
	var size int64
	if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeGNUSparse {
		size = h.Size
	}
	if f.rec != nil {
		f.rec.Record(Change{Path: h.Name, Action: "dropped", Bytes: size, Reason: reason})
	}
	return nil
}

// linkChain is the filter, ahead of the caller's, of a layer rewritten
// again because it holds hardlinks to names lower layers of its image
// dropped as links (lower, shared and read-only): it drops those links,
// and links to them in turn, with the reason Drop gives.
func linkChain(lower map[string]bool, rec Recorder) Filter {
	f := &chainFilter{lower: lower, rec: rec}
	return FilterFunc(f.filter)
}

type chainFilter struct {
	lower map[string]bool
	here  map[string]bool // dropped by this filter in this layer
	rec   Recorder
}

func (f *chainFilter) filter(ctx context.Context, e Entry, next Writer) error {
	h := e.Header
	if h.Typeflag != tar.TypeLink {
		return next.WriteEntry(ctx, e)
	}
	name, target := layerfs.Clean(h.Name), layerfs.Clean(h.Linkname)
	if !f.lower[target] && !f.here[target] {
		return next.WriteEntry(ctx, e)
	}
	if f.here == nil {
		f.here = map[string]bool{}
	}
	f.here[name] = true
	if f.rec != nil {
		f.rec.Record(Change{Path: h.Name, Action: "dropped", Reason: linkToDropped + target})
	}
	return nil
}
