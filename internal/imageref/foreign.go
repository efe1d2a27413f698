package imageref

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/internal/imageref/ocilayout"
)

// CheckLayersPresent tells, before any work, whether every layer that a
// write of s to dst needs is there to be read. A registry destination needs
// no foreign (non-distributable) layer, which remote.Write skips; an OCI
// layout or a docker-archive holds every layer, so a foreign layer that a
// copy left out of a layout source would fail the write at its very end
// (inside the debug image, written first). Only sources that can tell
// whether a blob is present (OCI layouts) are checked.
func CheckLayersPresent(s *Source, dst Ref) error {
	if dst.Kind == Registry || s.Ref.Kind != OCI {
		return nil
	}
	check := func(img v1.Image, where string) error {
		m, err := img.Manifest()
		if err != nil {
			return err
		}
		for _, d := range m.Layers {
			if d.MediaType.IsDistributable() {
				continue
			}
			p, err := ocilayout.BlobPath(s.Ref.Path, d.Digest)
			if err != nil {
				return err
			}
			if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%slayer %s: a foreign layer (%s) whose blob is not in %s; %s must hold every layer: copy the source with its foreign layers, or write to a registry", where, d.Digest, d.MediaType, s.Ref, dst)
			}
		}
		return nil
	}
	if s.Image != nil {
		return check(s.Image, "")
	}
	im, err := s.Index.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			continue
		}
		img, err := s.Index.Image(d.Digest)
		if err != nil {
			return err
		}
		where := ""
		if d.Platform != nil {
			where = d.Platform.String() + " "
		}
		if err := check(img, where); err != nil {
			return err
		}
	}
	return nil
}
