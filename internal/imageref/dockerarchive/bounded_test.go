package dockerarchive_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/imageref/reftest"
)

// A docker-archive that cannot be read says why: gzip-compressed as a
// whole, a pipe (stdin), or a tag on two images.
func TestArchiveMistakesSayWhy(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "save.tar")
	writeDockerSave(t, plain, legacy,
		saveImage{repoTags: []string{"app:1"}, layers: [][]byte{reftest.LayerTar(t, 1, 100)}},
		saveImage{repoTags: []string{"app:1", "app:2"}, layers: [][]byte{reftest.LayerTar(t, 2, 100)}},
	)
	raw, _ := os.ReadFile(plain)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	gzFile := filepath.Join(dir, "save.tar.gz")
	os.WriteFile(gzFile, gz.Bytes(), 0o644)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref  string
		want string
		is   error
	}{
		{"docker-archive:" + gzFile, "is a gzip-compressed archive, not a docker save tarball: decompress it first", nil},
		{"docker-archive:" + fifo, "not a regular file (a FIFO); layerslim reads a docker-archive more than once", imageref.ErrNotRegular},
		{"docker-archive:" + plain + ":app:1", "tag app:1 names 2 images in the archive", imageref.ErrAmbiguous},
	} {
		err := reftest.OpenWithin(t, tc.ref)
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("Open(%s) = %v, want %q", tc.ref, err, tc.want)
		}
	}
	if err := reftest.OpenWithin(t, "docker-archive:"+plain+":app:2"); err != nil {
		t.Errorf("app:2 names one image: %v", err)
	}
}
