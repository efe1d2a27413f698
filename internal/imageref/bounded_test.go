package imageref

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// openWithin opens ref and fails the test if that takes more than a few
// seconds (a FIFO read blocks for ever).
func openWithin(t *testing.T, ref string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Open(context.Background(), mustParse(t, ref), Options{})
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("Open(%s) blocked", ref)
		return nil
	}
}

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
		if err := p.AppendImage(randomImage(t, 1)); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	manifestFile := func(t *testing.T, dir string) string {
		ii, err := ociLayout(dir).rootIndex()
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
			b := append([]byte(`{"schemaVersion":2,"manifests":[]}`), bytes.Repeat([]byte(" "), MaxIndexJSONSize)...)
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
			err := openWithin(t, "oci:"+dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open = %v, want %q", err, tc.want)
			}
		})
	}
}

// A docker-archive that cannot be read says why: gzip-compressed as a
// whole, a pipe (stdin), or a tag on two images.
func TestArchiveMistakesSayWhy(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "save.tar")
	writeDockerSave(t, plain, legacy,
		saveImage{repoTags: []string{"app:1"}, layers: [][]byte{layerTar(t, 1, 100)}},
		saveImage{repoTags: []string{"app:1", "app:2"}, layers: [][]byte{layerTar(t, 2, 100)}},
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
		{"docker-archive:" + fifo, "not a regular file (a FIFO); layerslim reads a docker-archive more than once", ErrNotRegular},
		{"docker-archive:" + plain + ":app:1", "tag app:1 names 2 images in the archive", ErrAmbiguous},
	} {
		err := openWithin(t, tc.ref)
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("Open(%s) = %v, want %q", tc.ref, err, tc.want)
		}
	}
	if err := openWithin(t, "docker-archive:"+plain+":app:2"); err != nil {
		t.Errorf("app:2 names one image: %v", err)
	}
}

// A registry image whose manifest gives its config more than MaxConfigSize
// bytes is refused before the config is read.
func TestRegistryConfigOverTheCap(t *testing.T) {
	host, _ := newRegistry(t)
	cfg := v1.Descriptor{MediaType: types.OCIConfigJSON, Size: MaxConfigSize + 1,
		Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg, Layers: []v1.Descriptor{}}
	raw, _ := json.Marshal(m)
	ref, err := name.ParseReference(host+"/big:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(ref, rawManifest{raw, types.OCIManifestSchema1}); err != nil {
		t.Fatal(err)
	}
	src, err := Open(context.Background(), mustParse(t, host+"/big:v1"), Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Image.RawConfigFile(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("RawConfigFile() = %v, want ErrTooLarge", err)
	}
	if _, err := src.Image.ConfigFile(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ConfigFile() = %v, want ErrTooLarge", err)
	}
}

type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }
