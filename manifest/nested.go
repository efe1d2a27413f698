package manifest

import (
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ErrNestedIndex is wrapped by the error for an index that lists another
// index. layerslim processes an index's images and nothing deeper, in
// every command (rewrite, recompress, analyze, verify, batch), rather than
// copy what it cannot slim or verify: the inner index can be named by its
// digest and processed on its own.
var ErrNestedIndex = errors.New("nested indexes are not supported")

// CheckNotNested returns an error wrapping ErrNestedIndex, naming the first
// entry of im that is an index, or nil.
func CheckNotNested(im *v1.IndexManifest) error {
	for _, d := range im.Manifests {
		if d.MediaType.IsIndex() {
			where := ""
			if d.Platform != nil {
				where = " for " + d.Platform.String()
			}
			return fmt.Errorf("the index lists an index (%s%s): %w; name that index by its digest to process it on its own", d.Digest, where, ErrNestedIndex)
		}
	}
	return nil
}
