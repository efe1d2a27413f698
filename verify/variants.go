package verify

import (
	"context"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/internal/imagewalk"
)

// HasVariants reports whether idx holds images in two compressions: some
// entry carries the zstd variant annotation.
func HasVariants(idx v1.ImageIndex) bool {
	im, err := idx.IndexManifest()
	if err != nil {
		return false
	}
	for _, d := range im.Manifests {
		if imagewalk.IsZstdVariant(d) {
			return true
		}
	}
	return false
}

// variantPartner is, in an index of variants, the source image for a second
// output image of the same platform: the one its first variant was paired
// with. -1 when there is none.
func variantPartner(se []*imagePlan, p v1.Platform) int {
	for j, s := range se {
		if s.platform.Equals(p) {
			return j
		}
	}
	return -1
}

// ImageIndex compares each image of dst with src: the case of a single
// image written as an index of its compression variants
// (--add-compression).
func ImageIndex(ctx context.Context, src v1.Image, dst v1.ImageIndex, o Options) ([]*Result, error) {
	o = o.withDefaults()
	sp, err := planImage(src, "source", "")
	if err != nil {
		return nil, err
	}
	de, err := indexImages(dst, "output")
	if err != nil {
		return nil, err
	}
	c := newCache(o)
	defer c.close()
	for _, d := range de {
		c.use(sp, d)
	}
	var results []*Result
	for _, d := range de {
		r, err := c.compare(ctx, sp, d)
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	return results, nil
}

// variantCovered reports whether a source image of platform p was paired:
// in a source of compression variants, DST needs each platform once, not
// each variant.
func variantCovered(se []*imagePlan, used []bool, p v1.Platform) bool {
	for j, s := range se {
		if used[j] && s.platform.Equals(p) {
			return true
		}
	}
	return false
}
