package verify

import (
	"archive/tar"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/internal/whiteout"
)

// noteNames records an entry's name for the checks of layerNames.
func (s *layerScan) noteNames(order *whiteout.OrderCheck, h *tar.Header) {
	if order.Add(whiteout.Clean(h.Name)) {
		s.late = append(s.late, h.Name)
	}
	if whiteout.Unclean(h.Name) || (h.Typeflag == tar.TypeLink && whiteout.Unclean(h.Linkname)) {
		s.unclean = append(s.unclean, h.Name)
	}
}

// layerNames reports, in DST's layers, every whiteout placed after entries
// under its directory (an applier that works in tar order deletes what the
// layer itself wrote) and every name that climbs out of the root (tools
// disagree on where it goes): both are violations. A DST layer whose
// content is one of SRC's layers (a recompressed copy, the same diff_id)
// is SRC's as it was, and not checked.
func (c *cache) layerNames(src, p *imagePlan) []Difference {
	inSrc := map[v1.Hash]bool{}
	for _, d := range src.descs {
		if s := c.scans[d.Digest]; s != nil {
			inSrc[s.diffID] = true
		}
	}
	var out []Difference
	for i, d := range p.descs {
		s := c.scans[d.Digest]
		if s == nil || inSrc[s.diffID] {
			continue
		}
		where := fmt.Sprintf("layer %d (%s)", i+1, d.Digest)
		for _, n := range s.late {
			out = append(out, Difference{
				Path: displayPath(whiteout.Clean(n)), What: WhatOrder, Source: "-",
				Output:  fmt.Sprintf("%s: %s after entries of its directory", where, n),
				Verdict: Violation, Reason: "whiteouts must come before the entries beside them",
			})
		}
		for _, n := range s.unclean {
			out = append(out, Difference{
				Path: displayPath(whiteout.Clean(n)), What: WhatName, Source: "-",
				Output:  fmt.Sprintf("%s: entry named %q (or its hardlink target)", where, n),
				Verdict: Violation, Reason: "a name that climbs out of the root",
			})
		}
	}
	return out
}

func displayPath(p string) string {
	if p == "" {
		return rootPath
	}
	return p
}
