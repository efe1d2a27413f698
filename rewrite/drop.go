package rewrite

import (
	"archive/tar"
	"context"

	"github.com/layerslim/layerslim/drop"
	"github.com/layerslim/layerslim/internal/whiteout"
	"github.com/layerslim/layerslim/tarfilter"
)

// Drop is the filter that leaves out the entries m matches and records
// each one in rec: Change{Path: the entry's name, Action: ActionDropped,
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
func Drop(m *drop.Matcher, rec Recorder) tarfilter.Filter {
	return &dropFilter{m: m, rec: rec, links: drop.NewLinks(m, nil)}
}

// linkToDropped starts the reason of a hardlink dropped with its target.
const linkToDropped = drop.LinkReason

type dropFilter struct {
	m     *drop.Matcher
	rec   Recorder
	links *drop.Links // the hardlink rule, which remembers the links dropped
}

func (f *dropFilter) Filter(ctx context.Context, e tarfilter.Entry, next tarfilter.Writer) error {
	h := e.Header
	if f.m == nil {
		return next.WriteEntry(ctx, e)
	}
	name := whiteout.Clean(h.Name)
	reason, ok := f.m.Match(name, h.Typeflag == tar.TypeDir)
	if !ok && h.Typeflag == tar.TypeLink {
		reason, ok = f.links.Match(name, whiteout.Clean(h.Linkname))
	}
	if !ok {
		return next.WriteEntry(ctx, e)
	}
	var size int64
	if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeGNUSparse {
		size = h.Size
	}
	if f.rec != nil {
		f.rec.Record(Change{Path: h.Name, Action: ActionDropped, Bytes: size, Reason: reason})
	}
	return nil
}

// linkChain is the filter, ahead of the caller's, of a layer rewritten
// again because it holds hardlinks to names lower layers of its image
// dropped as links (lower, shared and read-only): it drops those links,
// and links to them in turn, with the reason Drop gives.
func linkChain(lower map[string]bool, rec Recorder) tarfilter.Filter {
	links := drop.NewLinks(nil, lower)
	return tarfilter.FilterFunc(func(ctx context.Context, e tarfilter.Entry, next tarfilter.Writer) error {
		h := e.Header
		if h.Typeflag != tar.TypeLink {
			return next.WriteEntry(ctx, e)
		}
		reason, ok := links.Match(whiteout.Clean(h.Name), whiteout.Clean(h.Linkname))
		if !ok {
			return next.WriteEntry(ctx, e)
		}
		if rec != nil {
			rec.Record(Change{Path: h.Name, Action: ActionDropped, Reason: reason})
		}
		return nil
	})
}
