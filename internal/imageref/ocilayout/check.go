package ocilayout

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/internal/imageref/refio"
)

// CheckWrite tells, before any work, whether a write to the layout at dir
// would fail for a reason that is already there: a file or a dangling
// symbolic link where the directory should be, a directory that cannot be
// written, an index.json or oci-layout that is damaged or of an unknown
// version, a directory that is neither empty nor a layout. It writes
// nothing but a temporary file it removes.
func CheckWrite(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := refio.CheckDangling(dir); err != nil {
			return err
		}
		return refio.CheckCreatable(dir)
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory (%s)", dir, refio.FileKind(fi.Mode()))
	}
	raw, err := refio.ReadCapped(filepath.Join(dir, indexFile), indexFile, refio.MaxIndexJSONSize)
	switch {
	case err == nil:
		if _, err := v1.ParseIndexManifest(bytes.NewReader(raw)); err != nil {
			return fmt.Errorf("parsing %s: %w", filepath.Join(dir, indexFile), err)
		}
		if err := checkLayoutFile(dir); err != nil {
			return err
		}
	case errors.Is(err, fs.ErrNotExist):
		des, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, de := range des {
			if n := de.Name(); n != layoutFile && n != "blobs" && n != lockFile && !isTemp(n) {
				return fmt.Errorf("%s is neither empty nor an OCI image layout (no index.json)", dir)
			}
		}
	default:
		return err
	}
	return refio.CheckWritableDir(dir)
}
