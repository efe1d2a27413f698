// Package debugtree writes the debug files of a debug image as a
// debuginfod-style tree: DIR/.build-id/xx/rest.debug, and DIR/<path>.debug
// for files without a build-id.
package debugtree

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/internal/blob"
	"github.com/layerslim/layerslim/internal/limit"
	"github.com/layerslim/layerslim/internal/whiteout"
)

const debugDir = "usr/lib/debug/"

// Extract writes every regular file under /usr/lib/debug of img into dir,
// below prefix (a relative directory, "" for dir itself) for files without
// a build-id. Files of later layers replace those of earlier ones. It
// returns the files written, relative to dir.
func Extract(ctx context.Context, img v1.Image, dir, prefix string) ([]string, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	var written []string
	seen := map[string]bool{}
	for _, l := range layers {
		d, _ := l.Digest()
		files, err := extractLayer(ctx, l, dir, prefix)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", d, err)
		}
		for _, f := range files {
			if !seen[f] {
				seen[f] = true
				written = append(written, f)
			}
		}
	}
	return written, nil
}

func extractLayer(ctx context.Context, l v1.Layer, dir, prefix string) ([]string, error) {
	d, err := l.Digest()
	if err != nil {
		return nil, err
	}
	b, err := blob.Open(ctx, l, v1.Descriptor{Digest: d}, nil)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	// The default limits hold here too: a bomb must not fill the disk.
	n := limit.DefaultMaxLayerSize
	tr := tar.NewReader(limit.Reader(b.Tar, n, limit.Layer(n)))
	bodies := limit.Reader(tr, n, limit.Files(n))
	var out []string
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, b.Blob.Finish()
		}
		if err != nil {
			return nil, err
		}
		p := whiteout.Clean(h.Name)
		if h.Typeflag != tar.TypeReg || !strings.HasPrefix(p, debugDir) {
			continue
		}
		rel := strings.TrimPrefix(p, debugDir)
		if !strings.HasPrefix(rel, ".build-id/") {
			rel = filepath.Join(prefix, rel)
		}
		// Clean keeps rel inside dir: no element of it is "..".
		target := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(f, bodies)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		out = append(out, filepath.ToSlash(rel))
	}
}
