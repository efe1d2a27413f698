package ocilayout_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/imageref/ocilayout"
	"github.com/layerslim/layerslim/internal/imageref/refio"
	"github.com/layerslim/layerslim/internal/imageref/reftest"
)

// fileState is what a file was: its content hash and its inode.
type fileState struct {
	sum   string
	inode uint64
}

// snapshot records every regular file under dir.
func snapshot(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	files := map[string]fileState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, p)
		files[rel] = fileState{hex.EncodeToString(sum[:]), fi.Sys().(*syscall.Stat_t).Ino}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// checkLayout fails t unless dir is a valid layout: index.json parses and
// every image or index it lists validates, every blob hashing to its name.
func checkLayout(t *testing.T, dir string) {
	t.Helper()
	ii, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("layout %s: %v", dir, err)
	}
	if err := validate.Index(ii); err != nil {
		t.Fatalf("layout %s: %v", dir, err)
	}
	for _, p := range mustGlob(t, filepath.Join(dir, "blobs", "sha256", "*")) {
		if strings.HasPrefix(filepath.Base(p), refio.TempPrefix) {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != filepath.Base(p) {
			t.Errorf("blob %s hashes to %x", p, sum)
		}
	}
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestOCIWriteFailureLeavesLayoutUntouched: a write that fails in the middle
// of a blob leaves the layout as it was (no partial blob under a digest
// name, index.json the same), and the same write then succeeds.
func TestOCIWriteFailureLeavesLayoutUntouched(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, "oci:"+dir+":old"), reftest.RandomImage(t, 1), imageref.Options{}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)

	layers, err := reftest.RandomImage(t, 2).Layers()
	if err != nil {
		t.Fatal(err)
	}
	broken, err := mutate.AppendLayers(empty.Image, layers[0], reftest.FailingLayer{Layer: layers[1]}, layers[2])
	if err != nil {
		t.Fatal(err)
	}
	_, err = imageref.WriteImage(ctx, reftest.MustParse(t, "oci:"+dir+":new"), broken, imageref.Options{Jobs: 1})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("WriteImage = %v, want the injected failure", err)
	}
	if !strings.Contains(err.Error(), "writing oci:"+dir+":new") || !strings.Contains(err.Error(), "layer "+reftest.MustDigest(t, layers[1]).String()) {
		t.Errorf("error %q does not name the destination and the layer", err)
	}
	after := snapshot(t, dir)
	for p, st := range after {
		if b, ok := before[p]; !ok && p != filepath.Join("blobs", "sha256", reftest.MustDigest(t, layers[0]).Hex) || ok && b != st {
			t.Errorf("%s appeared or changed after a failed write", p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("%s disappeared after a failed write", p)
		}
	}
	checkLayout(t, dir)
	if names := entryNames(t, dir); strings.Join(names, ",") != "old" {
		t.Errorf("index.json names %v after the failed write, want [old]", names)
	}

	// The same write with a sound layer completes, keeping the blob the
	// failed one already wrote.
	fixed, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, "oci:"+dir+":new"), fixed, imageref.Options{}); err != nil {
		t.Fatal(err)
	}
	checkLayout(t, dir)
	if names := entryNames(t, dir); strings.Join(names, ",") != "old,new" {
		t.Errorf("index.json names %v, want [old new]", names)
	}
}

func entryNames(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	for _, d := range indexEntries(t, dir) {
		names = append(names, d.Annotations[ocilayout.RefNameAnnotation])
	}
	return names
}

// TestOCISameLayoutAsSource: rewriting into the layout the source lives in
// adds blobs and an index.json entry, and leaves every blob of the source as
// it was: same bytes, same inode (not even replaced by equal content).
func TestOCISameLayoutAsSource(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := reftest.RandomImage(t, 3)
	if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, "oci:"+dir+":src"), src, imageref.Options{}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	opened, err := imageref.Open(ctx, reftest.MustParse(t, "oci:"+dir+":src"), imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The output shares two layers with the source and adds one.
	layers, err := opened.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	extra, err := reftest.RandomImage(t, 4).Layers()
	if err != nil {
		t.Fatal(err)
	}
	out, err := mutate.AppendLayers(empty.Image, layers[0], extra[0], layers[2])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, "oci:"+dir+":out"), out, imageref.Options{}); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, dir)
	for p, st := range before {
		if p == ocilayout.IndexFile {
			continue
		}
		if after[p] != st {
			t.Errorf("%s changed (%+v → %+v)", p, st, after[p])
		}
	}
	checkLayout(t, dir)
	if names := entryNames(t, dir); strings.Join(names, ",") != "src,out" {
		t.Errorf("index.json names %v, want [src out]", names)
	}
}

// TestOCIDamagedBlobNotOverwritten: a blob of the wrong size under a digest
// name is reported, and left alone.
func TestOCIDamagedBlobNotOverwritten(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	img := reftest.RandomImage(t, 5)
	if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, "oci:"+dir+":a"), reftest.RandomImage(t, 6), imageref.Options{}); err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "blobs", "sha256", reftest.MustDigest(t, layers[1]).Hex)
	if err := os.WriteFile(bad, []byte("truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = imageref.WriteImage(ctx, reftest.MustParse(t, "oci:"+dir+":b"), img, imageref.Options{})
	if !errors.Is(err, ocilayout.ErrLayoutBlobMismatch) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("WriteImage over a damaged blob = %v, want ErrLayoutBlobMismatch naming %s", err, bad)
	}
	if b, _ := os.ReadFile(bad); string(b) != "truncated" {
		t.Errorf("the damaged blob was rewritten")
	}
	if names := entryNames(t, dir); strings.Join(names, ",") != "a" {
		t.Errorf("index.json names %v, want [a]", names)
	}
}

// TestOCIResumesKilledCreation: a directory a killed run left with only an
// oci-layout file, blobs and temporary files (no index.json yet) is taken
// as a layout being created; temporary files older than an hour go.
func TestOCIResumesKilledCreation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ocilayout.LayoutFile), []byte(ocilayout.LayoutContents), 0o644); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(blobs, refio.TempPrefix+"123"+refio.TempSuffix)
	fresh := filepath.Join(blobs, refio.TempPrefix+"456"+refio.TempSuffix)
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * ocilayout.StaleTemp)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	img := reftest.RandomImage(t, 7)
	if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, "oci:"+dir+":v1"), img, imageref.Options{}); err != nil {
		t.Fatal(err)
	}
	checkLayout(t, dir)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file kept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a recent temporary file (maybe another writer's) was removed: %v", err)
	}

	// A directory with anything else in it is still refused.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, "oci:"+other), img, imageref.Options{}); err == nil || !strings.Contains(err.Error(), "neither empty nor an OCI image layout") {
		t.Errorf("write into a foreign directory: %v", err)
	}
}

// fileLayer is a layer whose bytes are also a local file (as a rewrite's
// output is until Result.Close).
type fileLayer struct {
	v1.Layer
	path string
}

func (l fileLayer) LocalFile() string { return l.path }

// TestOCILinksLocalFiles: a layer held in a local file is linked into the
// layout, not copied; one whose file is gone is copied as any other.
func TestOCILinksLocalFiles(t *testing.T) {
	ctx := context.Background()
	spool, dir := t.TempDir(), t.TempDir()
	layers, err := reftest.RandomImage(t, 7).Layers()
	if err != nil {
		t.Fatal(err)
	}
	var wrapped []v1.Layer
	var files []string
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		p := filepath.Join(spool, fmt.Sprintf("layer-%d", i))
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
		if i == 2 {
			p = filepath.Join(spool, "gone") // falls back to a copy
		}
		wrapped = append(wrapped, fileLayer{Layer: l, path: p})
	}
	img, err := mutate.AppendLayers(empty.Image, wrapped...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, "oci:"+dir+":out"), img, imageref.Options{}); err != nil {
		t.Fatal(err)
	}
	checkLayout(t, dir)
	for i, l := range layers {
		d, _ := l.Digest()
		blob := filepath.Join(dir, "blobs", d.Algorithm, d.Hex)
		bi, err := os.Stat(blob)
		if err != nil {
			t.Fatal(err)
		}
		si, err := os.Stat(files[i])
		if err != nil {
			t.Fatal(err)
		}
		if linked := os.SameFile(bi, si); linked != (i != 2) {
			t.Errorf("layer %d: linked = %v, want %v", i, linked, i != 2)
		}
		if bi.Mode().Perm() != 0o644 {
			t.Errorf("layer %d: blob mode %v, want 0644", i, bi.Mode().Perm())
		}
	}
	// The spool file going away leaves the layout whole.
	for _, f := range files {
		os.Remove(f)
	}
	checkLayout(t, dir)
}
