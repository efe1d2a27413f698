package run

import (
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/layerslim/layerslim/internal/imagewalk"
)

// singlePlatform picks the one image of idx that a docker-archive can hold.
func singlePlatform(idx v1.ImageIndex, want []v1.Platform) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	images, err := imagewalk.Images(im, want)
	if err != nil {
		return nil, err
	}
	var found []v1.Descriptor
	for _, d := range images {
		if d.Platform != nil { // an entry must name its platform to be chosen
			found = append(found, d)
		}
	}
	if len(found) > 1 && len(want) > 0 {
		var ds []string
		for _, d := range found {
			ds = append(ds, d.Digest.String()+" ("+d.Platform.String()+")")
		}
		return nil, optionsErrorf("a docker-archive holds one image but --platform selects %d images of SRC: %s; name one by its digest as SRC", len(found), strings.Join(ds, ", "))
	}
	if len(found) != 1 {
		var ps []string
		for _, d := range im.Manifests {
			if d.Platform != nil && imagewalk.IsImage(d) {
				ps = append(ps, d.Platform.String())
			}
		}
		return nil, optionsErrorf("a docker-archive holds one image but SRC is an index of %s; select one with --platform", strings.Join(ps, ", "))
	}
	return idx.Image(found[0].Digest)
}
