package rewrite

import (
	"archive/tar"
	"context"
	"fmt"

	"github.com/layerslim/layerslim/internal/whiteout"
	"github.com/layerslim/layerslim/tarfilter"
)

// cleanNames is the first filter of every layer: an entry whose name
// climbs out of the root ("../../x", "/x") is written under the name
// extractors give it ("x"), and a hardlink's target likewise; symlink
// targets are runtime paths and stay as they are. Each rename is recorded
// (ActionRenamed, Path the old name, To the new). Of two entries that end up
// with one name the later wins, as in extraction.
func cleanNames(rec Recorder) tarfilter.Filter {
	return tarfilter.FilterFunc(func(ctx context.Context, e tarfilter.Entry, next tarfilter.Writer) error {
		h := e.Header
		nameBad := whiteout.Unclean(h.Name)
		linkBad := h.Typeflag == tar.TypeLink && whiteout.Unclean(h.Linkname)
		if !nameBad && !linkBad {
			return next.WriteEntry(ctx, e)
		}
		c := tarfilter.CloneHeader(h)
		reason := "name outside the root"
		if nameBad {
			c.Name = cleanEntryName(h)
		}
		if linkBad {
			c.Linkname = whiteout.Clean(h.Linkname)
			reason = fmt.Sprintf("hardlink target %s outside the root, now %s", h.Linkname, c.Linkname)
			if nameBad {
				reason = "name and " + reason
			}
		}
		if rec != nil {
			rec.Record(Change{Path: h.Name, Action: ActionRenamed, Reason: reason, To: c.Name})
		}
		return next.WriteEntry(ctx, tarfilter.Entry{Header: &c, Body: e.Body})
	})
}

// cleanEntryName is the clean name of an entry: a directory keeps its
// trailing slash, and the root is "./".
func cleanEntryName(h *tar.Header) string {
	p := whiteout.Clean(h.Name)
	switch {
	case p == "":
		return "./"
	case h.Typeflag == tar.TypeDir:
		return p + "/"
	}
	return p
}
