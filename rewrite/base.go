package rewrite

import (
	"context"
	"fmt"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// SquashMode says which layers are merged.
type SquashMode string

const (
	// SquashNone keeps every layer.
	SquashNone SquashMode = "none"
	// SquashAuto keeps the base image's layers and merges the ones above.
	SquashAuto SquashMode = "auto"
	// SquashAll merges every layer into one.
	SquashAll SquashMode = "all"
)

// ParseSquash accepts "none", "auto" and "all".
func ParseSquash(s string) (SquashMode, error) {
	switch m := SquashMode(s); m {
	case SquashNone, SquashAuto, SquashAll:
		return m, nil
	}
	return "", fmt.Errorf("squash mode %q: want auto, none or all", s)
}

// WithSquash sets which layers are merged (default none).
func WithSquash(m SquashMode) Option {
	return func(o *options) error {
		if _, err := ParseSquash(string(m)); err != nil {
			return err
		}
		o.squash = m
		return nil
	}
}

// A BaseFinder names the base image of an image: the diff_ids of its
// layers and how it was found ("--base REF", "annotation …"). It returns
// nil diff_ids when it knows nothing, and the history heuristic is used.
type BaseFinder func(ctx context.Context, platform v1.Platform, m *v1.Manifest, cf *v1.ConfigFile) (diffIDs []v1.Hash, reason string, err error)

// WithBaseFinder sets how --squash=auto finds the base image.
func WithBaseFinder(f BaseFinder) Option {
	return func(o *options) error { o.baseFinder = f; return nil }
}

// Base is the part of an image taken as its base: its bottom Layers layers.
type Base struct {
	Layers int    `json:"layers"`
	Reason string `json:"reason"`
}

// baseGap is the pause in an image's history that separates the base
// image's steps from the build's.
const baseGap = time.Hour

func findBase(ctx context.Context, o *options, plat v1.Platform, m *v1.Manifest, cf *v1.ConfigFile) (Base, error) {
	n := len(cf.RootFS.DiffIDs)
	if o.squash == SquashAll {
		return Base{0, "--squash=all"}, nil
	}
	var note string
	if o.baseFinder != nil {
		ids, reason, err := o.baseFinder(ctx, plat, m, cf)
		if err != nil {
			return Base{}, fmt.Errorf("finding the base image: %w", err)
		}
		if ids != nil {
			k := 0
			for k < len(ids) && k < n && ids[k] == cf.RootFS.DiffIDs[k] {
				k++
			}
			if k == len(ids) {
				return Base{k, reason}, nil
			}
			note = fmt.Sprintf("%s shares only %d of its %d layers with the image; ", reason, k, len(ids))
		}
	}
	b := baseFromHistory(cf)
	b.Reason = note + b.Reason
	return b, nil
}

// baseFromHistory guesses the base from the history: the base's entries
// were made long before the build's, so the last pause of an hour or more
// ends the base. Without one, a first entry that adds a root filesystem is
// the base; failing that, the first layer is kept as the base.
func baseFromHistory(cf *v1.ConfigFile) Base {
	n := len(cf.RootFS.DiffIDs)
	hist := cf.History
	layersBefore := func(h int) int { // layers made by entries [0, h)
		k := 0
		for _, e := range hist[:h] {
			if !e.EmptyLayer {
				k++
			}
		}
		return min(k, n)
	}
	nonEmpty := 0
	for _, e := range hist {
		if !e.EmptyLayer {
			nonEmpty++
		}
	}
	if nonEmpty == n && n > 0 {
		for h := len(hist) - 1; h > 0; h-- {
			a, b := hist[h-1].Created.Time, hist[h].Created.Time
			if a.IsZero() || b.IsZero() {
				continue
			}
			if gap := b.Sub(a); gap >= baseGap {
				k := layersBefore(h)
				return Base{k, fmt.Sprintf("history: %s between %q and %q", gap.Round(time.Minute), short(hist[h-1].CreatedBy), short(hist[h].CreatedBy))}
			}
		}
		first := hist[0].CreatedBy + " " + hist[0].Comment
		if strings.Contains(first, "ADD file:") || strings.Contains(first, "debuerreotype") {
			return Base{layersBefore(1), fmt.Sprintf("history: the first entry adds a root filesystem (%q)", short(hist[0].CreatedBy))}
		}
	}
	return Base{min(1, n), "no base image found (no --base, no base annotation, no pause in the history): the first layer is kept as the base"}
}

func short(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
