package debugserve

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The index lives on disk under the cache directory, so that memory does not
// grow with the number of images and a restart reads no layer again:
//
//	images/HEX.json      one record per debug image indexed (written last)
//	layers/HEX.KIND.json what a scan of a layer found (KIND debuginfo or executable)
//	buildid/XX/REST      one JSON line per (kind, image) that holds the build-id XXREST
//
// HEX is the hex of a sha256 digest, XXREST a lower-case build-id: both are
// checked before they name a file.
type index struct {
	dir string
	mu  sync.Mutex // serialises appends to build-id files

	images   atomic.Int64 // image records
	buildIDs atomic.Int64 // build-id files
}

// Kinds of file the index knows.
const (
	kindDebuginfo  = "debuginfo"
	kindExecutable = "executable"
)

// imageRecord is a debug image indexed: where its blobs are, and its layers.
type imageRecord struct {
	Digest   v1.Hash `json:"digest"`
	Name     string  `json:"name"`             // as found: HOST/REPO:TAG, oci:DIR:TAG
	Repo     string  `json:"repo,omitempty"`   // the registry repository holding its blobs
	Layout   string  `json:"layout,omitempty"` // or the OCI layout directory
	DebugFor string  `json:"debugFor,omitempty"`
	Subject  string  `json:"subject,omitempty"`
	// Layers are the image's layers, the debug layer last.
	Layers []layerRecord `json:"layers"`
}

type layerRecord struct {
	Digest v1.Hash `json:"digest"`
	Size   int64   `json:"size"`
}

// where names the blob source of an image record, for messages.
func (r *imageRecord) where() string {
	if r.Repo != "" {
		return r.Repo + "@" + r.Digest.String()
	}
	return "oci:" + r.Layout + "@" + r.Digest.String()
}

// file is one file in a layer: a debug file or an executable.
type file struct {
	BuildID string `json:"id"`
	Path    string `json:"path"` // clean, relative to the layer's root
	Size    int64  `json:"size"`
}

// location is one line of a build-id file.
type location struct {
	Kind  string  `json:"kind"`
	Image v1.Hash `json:"image"`
	Layer v1.Hash `json:"layer"`
	Path  string  `json:"path"`
	Size  int64   `json:"size"`
}

func openIndex(dir string) (*index, error) {
	for _, d := range []string{"images", "layers", "buildid"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	x := &index{dir: dir}
	// Count what a previous run left, for /metrics.
	imgs, err := os.ReadDir(filepath.Join(dir, "images"))
	if err != nil {
		return nil, err
	}
	x.images.Store(int64(len(imgs)))
	var n int64
	err = filepath.WalkDir(filepath.Join(dir, "buildid"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	x.buildIDs.Store(n)
	return x, nil
}

// sha256Hex returns h's hex when h is a well-formed sha256 digest, the only
// kind of digest that names a file here.
func sha256Hex(h v1.Hash) (string, bool) {
	if h.Algorithm != "sha256" {
		return "", false
	}
	if _, err := v1.NewHash(h.String()); err != nil {
		return "", false
	}
	return h.Hex, true
}

func (x *index) imagePath(h v1.Hash) (string, error) {
	hex, ok := sha256Hex(h)
	if !ok {
		return "", fmt.Errorf("digest %q is not sha256", h)
	}
	return filepath.Join(x.dir, "images", hex+".json"), nil
}

func (x *index) layerPath(h v1.Hash, kind string) (string, error) {
	hex, ok := sha256Hex(h)
	if !ok {
		return "", fmt.Errorf("digest %q is not sha256", h)
	}
	return filepath.Join(x.dir, "layers", hex+"."+kind+".json"), nil
}

// buildIDPath names the build-id file of id, a ParseBuildID result.
func (x *index) buildIDPath(id string) string {
	return filepath.Join(x.dir, "buildid", id[:2], id[2:])
}

// hasImage reports whether the image with digest h is indexed.
func (x *index) hasImage(h v1.Hash) bool {
	p, err := x.imagePath(h)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

func (x *index) image(h v1.Hash) (*imageRecord, error) {
	p, err := x.imagePath(h)
	if err != nil {
		return nil, err
	}
	var r imageRecord
	if err := readJSON(p, &r); err != nil {
		return nil, fmt.Errorf("reading the index of image %s: %w", h, err)
	}
	return &r, nil
}

func (x *index) putImage(r *imageRecord) error {
	p, err := x.imagePath(r.Digest)
	if err != nil {
		return err
	}
	_, statErr := os.Stat(p)
	if err := writeJSON(p, r); err != nil {
		return err
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		x.images.Add(1)
	}
	return nil
}

// scanned returns what an earlier scan of layer h for kind found; ok is
// false when there was none.
func (x *index) scanned(h v1.Hash, kind string) (files []file, ok bool, err error) {
	p, err := x.layerPath(h, kind)
	if err != nil {
		return nil, false, err
	}
	err = readJSON(p, &files)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return files, err == nil, err
}

func (x *index) putScan(h v1.Hash, kind string, files []file) error {
	p, err := x.layerPath(h, kind)
	if err != nil {
		return err
	}
	if files == nil {
		files = []file{}
	}
	return writeJSON(p, files)
}

// add records that image img holds files of kind in layer l, skipping
// locations the index already has.
func (x *index) add(kind string, img, l v1.Hash, files []file) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, f := range files {
		loc := location{Kind: kind, Image: img, Layer: l, Path: f.Path, Size: f.Size}
		have, err := x.lookupLocked(f.BuildID)
		if err != nil {
			return err
		}
		dup := false
		for _, h := range have {
			if h == loc {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		line, err := json.Marshal(loc)
		if err != nil {
			return err
		}
		p := x.buildIDPath(f.BuildID)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		fh, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		_, err = fh.Write(append(line, '\n'))
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if len(have) == 0 {
			x.buildIDs.Add(1)
		}
	}
	return nil
}

// lookup returns the locations of build-id id (a ParseBuildID result).
func (x *index) lookup(id string) ([]location, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.lookupLocked(id)
}

// maxLocations bounds what one build-id file may list.
const maxLocations = 1 << 16

func (x *index) lookupLocked(id string) ([]location, error) {
	b, err := os.ReadFile(x.buildIDPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []location
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() && len(out) < maxLocations {
		var l location
		// A line cut short by a crash is skipped; its image is indexed again.
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			out = append(out, l)
		}
	}
	return out, nil
}

func readJSON(p string, v any) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// writeJSON replaces p atomically: a crash leaves the old file or the new one.
func writeJSON(p string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
