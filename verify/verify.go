// Package verify checks guarantee 2 of layerslim on a finished pair of
// images: the merged filesystem of the output equals that of the source,
// except paths the rewrite options drop and ELF files that lost only
// non-allocated sections, and the image config is unchanged.
//
// Each image's layers are read once (in parallel) and reduced to metadata
// records (no file bodies are kept in memory: bodies are hashed as they
// stream, and ELF files are spooled to a temporary file one at a time),
// which are sorted by path on disk (spill.go). Each image's layers are
// then merged with the OCI whiteout rules as one stream in path order
// (resolve.go, links.go), and the two streams compared path by path in one
// pass: memory does not grow with the number of files.
package verify

import (
	"context"
	"fmt"
	"os"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/internal/imagewalk"
	"github.com/layerslim/layerslim/internal/limit"
	"github.com/layerslim/layerslim/manifest"
)

// Options configure Image and Index. The zero value drops nothing.
type Options struct {
	// Dropped says whether the rewrite options allow path p (clean,
	// relative, no leading slash) to be missing from DST, and why (the
	// preset). nil: nothing may be dropped.
	Dropped func(p string, isDir bool) (reason string, ok bool)
	// Jobs is the number of layers read at once (default GOMAXPROCS).
	Jobs int
	// TempDir is where ELF files are spooled for random access, and the
	// sorted records of layers are kept until compared (default
	// os.TempDir()).
	TempDir string
	// Platforms, for Index, selects the platforms that are compared; a
	// source platform outside it may be missing from DST. When empty, the
	// platforms named in DST's provenance annotation (a rewrite made with
	// --platform) are used, and otherwise every platform is compared.
	Platforms []v1.Platform
	// MaxLayerSize is the most uncompressed bytes one layer may hold (0:
	// 64 GiB, negative: no limit); MaxSpool the most bytes of one ELF file
	// spooled to TempDir (0: 16 GiB, negative: no limit).
	MaxLayerSize, MaxSpool int64
}

func (o Options) withDefaults() Options {
	if o.Jobs < 1 {
		o.Jobs = runtime.GOMAXPROCS(0)
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	o.MaxLayerSize = limit.Resolve(o.MaxLayerSize, limit.DefaultMaxLayerSize)
	o.MaxSpool = limit.Resolve(o.MaxSpool, limit.DefaultMaxSpool)
	return o
}

// Verdict classifies a Difference.
type Verdict string

const (
	// Dropped: a source path the rewrite options allow to be left out.
	Dropped Verdict = "dropped"
	// ELFStripped: an ELF file whose loadable segments are unchanged.
	ELFStripped Verdict = "elf-stripped"
	// Violation: a difference the guarantee does not allow.
	Violation Verdict = "violation"
)

// What a Difference is about.
const (
	WhatMissing  = "missing"  // in SRC, not in DST
	WhatAdded    = "added"    // in DST, not in SRC
	WhatType     = "type"     // file, directory, symlink, device… (or an implicit directory)
	WhatMode     = "mode"     // permission bits with setuid, setgid and sticky
	WhatOwner    = "owner"    // numeric uid:gid
	WhatXattrs   = "xattrs"   // PAX SCHILY.xattr.* records
	WhatLink     = "link"     // symlink target
	WhatMtime    = "mtime"    // modification time
	WhatContent  = "content"  // the bytes of a regular file
	WhatHardlink = "hardlink" // the set of paths sharing the inode
	WhatDevice   = "device"   // device numbers
	WhatConfig   = "config"   // a field of the image config
	WhatPlatform = "platform" // an image of an index
	WhatOrder    = "order"    // a whiteout after entries beside it in a DST layer
	WhatName     = "name"     // a DST entry name that climbs out of the root
)

// Difference is one way DST differs from SRC.
type Difference struct {
	// Path is the clean relative path ("." for the root directory),
	// "config:<Field>" for a config field, or the platform for a platform.
	Path string `json:"path"`
	What string `json:"what"`
	// Source and Output are short human descriptions of each side.
	Source  string  `json:"source"`
	Output  string  `json:"output"`
	Verdict Verdict `json:"verdict"`
	Reason  string  `json:"reason,omitempty"`
}

// Result is the comparison of one image (one platform).
type Result struct {
	Platform string `json:"platform"`
	// Paths is the number of paths compared (those in SRC or DST).
	Paths int `json:"paths"`
	// Differences are sorted by path, then What.
	Differences []Difference `json:"differences"`
	Violations  int          `json:"violations"`
}

// Count returns how many differences have verdict v.
func (r *Result) Count(v Verdict) int {
	n := 0
	for _, d := range r.Differences {
		if d.Verdict == v {
			n++
		}
	}
	return n
}

// Image compares the merged filesystems and configs of src and dst.
func Image(ctx context.Context, src, dst v1.Image, o Options) (*Result, error) {
	o = o.withDefaults()
	sp, err := planImage(src, "source", "")
	if err != nil {
		return nil, err
	}
	dp, err := planImage(dst, "output", "")
	if err != nil {
		return nil, err
	}
	c := newCache(o)
	defer c.close()
	c.use(sp, dp)
	return c.compare(ctx, sp, dp)
}

// IndexImage compares dst with the image of src for dst's platform: the
// case of a single platform taken out of an index (a docker-archive
// written with --platform).
func IndexImage(ctx context.Context, src v1.ImageIndex, dst v1.Image, o Options) (*Result, error) {
	o = o.withDefaults()
	dp, err := planImage(dst, "output", "")
	if err != nil {
		return nil, err
	}
	se, err := indexImages(src, "source")
	if err != nil {
		return nil, err
	}
	var sp *imagePlan
	for _, s := range se {
		// What the config of DST says must hold of the entry of SRC.
		if imagewalk.Satisfies(dp.platform, s.platform) {
			sp = s
			break
		}
	}
	if sp == nil {
		return nil, fmt.Errorf("SRC is an index without an image for %s, the platform of DST", dp.name)
	}
	c := newCache(o)
	defer c.close()
	c.use(sp, dp)
	return c.compare(ctx, sp, dp)
}

// Index pairs the images of src and dst by platform, in dst's order, and
// compares each pair as Image does. A source platform missing from dst is
// a violation (What "platform") unless Options.Platforms, or dst's
// provenance annotation, leaves it out; a platform of dst that src lacks
// is one too. Entries that are not images (nested indexes, attestations)
// are ignored. A layer shared by several images is read once.
func Index(ctx context.Context, src, dst v1.ImageIndex, o Options) ([]*Result, error) {
	o = o.withDefaults()
	se, err := indexImages(src, "source")
	if err != nil {
		return nil, err
	}
	de, err := indexImages(dst, "output")
	if err != nil {
		return nil, err
	}
	want := o.Platforms
	if len(want) == 0 {
		want = provenancePlatforms(dst)
	}

	type pair struct {
		src, dst *imagePlan
		diff     *Difference // a platform with no partner
	}
	var pairs []pair
	used := make([]bool, len(se))
	variants := HasVariants(dst)
	for _, d := range de {
		if !imagewalk.Match(want, d.platform) {
			continue
		}
		i := -1
		for j, s := range se {
			if !used[j] && s.platform.Equals(d.platform) {
				i = j
				break
			}
		}
		if i < 0 && variants {
			i = variantPartner(se, d.platform)
		}
		if i < 0 {
			pairs = append(pairs, pair{diff: &Difference{
				Path: d.name, What: WhatPlatform, Source: "(none)", Output: d.desc(),
				Verdict: Violation, Reason: "platform not in SRC",
			}})
			continue
		}
		used[i] = true
		pairs = append(pairs, pair{src: se[i], dst: d})
	}
	srcVariants := HasVariants(src)
	for i, s := range se {
		if used[i] || !imagewalk.Match(want, s.platform) {
			continue
		}
		if srcVariants && variantCovered(se, used, s.platform) {
			continue // another compression of an image DST holds
		}
		pairs = append(pairs, pair{diff: &Difference{
			Path: s.name, What: WhatPlatform, Source: s.desc(), Output: "(missing)",
			Verdict: Violation, Reason: "platform not in DST",
		}})
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("no platform to compare: SRC and DST share none that is selected")
	}

	c := newCache(o)
	defer c.close()
	for _, p := range pairs {
		if p.diff == nil {
			c.use(p.src, p.dst)
		}
	}
	var results []*Result
	for _, p := range pairs {
		if p.diff != nil {
			results = append(results, &Result{Platform: p.diff.Path, Differences: []Difference{*p.diff}, Violations: 1})
			continue
		}
		r, err := c.compare(ctx, p.src, p.dst)
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	return results, nil
}

// indexImages lists the images of idx with their plans. Nested indexes and
// attestations are left out.
func indexImages(idx v1.ImageIndex, role string) ([]*imagePlan, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading %s index: %w", role, err)
	}
	images, err := imagewalk.Images(im, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	var out []*imagePlan
	for _, d := range images {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("reading %s manifest %s: %w", role, d.Digest, err)
		}
		p, err := planImage(img, role, d.Digest.String())
		if err != nil {
			return nil, err
		}
		if d.Platform != nil && d.Platform.OS != "" {
			p.platform = *d.Platform
			p.name = d.Platform.String()
		}
		out = append(out, p)
	}
	return out, nil
}

// provenancePlatforms returns the platforms a rewrite of dst was limited
// to, or nil.
func provenancePlatforms(dst v1.ImageIndex) []v1.Platform {
	im, err := dst.IndexManifest()
	if err != nil {
		return nil
	}
	return imagewalk.PlatformsFromOptions(im.Annotations[manifest.AnnotationOptions])
}
