package ocilayout_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/layerslim/layerslim/internal/imageref/ocilayout"
	"github.com/layerslim/layerslim/internal/imageref/refio"
	"github.com/layerslim/layerslim/internal/imageref/reftest"
)

// Every JSON document of a layout is read with a size cap, and only from a
// regular file: index.json linked to /dev/zero, or a FIFO, is refused at
// once (they used to be read without end, or to block).
func TestLayoutReadsAreBounded(t *testing.T) {
	newLayout := func(t *testing.T) string {
		dir := t.TempDir()
		p, err := layout.Write(dir, empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendImage(reftest.RandomImage(t, 1)); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	manifestFile := func(t *testing.T, dir string) string {
		ii, err := ocilayout.RootIndex(dir)
		if err != nil {
			t.Fatal(err)
		}
		im, _ := ii.IndexManifest()
		return filepath.Join(dir, "blobs", "sha256", im.Manifests[0].Digest.Hex)
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"index.json links to /dev/zero", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "index.json"))
			if err := os.Symlink("/dev/zero", filepath.Join(dir, "index.json")); err != nil {
				t.Fatal(err)
			}
		}, "index.json: not a regular file (a character device)"},
		{"index.json is a FIFO", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "index.json"))
			if err := syscall.Mkfifo(filepath.Join(dir, "index.json"), 0o644); err != nil {
				t.Skip(err)
			}
		}, "index.json: not a regular file (a FIFO)"},
		{"index.json over the cap", func(t *testing.T, dir string) {
			b := append([]byte(`{"schemaVersion":2,"manifests":[]}`), bytes.Repeat([]byte(" "), refio.MaxIndexJSONSize)...)
			os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644)
		}, "index.json: too large: more than 33554432 bytes"},
		{"manifest is a FIFO", func(t *testing.T, dir string) {
			m := manifestFile(t, dir)
			os.Remove(m)
			if err := syscall.Mkfifo(m, 0o644); err != nil {
				t.Skip(err)
			}
		}, "not a regular file (a FIFO)"},
		{"manifest links to /dev/zero", func(t *testing.T, dir string) {
			m := manifestFile(t, dir)
			os.Remove(m)
			os.Symlink("/dev/zero", m)
		}, "not a regular file (a character device)"},
		{"oci-layout is a FIFO", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "oci-layout"))
			if err := syscall.Mkfifo(filepath.Join(dir, "oci-layout"), 0o644); err != nil {
				t.Skip(err)
			}
		}, "oci-layout: not a regular file (a FIFO)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newLayout(t)
			tc.setup(t, dir)
			err := reftest.OpenWithin(t, "oci:"+dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open = %v, want %q", err, tc.want)
			}
		})
	}
}
