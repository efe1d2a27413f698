package imageref

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		err := CheckWrite(context.Background(), mustParse(t, ref), Options{})
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
		if err := CheckWrite(context.Background(), mustParse(t, ref), Options{}); err != nil {
			t.Errorf("CheckWrite(%s) = %v", ref, err)
		}
	}
	if des, _ := os.ReadDir(dir); len(des) != 0 {
		t.Errorf("CheckWrite left %v", des)
	}
}
