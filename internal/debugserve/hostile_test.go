package debugserve_test

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/layerslim/layerslim/internal/debugserve"
	"github.com/layerslim/layerslim/internal/testenv"
)

// Tar names in a debug layer only ever name build-ids the index accepts:
// dot-dot, absolute, "./" and upper-case names are cleaned or ignored, and
// a file is served under the path its entry has, never another.
func TestHostileDebugLayer(t *testing.T) {
	good := "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
	files := []testenv.File{
		testenv.Reg("./usr/lib/debug/.build-id/1a/2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d.debug", "good"),
		testenv.Reg("usr/lib/debug/.build-id/../../../../etc/ab/cdef.debug", "escape"),
		testenv.Reg("usr/lib/debug/.build-id/AB/CDEF.debug", "upper"),
		testenv.Reg("usr/lib/debug/.build-id/ab/cd/ef.debug", "deep"),
		testenv.Reg("usr/lib/debug/.build-id/a/bcdef.debug", "short"),
		testenv.Reg("usr/lib/debug/.build-id/ab/cd%2fef.debug", "escaped"),
		testenv.Symlink("usr/lib/debug/.build-id/ee/ff.debug", "/etc/passwd"),
	}
	img := testenv.Image(t, testenv.ImageSpec{Layers: [][]byte{testenv.TarLayer(t, nil), testenv.TarLayer(t, files)}, OCI: true})
	dir := filepath.Join(t.TempDir(), "oci")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "x-debug"})); err != nil {
		t.Fatal(err)
	}
	_, hs := server(t, "", debugserve.Options{}, "oci:"+dir)
	if n := metric(t, hs.URL, "layerslim_debuginfod_index_buildids"); n != 1 {
		t.Errorf("index_buildids = %d, want 1", n)
	}
	resp, b := get(t, "GET", hs.URL+"/buildid/"+good+"/debuginfo")
	if resp.StatusCode != 200 || !bytes.Equal(b, []byte("good")) || resp.Header.Get("X-Debuginfod-File") != "/usr/lib/debug/.build-id/1a/2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d.debug" {
		t.Errorf("good: %s %q %q", resp.Status, b, resp.Header.Get("X-Debuginfod-File"))
	}
	for _, id := range []string{"abcdef", "eeff", "abcdef00"} {
		if resp, _ := get(t, "GET", hs.URL+"/buildid/"+id+"/debuginfo"); resp.StatusCode != 404 {
			t.Errorf("%s: %s, want 404", id, resp.Status)
		}
	}
}
