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
