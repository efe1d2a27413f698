package ocilayout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/layerslim/layerslim/internal/blob"
	"github.com/layerslim/layerslim/internal/imageref/refio"
	"github.com/layerslim/layerslim/manifest"
)

// An OCI layout is written so that a run killed at any moment leaves a valid
// layout and never touches what was there:
//
//   - every blob goes to a temporary file in the layout (DIR/blobs/ALG/
//     .layerslim-*.tmp), is checked against its digest and size, synced,
//     and then hard-linked to its name, which never replaces a file (rename
//     is the fallback on file systems without hard links). A blob that is
//     already there with the right size is kept as it is: a layout shared
//     with the source never sees a blob of the source rewritten;
//   - blobs are written children first: layers and config, then the
//     manifest, then for an index the index manifest;
//   - index.json is replaced last, by a temporary file renamed over it, and
//     the directories are synced.
//
// A killed run may leave .layerslim-*.tmp files; they are no part of the
// layout, and a later write removes those older than staleTemp.

const (
	layoutFile     = "oci-layout"
	layoutContents = `{"imageLayoutVersion":"1.0.0"}`
	indexFile      = "index.json"
	tempPrefix     = refio.TempPrefix
	tempSuffix     = refio.TempSuffix
)

// ErrLayoutBlobMismatch: a blob already in the destination layout is not the
// size its digest needs; the layout is damaged, and layerslim does not
// overwrite it.
var ErrLayoutBlobMismatch = errors.New("blob in the layout has the wrong size")

// WriteImage writes img into the layout at dir: its blobs, then its
// index.json entry, named tag (which replaces any entry with that name) or,
// without a tag, unnamed (replacing an unnamed entry with the same digest).
// The layout is created when dir does not exist or is empty. jobs bounds
// the layers written at once (0 or less: 4).
func WriteImage(ctx context.Context, dir, tag string, img v1.Image, jobs int) error {
	return write(ctx, dir, tag, image{img}, jobs)
}

// WriteIndex writes idx, every child manifest and its blobs first, into the
// layout at dir, as WriteImage does for an image.
func WriteIndex(ctx context.Context, dir, tag string, idx v1.ImageIndex, jobs int) error {
	return write(ctx, dir, tag, index{idx}, jobs)
}

// taggable is what WriteImage or WriteIndex writes. The wrappers hide any
// Descriptor method of what they hold, so that the index.json entry is
// described from the digest, size and media type alone.
type taggable interface {
	Digest() (v1.Hash, error)
}

type image struct{ v1.Image }

type index struct{ v1.ImageIndex }

// write writes m's blobs into the layout at dir, then its index.json entry.
func write(ctx context.Context, dir, tag string, m taggable, jobs int) error {
	h, err := m.Digest()
	if err != nil {
		return err
	}
	w, err := openLayoutForWrite(ctx, dir, jobs)
	if err != nil {
		return err
	}
	if err := w.writeTaggable(m); err != nil {
		return err
	}
	d, ok := m.(partial.Describable)
	if !ok {
		return fmt.Errorf("cannot describe %T", m)
	}
	desc, err := partial.Descriptor(d)
	if err != nil {
		return err
	}
	matcher := func(d v1.Descriptor) bool {
		return d.Digest == h && d.Annotations[RefNameAnnotation] == ""
	}
	if tag != "" {
		if desc.Annotations == nil {
			desc.Annotations = map[string]string{}
		}
		desc.Annotations[RefNameAnnotation] = tag
		matcher = match.Name(tag)
	}
	return w.setIndexEntry(*desc, matcher)
}

// layoutWriter writes blobs and index.json into one layout directory.
type layoutWriter struct {
	ctx  context.Context
	dir  string
	jobs int
}

// openLayoutForWrite prepares dir to receive a write: an existing layout, a
// missing or empty directory (a layout is created), or a directory a killed
// run left with an oci-layout file or a blobs directory but no index.json yet.
func openLayoutForWrite(ctx context.Context, dir string, jobs int) (*layoutWriter, error) {
	if jobs < 1 {
		jobs = 4
	}
	w := &layoutWriter{ctx: ctx, dir: dir, jobs: jobs}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case !fi.IsDir():
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	// Another writer may be creating the layout: look at it, and create
	// it, holding the lock.
	unlock, err := lockLayout(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(dir, indexFile)); err == nil {
		if err := checkLayoutFile(dir); err != nil {
			return nil, err
		}
		return w, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, de := range des {
		if n := de.Name(); n != layoutFile && n != "blobs" && n != lockFile && !isTemp(n) {
			return nil, fmt.Errorf("%s is neither empty nor an OCI image layout (no index.json)", dir)
		}
	}
	return w, w.create()
}

// checkLayoutFile refuses a directory whose oci-layout file is not ours to
// extend (missing is accepted, as ggcr's reader accepts it).
// Its imageLayoutVersion must be 1.x: a later major version may lay blobs
// or index.json out differently.
func checkLayoutFile(dir string) error {
	p := filepath.Join(dir, layoutFile)
	b, err := refio.ReadCapped(p, layoutFile, 64<<10)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var l struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(b, &l); err != nil || l.Version == "" {
		return fmt.Errorf("%s: not an OCI image layout file", p)
	}
	if !strings.HasPrefix(l.Version, "1.") {
		return fmt.Errorf("%s: imageLayoutVersion %q is not supported (layerslim reads and writes 1.x)", p, l.Version)
	}
	return nil
}

// create makes dir an empty layout: oci-layout, then index.json, each
// written atomically.
func (w *layoutWriter) create() error {
	if err := os.MkdirAll(filepath.Join(w.dir, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	if err := w.replaceFile(layoutFile, []byte(layoutContents)); err != nil {
		return err
	}
	empty, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}})
	if err != nil {
		return err
	}
	return w.replaceFile(indexFile, empty)
}

// writeTaggable writes m's blobs (for an index, its children's first).
func (w *layoutWriter) writeTaggable(m taggable) error {
	w.removeStaleTemps()
	switch m := m.(type) {
	case image:
		return w.writeImage(m.Image)
	case index:
		return w.writeIndex(m.ImageIndex, 0)
	}
	return fmt.Errorf("unknown kind of manifest %T", m)
}

func (w *layoutWriter) writeImage(img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(w.ctx)
	g.SetLimit(w.jobs)
	for _, l := range layers {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			d, err := l.Digest()
			if err != nil {
				return err
			}
			size, err := l.Size()
			if err != nil {
				return err
			}
			if err := w.writeLayer(l, d, size); err != nil {
				return fmt.Errorf("writing layer %s: %w", d, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	if err := w.writeBytes(cfgName, cfg); err != nil {
		return fmt.Errorf("writing config %s: %w", cfgName, err)
	}
	return w.writeManifest(img)
}

// maxLayoutDepth bounds nested indexes, as maxIndexDepth does for reads.
func (w *layoutWriter) writeIndex(ii v1.ImageIndex, depth int) error {
	if depth > maxIndexDepth {
		return fmt.Errorf("indexes nested more than %d deep", maxIndexDepth)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return err
	}
	for _, desc := range im.Manifests {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		switch {
		case desc.MediaType.IsIndex():
			child, err := ii.ImageIndex(desc.Digest)
			if err != nil {
				return err
			}
			if err := w.writeIndex(child, depth+1); err != nil {
				return err
			}
		case desc.MediaType.IsImage():
			img, err := ii.Image(desc.Digest)
			if err != nil {
				return err
			}
			if err := w.writeImage(img); err != nil {
				if desc.Platform != nil {
					return fmt.Errorf("%s manifest %s: %w", desc.Platform, desc.Digest, err)
				}
				return fmt.Errorf("manifest %s: %w", desc.Digest, err)
			}
		default:
			// An artifact the index lists: written as the blob it is.
			if err := w.writeChildBlob(ii, desc); err != nil {
				return fmt.Errorf("entry %s (%s): %w", desc.Digest, desc.MediaType, err)
			}
		}
	}
	return w.writeManifest(ii)
}

// writeChildBlob writes the index entry desc of ii, neither an image nor
// an index, as the blob it is.
func (w *layoutWriter) writeChildBlob(ii v1.ImageIndex, desc v1.Descriptor) error {
	open, err := childBlob(ii, desc.Digest)
	if err != nil {
		return err
	}
	return w.writeBlob(desc.Digest, desc.Size, open)
}

// childBlob opens an index entry that is neither an image nor an index, the
// way ggcr's layout writer does.
func childBlob(ii v1.ImageIndex, h v1.Hash) (func() (io.ReadCloser, error), error) {
	if wl, ok := ii.(interface {
		Layer(v1.Hash) (v1.Layer, error)
	}); ok {
		l, err := wl.Layer(h)
		if err != nil {
			return nil, err
		}
		return l.Compressed, nil
	}
	if wb, ok := ii.(interface {
		Blob(v1.Hash) (io.ReadCloser, error)
	}); ok {
		return func() (io.ReadCloser, error) { return wb.Blob(h) }, nil
	}
	return nil, errors.New("no way to read it")
}

func (w *layoutWriter) writeManifest(m partial.WithRawManifest) error {
	raw, err := m.RawManifest()
	if err != nil {
		return err
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if err := w.writeBytes(h, raw); err != nil {
		return fmt.Errorf("writing manifest %s: %w", h, err)
	}
	return nil
}

func (w *layoutWriter) writeBytes(h v1.Hash, b []byte) error {
	return w.writeBlob(h, int64(len(b)), func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
}

func (w *layoutWriter) blobPath(h v1.Hash) string {
	return filepath.Join(w.dir, "blobs", h.Algorithm, h.Hex)
}

// writeBlob puts the blob h of size bytes (size < 0: unknown) in the layout,
// unless it is there already.
func (w *layoutWriter) writeBlob(h v1.Hash, size int64, open func() (io.ReadCloser, error)) error {
	if !safeDigest(h) {
		return fmt.Errorf("bad digest %q", h)
	}
	final := w.blobPath(h)
	if fi, err := os.Stat(final); err == nil {
		if fi.Mode().IsRegular() && (size < 0 || fi.Size() == size) {
			return nil
		}
		return fmt.Errorf("%w: %s has %d bytes, the manifest says %d; not overwriting it", ErrLayoutBlobMismatch, final, fi.Size(), size)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.CreateTemp(dir, tempPrefix+"*"+tempSuffix)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		f.Close()
		os.Remove(tmp)
	}()
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	// Checked by h's own algorithm (any go-digest knows; others refused).
	br := blob.NewReader(w.ctx, rc, h, size, nil)
	n, err := io.Copy(f, br)
	if err != nil {
		return err
	}
	if size >= 0 && n != size {
		return fmt.Errorf("got %d bytes, want %d", n, size)
	}
	if err := br.Finish(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// A hard link never replaces a blob that appeared meanwhile (another
	// writer, or the same blob in two images of an index).
	err = os.Link(tmp, final)
	switch {
	case err == nil, errors.Is(err, fs.ErrExist):
		return nil
	case errors.Is(err, fs.ErrPermission), isLinkUnsupported(err):
		return os.Rename(tmp, final)
	}
	return err
}

// safeDigest reports whether h can name a file under blobs/ (no path
// separators or dots from a hostile manifest).
func safeDigest(h v1.Hash) bool {
	return h.Algorithm != "" && h.Hex != "" && !strings.ContainsAny(h.Algorithm+h.Hex, `/\.`)
}

// writeLayer writes l's blob, linking its local file where it has one.
func (w *layoutWriter) writeLayer(l v1.Layer, d v1.Hash, size int64) error {
	if f, ok := l.(LocalFiler); ok {
		if done, err := w.linkBlob(d, size, f.LocalFile()); err != nil || done {
			return err
		}
	}
	return w.writeBlob(d, size, l.Compressed)
}

// LocalFiler is a layer whose compressed bytes are a file on this machine
// that its digest was computed from as it was written (a rewrite's
// temporary output file). Writing it into an OCI layout on the same file
// system links that file instead of copying and hashing it again.
type LocalFiler interface {
	// LocalFile is the file's path, or "" when there is none.
	LocalFile() string
}

// linkBlob puts the file src in the layout as blob h by a hard link, the way
// writeBlob does with a copy. done is false, with no error, when it cannot
// (no file, another file system, links unsupported): the caller copies.
func (w *layoutWriter) linkBlob(h v1.Hash, size int64, src string) (done bool, err error) {
	if src == "" || !safeDigest(h) {
		return false, nil
	}
	if fi, err := os.Stat(src); err != nil || !fi.Mode().IsRegular() || (size >= 0 && fi.Size() != size) {
		return false, nil
	}
	final := w.blobPath(h)
	if _, err := os.Lstat(final); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return false, nil // writeBlob checks what is there
	}
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	tmp := filepath.Join(dir, fmt.Sprintf("%s%s-%d%s", tempPrefix, h.Hex[:min(16, len(h.Hex))], time.Now().UnixNano(), tempSuffix))
	if err := os.Link(src, tmp); err != nil {
		return false, nil
	}
	defer os.Remove(tmp)
	f, err := os.Open(tmp)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := f.Chmod(0o644); err != nil {
		return false, err
	}
	if err := f.Sync(); err != nil {
		return false, err
	}
	switch err := os.Link(tmp, final); {
	case err == nil, errors.Is(err, fs.ErrExist):
		return true, nil
	default:
		return false, nil
	}
}

// setIndexEntry replaces the entries of index.json that match with desc,
// atomically, after syncing the blob directories, holding the layout's
// lock from the read to the rename.
func (w *layoutWriter) setIndexEntry(desc v1.Descriptor, match func(v1.Descriptor) bool) error {
	unlock, err := lockLayout(w.ctx, w.dir)
	if err != nil {
		return err
	}
	defer unlock()
	raw, err := os.ReadFile(filepath.Join(w.dir, indexFile))
	if err != nil {
		return err
	}
	// Every other entry stays as written, fields unknown to us included.
	b, err := manifest.ReplaceIndexEntries(raw, desc, match)
	if err != nil {
		return fmt.Errorf("parsing %s: %w", filepath.Join(w.dir, indexFile), err)
	}
	if err := syncDir(filepath.Join(w.dir, "blobs", desc.Digest.Algorithm)); err != nil {
		return err
	}
	return w.replaceFile(indexFile, b)
}

// replaceFile writes DIR/name through a temporary file renamed over it.
func (w *layoutWriter) replaceFile(name string, b []byte) error {
	f, err := os.CreateTemp(w.dir, tempPrefix+"*"+tempSuffix)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		f.Close()
		os.Remove(tmp)
	}()
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(w.dir, name)); err != nil {
		return err
	}
	return syncDir(w.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	return nil
}

// staleTemp is how old (since its last write) a temporary file must be for
// a later write to remove it: a live writer touches its file all along.
const staleTemp = time.Hour

// isTemp reports a temporary file of a writer (or of CheckWrite), which is
// no part of the layout.
func isTemp(name string) bool {
	return strings.HasPrefix(name, tempPrefix) && strings.HasSuffix(name, tempSuffix)
}

// removeStaleTemps removes the temporary files of killed runs, best effort.
func (w *layoutWriter) removeStaleTemps() {
	dirs := []string{w.dir}
	if des, err := os.ReadDir(filepath.Join(w.dir, "blobs")); err == nil {
		for _, de := range des {
			if de.IsDir() {
				dirs = append(dirs, filepath.Join(w.dir, "blobs", de.Name()))
			}
		}
	}
	for _, dir := range dirs {
		des, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, de := range des {
			n := de.Name()
			if !strings.HasPrefix(n, tempPrefix) || !strings.HasSuffix(n, tempSuffix) || !de.Type().IsRegular() {
				continue
			}
			if fi, err := de.Info(); err == nil && time.Since(fi.ModTime()) > staleTemp {
				os.Remove(filepath.Join(dir, n))
			}
		}
	}
}

// isLinkUnsupported reports a file system without hard links.
func isLinkUnsupported(err error) bool {
	return errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.EMLINK) || errors.Is(err, errors.ErrUnsupported)
}
