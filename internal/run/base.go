package run

import (
	"context"
	"fmt"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/imagewalk"
	"github.com/layerslim/layerslim/rewrite"
)

// BaseFinder looks an image's base up from base (the --base image, when
// not nil), or else from the image's org.opencontainers.image.base.name and
// .digest annotations, reading it with ro. A base named by annotations that
// cannot be read leaves the choice to the rewrite's history heuristic.
func BaseFinder(base *imageref.Ref, ro imageref.Options) rewrite.BaseFinder {
	var mu sync.Mutex
	cache := map[string]*imageref.Source{}
	open := func(ctx context.Context, r imageref.Ref) (*imageref.Source, error) {
		mu.Lock()
		defer mu.Unlock()
		if s, ok := cache[r.String()]; ok {
			return s, nil
		}
		s, err := imageref.Open(ctx, r, ro)
		if err != nil {
			return nil, err
		}
		cache[r.String()] = s
		return s, nil
	}
	return func(ctx context.Context, plat v1.Platform, m *v1.Manifest, _ *v1.ConfigFile) ([]v1.Hash, string, error) {
		ref, reason := base, ""
		if ref != nil {
			reason = "--base " + ref.String()
		} else {
			name, digest := m.Annotations["org.opencontainers.image.base.name"], m.Annotations["org.opencontainers.image.base.digest"]
			if name == "" || digest == "" {
				return nil, "", nil
			}
			repo, _, _ := strings.Cut(name, "@")
			if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
				repo = repo[:i]
			}
			r, err := imageref.Parse(repo+"@"+digest, ro.Insecure)
			if err != nil {
				return nil, "", nil
			}
			ref, reason = &r, "annotation org.opencontainers.image.base.digest "+digest
		}
		src, err := open(ctx, *ref)
		if err != nil {
			if base != nil {
				return nil, "", err
			}
			return nil, "", nil // an unreachable annotated base: use the history
		}
		img := src.Image
		if src.Index != nil {
			im, err := src.Index.IndexManifest()
			if err != nil {
				return nil, "", err
			}
			for _, d := range im.Manifests {
				if imagewalk.IsImage(d) && d.Platform != nil && imagewalk.Satisfies(plat, *d.Platform) {
					if img, err = src.Index.Image(d.Digest); err != nil {
						return nil, "", err
					}
					break
				}
			}
			if img == nil {
				return nil, "", fmt.Errorf("base %s has no %s image", ref, plat.String())
			}
		}
		b, err := imagewalk.Read(img)
		if err != nil {
			return nil, "", fmt.Errorf("base %s: %w", ref, err)
		}
		return b.Config.RootFS.DiffIDs, reason, nil
	}
}
