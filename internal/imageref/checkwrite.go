package imageref

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// checkLocalWrite tells, before any work, whether a write to an OCI layout
// or a docker-archive would fail for a reason that is already there: a
// layout that is a file or a dangling symbolic link, a directory that
// cannot be written, a layout whose index.json or oci-layout is damaged or
// of an unknown version, a docker-archive that is a directory or whose
// directory is missing. It writes nothing but a temporary file it removes.
func checkLocalWrite(ref Ref) error {
	switch ref.Kind {
	case OCI:
		return checkLayoutWrite(ref.Path)
	case DockerArchive:
		return checkArchiveWrite(ref.Path)
	}
	return nil
}

func checkLayoutWrite(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := checkDangling(dir); err != nil {
			return err
		}
		return checkCreatable(dir)
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory (%s)", dir, fileKind(fi.Mode()))
	}
	raw, err := readCapped(filepath.Join(dir, indexFile), indexFile, MaxIndexJSONSize)
	switch {
	case err == nil:
		if _, err := v1.ParseIndexManifest(bytes.NewReader(raw)); err != nil {
			return fmt.Errorf("parsing %s: %w", filepath.Join(dir, indexFile), err)
		}
		if err := checkLayoutFile(dir); err != nil {
			return err
		}
	case errors.Is(err, fs.ErrNotExist):
		des, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, de := range des {
			if n := de.Name(); n != layoutFile && n != "blobs" && n != lockFile && !isTemp(n) {
				return fmt.Errorf("%s is neither empty nor an OCI image layout (no index.json)", dir)
			}
		}
	default:
		return err
	}
	return checkWritableDir(dir)
}

func checkArchiveWrite(file string) error {
	if fi, err := os.Stat(file); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory", file)
	} else if err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (%s)", file, fileKind(fi.Mode()))
	}
	if err := checkDangling(file); err != nil {
		return err
	}
	return checkWritableDir(filepath.Dir(file))
}

// checkDangling refuses a path that is a symbolic link to nothing.
func checkDangling(p string) error {
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

// checkCreatable checks that dir can be made: its nearest existing parent
// is a directory that can be written.
func checkCreatable(dir string) error {
	p := filepath.Dir(dir)
	for {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("cannot create %s: %s is not a directory", dir, p)
			}
			return checkWritableDir(p)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := checkDangling(p); err != nil {
			return err
		}
		if q := filepath.Dir(p); q != p {
			p = q
			continue
		}
		return err
	}
}

// checkWritableDir checks that a file can be created in dir, by creating
// one and removing it (permissions alone say nothing of a read-only file
// system, or of root).
func checkWritableDir(dir string) error {
	f, err := os.CreateTemp(dir, tempPrefix+"check-*"+tempSuffix)
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
		if err := checkDangling(p); err != nil {
			return err
		}
		return checkWritableDir(filepath.Dir(p))
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file (%s)", p, fileKind(fi.Mode()))
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	return f.Close()
}
