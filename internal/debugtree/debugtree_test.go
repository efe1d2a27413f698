package debugtree_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/internal/debugtree"
	"github.com/layerslim/layerslim/internal/testenv"
)

// Extract is the one place layerslim writes entries of an image to disk:
// names with "..", absolute names and symlinks must not put anything
// outside the directory it is given.
func TestExtractKeepsHostileNamesInside(t *testing.T) {
	layer := testenv.TarLayer(t, []testenv.File{
		testenv.Reg("usr/lib/debug/.build-id/ab/cdef.debug", "by build-id"),
		testenv.Reg("/usr/lib/debug/usr/bin/tool.debug", "absolute name"),
		testenv.Reg("../../usr/lib/debug/usr/bin/up.debug", "climbs out of the root"),
		testenv.Reg("usr/lib/debug/../../../../../escape.debug", "climbs out of usr/lib/debug"),
		testenv.Reg("usr/lib/debug/.build-id/../../../../../../../escape2.debug", "climbs out of .build-id"),
		testenv.Symlink("usr/lib/debug/usr/lib", "/"),
		testenv.Reg("usr/lib/debug/usr/lib/etc/passwd.debug", "below a symlink"),
	})
	img := testenv.GzipImage(t, v1.Platform{OS: "linux", Architecture: "amd64"}, layer)
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	written, err := debugtree.Extract(context.Background(), img, dir, "by-path")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		".build-id/ab/cdef.debug",
		"by-path/usr/bin/tool.debug",
		"by-path/usr/bin/up.debug",
		"by-path/usr/lib/etc/passwd.debug",
	}
	sort.Strings(written)
	if diff := cmp.Diff(want, written); diff != "" {
		t.Errorf("written (-want +got):\n%s", diff)
	}
	var onDisk []string
	filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			t.Errorf("%s is a symlink", p)
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			onDisk = append(onDisk, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(onDisk)
	if diff := cmp.Diff(want, onDisk); diff != "" {
		t.Errorf("files under %s (-want +got):\n%s", parent, diff)
	}
	if _, err := os.Stat(filepath.Join(parent, "escape.debug")); err == nil {
		t.Error("an entry escaped")
	}
}
