package imageref_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/imageref/reftest"
)

// A directory that cannot be written is found by CheckWrite, before any
// work. (Root writes anywhere: the test needs another user.)
func TestCheckWriteUnwritableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can write in a read-only directory")
	}
	dir := t.TempDir()
	ro := filepath.Join(dir, "ro")
	os.Mkdir(ro, 0o555)
	t.Cleanup(func() { os.Chmod(ro, 0o755) })
	for _, ref := range []string{"oci:" + ro + ":x", "oci:" + filepath.Join(ro, "new") + ":x", "docker-archive:" + filepath.Join(ro, "x.tar")} {
		err := imageref.CheckWrite(context.Background(), reftest.MustParse(t, ref), imageref.Options{})
		if err == nil || !strings.Contains(err.Error(), "cannot write in "+ro) {
			t.Errorf("CheckWrite(%s) = %v", ref, err)
		}
	}
}

// A layout being created, or one whose index.json is fine, passes; the
// check leaves nothing behind.
func TestCheckWriteLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	for _, ref := range []string{"oci:" + filepath.Join(dir, "a", "b") + ":x", "oci:" + dir + ":x", "docker-archive:" + filepath.Join(dir, "x.tar")} {
		if err := imageref.CheckWrite(context.Background(), reftest.MustParse(t, ref), imageref.Options{}); err != nil {
			t.Errorf("CheckWrite(%s) = %v", ref, err)
		}
	}
	if des, _ := os.ReadDir(dir); len(des) != 0 {
		t.Errorf("CheckWrite left %v", des)
	}
}
