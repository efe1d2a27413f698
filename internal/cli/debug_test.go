package cli_test

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/compress"
)

// fileFromImage returns the content of path p in the merged layers of img.
func fileFromImage(t *testing.T, img v1.Image, p string) []byte {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var found []byte
	for _, l := range layers {
		rc, _ := l.Compressed()
		c, r, err := compress.Detect(rc)
		if err != nil {
			t.Fatal(err)
		}
		dr, _ := compress.NewReader(c, r)
		tr := tar.NewReader(dr)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimPrefix(h.Name, "./") == p && h.Typeflag == tar.TypeReg {
				found, _ = io.ReadAll(tr)
			}
		}
		dr.Close()
		rc.Close()
	}
	if found == nil {
		t.Fatalf("no %s in the image", p)
	}
	return found
}

// The stripped program of the slim image, with the tree that debug extract
// writes from the debug image, gives gdb its source lines back.
func TestRewriteDebugImageWithGDB(t *testing.T) {
	gdb, err := exec.LookPath("gdb")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("gdb is not installed")
		}
		t.Skip("no gdb")
	}
	out := filepath.Join(t.TempDir(), "out")
	_, stderr, code := run(t, "rewrite", "oci:"+sample+":sample", "oci:"+out+":slim", "--progress", "none")
	if code != 0 {
		t.Fatalf("rewrite: exit %d\n%s", code, stderr)
	}
	syms := filepath.Join(t.TempDir(), "symbols")
	stdout, stderr, code := run(t, "debug", "extract", "oci:"+out+":slim-debug", syms)
	if code != 0 {
		t.Fatalf("debug extract: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, ".build-id/1a/2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d.debug") {
		t.Errorf("extract did not write the amd64 build-id file:\n%s", stdout)
	}
	idx := openIndex(t, out, "slim")
	im, _ := idx.IndexManifest()
	img, _ := idx.Image(im.Manifests[0].Digest) // linux/amd64
	bin := fileFromImage(t, img, "app/hello")
	orig := fileFromImage(t, mustSampleImage(t, 0), "app/hello")
	if len(bin) >= len(orig) {
		t.Fatalf("app/hello was not stripped (%d bytes, was %d)", len(bin), len(orig))
	}
	exe := filepath.Join(t.TempDir(), "hello")
	os.WriteFile(exe, bin, 0o755)
	if b, err := exec.Command(exe).Output(); err != nil || string(b) != "hello from the layerslim sample image\n" {
		t.Errorf("the stripped program printed %q (%v)", b, err)
	}
	cmd := exec.Command(gdb, "-nx", "-batch", "-iex", "set debug-file-directory "+syms, "-ex", "info line main.main", exe)
	b, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "Line ") || !strings.Contains(string(b), ".go") {
		t.Errorf("gdb did not resolve main.main through the debug tree (%v):\n%s", err, b)
	}
	// Without the tree it cannot: the symbols really moved.
	b, _ = exec.Command(gdb, "-nx", "-batch", "-iex", "set debug-file-directory "+t.TempDir(), "-ex", "info line main.main", exe).CombinedOutput()
	if strings.Contains(string(b), "Line ") && strings.Contains(string(b), ".go") {
		t.Errorf("gdb resolved main.main without the debug files:\n%s", b)
	}
}

func mustSampleImage(t *testing.T, i int) v1.Image {
	t.Helper()
	idx := openIndex(t, sample, "sample")
	im, _ := idx.IndexManifest()
	img, err := idx.Image(im.Manifests[i].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
