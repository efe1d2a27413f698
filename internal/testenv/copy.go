package testenv

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// CopyDir copies the tree at src (an OCI layout, say) into a new directory
// under t.TempDir() with the same base name, so a test may damage or write
// to it, and returns its path.
func CopyDir(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatalf("testenv.CopyDir: %v", err)
	}
	return dst
}

// DamageLargestBlob overwrites 8 bytes in the middle of the largest blob of
// the OCI layout at dir (a copy: see CopyDir) and returns the blob's path,
// for tests that a damaged layer is caught and named.
func DamageLargestBlob(t testing.TB, dir string) string {
	t.Helper()
	var biggest string
	var size int64
	err := filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if fi, err := d.Info(); err == nil && !d.IsDir() && fi.Size() > size {
			biggest, size = p, fi.Size()
		}
		return nil
	})
	if err != nil || biggest == "" {
		t.Fatalf("no blob to damage in %s: %v", dir, err)
	}
	f, err := os.OpenFile(biggest, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("garbage!"), size/2); err != nil {
		t.Fatal(err)
	}
	return biggest
}
