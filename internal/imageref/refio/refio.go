// Package refio holds what the transports of internal/imageref share: the
// caps on the JSON documents that describe an image (and ErrTooLarge), the
// sentinel errors of selecting an image (ErrNotFound, ErrAmbiguous,
// ErrUnsupportedMediaType), reads of regular files only, which never block
// on a FIFO, and the probes that tell before any work whether a file or a
// directory can be written.
//
// It knows no transport and no reference syntax: those belong to
// internal/imageref and its transport packages, which all import this one.
package refio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Caps on the JSON documents of an image, wherever it lives.
const (
	// MaxManifestSize caps a manifest or an index: the image-spec's
	// guidance is that registries accept manifests of at least 4 MiB.
	MaxManifestSize = 4 << 20
	// MaxConfigSize caps an image config (its history and labels may be
	// long).
	MaxConfigSize = 32 << 20
	// MaxIndexJSONSize caps a layout's index.json, which lists every tag
	// of the layout (about 300 bytes each), and a docker-archive's
	// manifest.json.
	MaxIndexJSONSize = 32 << 20
)

// Errors that callers may test for with errors.Is. internal/imageref
// exports the same values.
var (
	// ErrTooLarge is wrapped by the error for a JSON document over its cap.
	ErrTooLarge = errors.New("too large")
	// ErrNotRegular is wrapped by the error for a file that is not a
	// regular file.
	ErrNotRegular = errors.New("not a regular file")
	// ErrNotFound: the tag or digest is not in the OCI layout or docker
	// archive, or it holds no image at all.
	ErrNotFound = errors.New("not found")
	// ErrAmbiguous: no tag was given and the OCI layout or docker archive
	// holds several images, or the tag names several different ones.
	ErrAmbiguous = errors.New("ambiguous reference")
	// ErrUnsupportedMediaType: what the reference names is neither an image
	// manifest nor an index.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
)

// Temporary files that the writers (and CheckWritableDir) make are named
// TempPrefix*TempSuffix; they are no part of a layout.
const (
	TempPrefix = ".layerslim-"
	TempSuffix = ".tmp"
)

// OpenRegular opens p for reading if it is a regular file (after symbolic
// links), without blocking on a FIFO.
func OpenRegular(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: %w (%s)", p, ErrNotRegular, FileKind(fi.Mode()))
	}
	return f, nil
}

// FileKind names the type of a file for a message ("a directory", "a FIFO").
func FileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	}
	return m.Type().String()
}

// ReadCapped reads the regular file p, refusing one of more than limit
// bytes (what names it: "index.json", "manifest sha256:…").
func ReadCapped(p, what string, limit int64) ([]byte, error) {
	f, err := OpenRegular(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadAllCapped(f, what, limit)
}

// ReadAllCapped reads r to its end, refusing more than limit bytes.
func ReadAllCapped(r io.Reader, what string, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: %w: more than %d bytes (the limit for it)", what, ErrTooLarge, limit)
	}
	return b, nil
}

// CheckDangling refuses a path that is a symbolic link to nothing.
func CheckDangling(p string) error {
	fi, err := os.Lstat(p)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return nil
	}
	target, _ := os.Readlink(p)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s is a symbolic link to %s, which does not exist", p, target)
	}
	return nil
}

// CheckCreatable checks that dir can be made: its nearest existing parent
// is a directory that can be written.
func CheckCreatable(dir string) error {
	p := filepath.Dir(dir)
	for {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("cannot create %s: %s is not a directory", dir, p)
			}
			return CheckWritableDir(p)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := CheckDangling(p); err != nil {
			return err
		}
		if q := filepath.Dir(p); q != p {
			p = q
			continue
		}
		return err
	}
}

// CheckWritableDir checks that a file can be created in dir, by creating
// one and removing it (permissions alone say nothing of a read-only file
// system, or of root).
func CheckWritableDir(dir string) error {
	f, err := os.CreateTemp(dir, TempPrefix+"check-*"+TempSuffix)
	if err != nil {
		return fmt.Errorf("cannot write in %s: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// CheckWritableFile checks, before any work, that a file such as a report
// can be written at p later: p is a regular file that can be opened for
// writing (it is not changed), or it does not exist and its directory can
// be written.
func CheckWritableFile(p string) error {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := CheckDangling(p); err != nil {
			return err
		}
		return CheckWritableDir(filepath.Dir(p))
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file (%s)", p, FileKind(fi.Mode()))
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	return f.Close()
}
