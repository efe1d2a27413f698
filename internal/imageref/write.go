package imageref

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// untaggedArchiveRepo is the repository of the digest reference handed to
// tarball.MultiRefWrite for an untagged docker-archive. A digest reference
// writes no RepoTags, so this name never reaches the file.
const untaggedArchiveRepo = "layerslim"

// WriteImage writes img to ref and returns its digest.
//
// Blobs go first, then the manifest, then the name, so a failure never
// leaves a tag pointing at missing content:
//
//   - Registry: remote.Write, which uploads layers and config (mounting
//     layers that come from another repository of the same registry, as
//     *remote.MountableLayer from Open does) before it puts the manifest by
//     tag.
//   - OCI: the layout is created when DIR does not exist or is empty. The
//     blobs are written, then index.json gets an entry with
//     org.opencontainers.image.ref.name=TAG that replaces any entry with that
//     name, so a tag is never listed twice. Without a tag the entry has no
//     name and replaces an unnamed entry with the same digest. Each blob goes
//     to a temporary file, checked against its digest and linked to its name
//     (an existing blob is never rewritten, so the source's blobs are safe
//     when SRC and DST share a layout); index.json is replaced by a rename.
//     A run killed at any moment leaves a valid layout.
//   - DockerArchive: tarball.MultiRefWrite into a temporary file in FILE's
//     directory, renamed over FILE once complete: a failure leaves no partial
//     file, and a source archive at the same path is read, never written in
//     place. The image gets RepoTags [TAG], or none when no tag was given
//     (`docker load` then loads it untagged). The archive holds this image
//     only.
//
// A destination given by digest (host/repo@sha256:…, oci:DIR@sha256:…) is
// accepted only when it is img's digest. ctx cancels every write.
// Errors carry the reference: "writing oci:/x:tag: …".
func WriteImage(ctx context.Context, ref Ref, img v1.Image, o Options) (v1.Hash, error) {
	h, err := write(ctx, ref, image{img}, o)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing %s: %w", ref, err)
	}
	return h, nil
}

// WriteIndex writes idx to ref and returns its digest, as WriteImage does
// for an image: every child manifest and its blobs first, then the index,
// then the name. A docker-archive cannot hold an index: the error wraps
// ErrIndexUnsupported.
func WriteIndex(ctx context.Context, ref Ref, idx v1.ImageIndex, o Options) (v1.Hash, error) {
	h, err := write(ctx, ref, index{idx}, o)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing %s: %w", ref, err)
	}
	return h, nil
}

// written is what WriteImage or WriteIndex writes: an image or an index.
type written interface {
	manifest() remote.Taggable
	Digest() (v1.Hash, error)
}

type image struct{ v1.Image }

func (i image) manifest() remote.Taggable { return i.Image }

type index struct{ v1.ImageIndex }

func (i index) manifest() remote.Taggable { return i.ImageIndex }

func write(ctx context.Context, ref Ref, m written, o Options) (v1.Hash, error) {
	if err := ctx.Err(); err != nil {
		return v1.Hash{}, err
	}
	if _, isIndex := m.(index); isIndex && ref.Kind == DockerArchive {
		return v1.Hash{}, ErrIndexUnsupported
	}
	h, err := m.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	switch ref.Kind {
	case Registry:
		n, err := o.registryName(ref)
		if err != nil {
			return v1.Hash{}, err
		}
		if d, ok := n.(name.Digest); ok && d.DigestStr() != h.String() {
			return v1.Hash{}, fmt.Errorf("cannot write %s to a reference by digest %s", h, d.DigestStr())
		}
		err = push(ctx, n, m.manifest(), o)
		return h, o.registryError(ctx, n.Context(), o.retryPolicy().attemptsNote(err))
	case OCI:
		if ref.Digest != (v1.Hash{}) && ref.Digest != h {
			return v1.Hash{}, fmt.Errorf("cannot write %s to a reference by digest %s", h, ref.Digest)
		}
		return h, writeLayout(ctx, ref, h, m, o)
	case DockerArchive:
		return h, writeArchive(ctx, ref, h, m.(image).Image, o)
	}
	return v1.Hash{}, fmt.Errorf("%w: unknown kind %v", ErrInvalidReference, ref.Kind)
}

// push writes an image or an index with remote.Push. ggcr closes the
// channel given to remote.WithProgress when it is done, so updates go
// through a channel of our own to o.Progress, which stays open.
func push(ctx context.Context, n name.Reference, t remote.Taggable, o Options) error {
	opts := o.remoteOptions(ctx)
	if o.Jobs > 0 {
		opts = append(opts, remote.WithJobs(o.Jobs))
	}
	if o.Progress != nil {
		updates := make(chan v1.Update)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for u := range updates {
				o.Progress <- u
			}
		}()
		// remote.Push closes updates before it returns, whatever the outcome,
		// once its option processing succeeded, which ours always does.
		defer func() { <-done }()
		opts = append(opts, remote.WithProgress(updates))
	}
	return remote.Push(n, t, opts...)
}

// writeLayout writes m's blobs into the layout at ref.Path, then its
// index.json entry (see ocilayout.go for how a killed run is survived).
func writeLayout(ctx context.Context, ref Ref, h v1.Hash, m written, o Options) error {
	w, err := openLayoutForWrite(ctx, ref.Path, o.Jobs)
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
		return d.Digest == h && d.Annotations[refNameAnnotation] == ""
	}
	if ref.Tag != "" {
		if desc.Annotations == nil {
			desc.Annotations = map[string]string{}
		}
		desc.Annotations[refNameAnnotation] = ref.Tag
		matcher = match.Name(ref.Tag)
	}
	return w.setIndexEntry(*desc, matcher)
}

func writeArchive(ctx context.Context, ref Ref, h v1.Hash, img v1.Image, o Options) (err error) {
	var r name.Reference
	if ref.Tag != "" {
		r, err = name.NewTag(ref.Tag)
	} else {
		r, err = name.NewDigest(untaggedArchiveRepo + "@" + h.String())
	}
	if err != nil {
		return err
	}
	perm := fs.FileMode(0o644)
	if fi, err := os.Stat(ref.Path); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("%s is a directory", ref.Path)
		}
		perm = fi.Mode().Perm()
	}

	f, err := os.CreateTemp(filepath.Dir(ref.Path), "."+filepath.Base(ref.Path)+".*.tmp")
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
	if o.Progress != nil {
		opts = append(opts, tarball.WithProgress(o.Progress))
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
	if err := os.Rename(f.Name(), ref.Path); err != nil {
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
