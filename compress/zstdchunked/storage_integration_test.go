//go:build integration && linux

package zstdchunked_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"go.podman.io/storage"
	cschunked "go.podman.io/storage/pkg/chunked"

	"github.com/layerslim/layerslim/compress/zstdchunked"
	"github.com/layerslim/layerslim/internal/testenv"
)

// blobSource serves byte ranges of a blob, as a registry answers the range
// requests of a partial pull.
type blobSource struct {
	blob     []byte
	requests int
}

func (s *blobSource) GetBlobAt(chunks []cschunked.ImageSourceChunk) (chan io.ReadCloser, chan error, error) {
	s.requests++
	streams, errs := make(chan io.ReadCloser), make(chan error)
	go func() {
		defer close(streams)
		defer close(errs)
		for _, c := range chunks {
			if c.Offset+c.Length > uint64(len(s.blob)) {
				errs <- fmt.Errorf("range %d+%d past the blob's %d bytes", c.Offset, c.Length, len(s.blob))
				return
			}
			streams <- io.NopCloser(bytes.NewReader(s.blob[c.Offset : c.Offset+c.Length]))
		}
	}()
	return streams, errs, nil
}

// containers/storage itself (not code of ours) does a partial pull of a
// layerslim zstd:chunked blob: it finds the TOC through the annotations,
// checks it against the manifest-checksum and the tar-split data, fetches
// each file's frames by range, checks each file's digest, and lays the
// files out; they must be the tar's.
func TestContainersStoragePartialPull(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Tool(t, "a root user") // skips, or fails in CI
	}
	for _, w := range writers {
		t.Run(w.name, func(t *testing.T) { testPartialPull(t, w.new) })
	}
}

func testPartialPull(t *testing.T, newWriter func(io.Writer, int) (*zstdchunked.Writer, error)) {
	tarball := layerTar(t)
	blob, ann := chunkedWith(t, newWriter, tarball, 3)
	dir := t.TempDir()
	store, err := storage.GetStore(storage.StoreOptions{
		RunRoot: filepath.Join(dir, "run"), GraphRoot: filepath.Join(dir, "root"), GraphDriverName: "overlay",
		PullOptions: map[string]string{"enable_partial_images": "true", "use_hard_links": "false"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Shutdown(true)
	src := &blobSource{blob: blob}
	differ, err := cschunked.NewDiffer(context.Background(), store, digest.FromBytes(blob), int64(len(blob)), ann, src)
	if err != nil {
		t.Fatalf("containers/storage refused the blob for a partial pull: %v", err)
	}
	defer differ.Close()
	out, err := store.PrepareStagedLayer(nil, differ)
	if err != nil {
		t.Fatalf("containers/storage partial pull: %v", err)
	}
	defer store.CleanupStagedLayer(out)
	if out.TOCDigest.String() != ann[zstdchunked.AnnotationManifestChecksum] {
		t.Errorf("TOC digest %s, annotation %s", out.TOCDigest, ann[zstdchunked.AnnotationManifestChecksum])
	}
	t.Logf("partial pull: %d range requests, target %s", src.requests, out.Target)
	tr := tar.NewReader(bytes.NewReader(tarball))
	files := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		want, _ := io.ReadAll(tr)
		got, err := os.ReadFile(filepath.Join(out.Target, h.Name))
		if err != nil {
			t.Errorf("%s: %v", h.Name, err)
			continue
		}
		if sha256.Sum256(got) != sha256.Sum256(want) {
			t.Errorf("%s: %d bytes, not the tar's %d", h.Name, len(got), len(want))
		}
		files++
	}
	if files < 300 {
		t.Errorf("only %d files compared", files)
	}
}
