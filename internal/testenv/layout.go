package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// CheckLayout fails t unless dir is a valid OCI image layout: index.json
// parses, every image and index it lists passes CheckImageBlobs or
// CheckIndexBlobs, and every file under blobs/ALG/ hashes to its name.
// Hidden files (the temporary files of a killed writer) are ignored.
func CheckLayout(t testing.TB, dir string) {
	t.Helper()
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatalf("testenv.CheckLayout: %v", err)
	}
	ii, err := lp.ImageIndex()
	if err != nil {
		t.Fatalf("testenv.CheckLayout: %v", err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatalf("testenv.CheckLayout: index.json: %v", err)
	}
	for _, d := range im.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := ii.ImageIndex(d.Digest)
			if err != nil {
				t.Fatalf("testenv.CheckLayout: %s: %v", d.Digest, err)
			}
			CheckIndexBlobs(t, child)
		case d.MediaType.IsImage():
			img, err := ii.Image(d.Digest)
			if err != nil {
				t.Fatalf("testenv.CheckLayout: %s: %v", d.Digest, err)
			}
			CheckImageBlobs(t, img)
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range files {
		if strings.HasPrefix(filepath.Base(p), ".") {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != filepath.Base(p) {
			t.Errorf("testenv.CheckLayout: %s hashes to sha256:%s", p, got)
		}
	}
}

// HashTree maps every file under dir (relative path) to the sha256 of its
// content, to show that a tree was not written.
func HashTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatalf("testenv.HashTree: %v", err)
	}
	return out
}

// BuildLayerslim builds the layerslim command into a temporary directory
// and returns its path, for tests that run it as a process (to kill it).
func BuildLayerslim(t testing.TB) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("testenv.BuildLayerslim: go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	bin := filepath.Join(t.TempDir(), "layerslim")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/layerslim")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testenv.BuildLayerslim: go build: %v\n%s", err, out)
	}
	return bin
}
