package analyze_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/analyze"
	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/internal/testenv"
)

// file is a regular file of n bytes.
func file(name string, n int) testenv.File {
	return testenv.Reg(name, strings.Repeat(string(rune('a'+len(name)%26)), n))
}

// layerOf is a gzip layer of the tar b.
func layerOf(t testing.TB, b []byte, opts ...tarball.LayerOption) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// layerOfOpener is a gzip layer of the tar that open streams.
func layerOfOpener(t testing.TB, open func() (io.ReadCloser, error)) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(open)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// imageOf stacks layers (bottom first) on an empty linux/amd64 image; each
// gets a history entry "step N".
func imageOf(t testing.TB, layers ...v1.Layer) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for i, l := range layers {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: "step " + string(rune('1'+i))}})
		if err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// imageOfTars is a linux/amd64 OCI image of gzip layers of the given tars
// (testenv.Image).
func imageOfTars(t testing.TB, tars ...[]byte) v1.Image {
	t.Helper()
	return testenv.Image(t, testenv.ImageSpec{Layers: tars, OCI: true})
}

func analyzeImage(t testing.TB, img v1.Image, o analyze.Options) *analyze.ImageReport {
	t.Helper()
	rep, err := analyze.Image(context.Background(), img, o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// zstdSize is the size of b compressed as the estimate compresses.
func zstdSize(t testing.TB, b []byte) int64 {
	t.Helper()
	var buf bytes.Buffer
	w, err := compress.NewWriter(&buf, compress.Zstd, compress.WithLevel(3))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return int64(buf.Len())
}

// goHello builds a static hello world for linux/amd64 with extra go build
// flags (say "-ldflags=-s -w").
func goHello(t testing.TB, flags ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello from analyze\") }\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.22\n"), 0o644)
	args := append([]string{"build", "-trimpath", "-o", "hello"}, flags...)
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// emptyDir fails the test when dir holds anything.
func emptyDir(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left behind in TempDir: %s", e.Name())
	}
}
