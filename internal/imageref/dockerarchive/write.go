package dockerarchive

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/layerslim/layerslim/internal/imageref/refio"
)

// untaggedArchiveRepo is the repository of the digest reference handed to
// tarball.MultiRefWrite for an untagged docker-archive. A digest reference
// writes no RepoTags, so this name never reaches the file.
const untaggedArchiveRepo = "layerslim"

// Write writes img, whose digest is h, to the docker-archive file with
// tarball.MultiRefWrite, into a temporary file in file's directory renamed
// over file once complete: a failure leaves no partial file, and a source
// archive at the same path is read, never written in place. The image gets
// RepoTags [tag], or none when tag is "" (`docker load` then loads it
// untagged). The archive holds this image only. progress, when not nil,
// receives the write's progress and is not closed.
func Write(ctx context.Context, file, tag string, h v1.Hash, img v1.Image, progress chan<- v1.Update) (err error) {
	var r name.Reference
	if tag != "" {
		r, err = name.NewTag(tag)
	} else {
		r, err = name.NewDigest(untaggedArchiveRepo + "@" + h.String())
	}
	if err != nil {
		return err
	}
	perm := fs.FileMode(0o644)
	if fi, err := os.Stat(file); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("%s is a directory", file)
		}
		perm = fi.Mode().Perm()
	}

	f, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*.tmp")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	var opts []tarball.WriteOption
	if progress != nil {
		opts = append(opts, tarball.WithProgress(progress))
	}
	if err := tarball.MultiRefWrite(map[name.Reference]v1.Image{r: img}, ctxWriter{ctx, f}, opts...); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), file); err != nil {
		return err
	}
	done = true
	return nil
}

// ctxWriter stops a long write once ctx is done.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (w ctxWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return w.w.Write(p)
}

// CheckWrite tells, before any work, whether a write to file would fail
// for a reason that is already there: file is a directory or not a regular
// file, a dangling symbolic link, or its directory cannot be written. It
// writes nothing but a temporary file it removes.
func CheckWrite(file string) error {
	if fi, err := os.Stat(file); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory", file)
	} else if err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (%s)", file, refio.FileKind(fi.Mode()))
	}
	if err := refio.CheckDangling(file); err != nil {
		return err
	}
	return refio.CheckWritableDir(filepath.Dir(file))
}
