package registry

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/layerslim/layerslim/internal/imageref/refio"
	"github.com/layerslim/layerslim/internal/registryclient"
)

// Open reads, and never writes, what n names: remote.Get, then an image or
// an index by media type, whose layers read later use ctx too and are
// fetched through one shared remote.Puller (see image.go). Errors are
// explained by registryclient (Options.Explain).
func Open(ctx context.Context, n name.Reference, c registryclient.Options) (desc v1.Descriptor, img v1.Image, idx v1.ImageIndex, err error) {
	rd, err := remote.Get(n, c.RemoteOptions(ctx)...)
	if err != nil {
		return desc, nil, nil, c.Explain(ctx, n.Context(), err)
	}
	desc = rd.Descriptor
	puller, err := remote.NewPuller(c.RemoteOptions(ctx)...)
	if err != nil {
		return desc, nil, nil, err
	}
	switch mt := desc.MediaType; {
	case mt.IsIndex():
		idx, err = rd.ImageIndex()
		if err == nil {
			idx = &registryIndex{inner: idx, ctx: ctx, repo: n.Context(), puller: puller}
		}
	case mt.IsImage():
		img, err = rd.Image()
		if err == nil {
			img, err = newRegistryImage(ctx, img, n.Context(), puller)
		}
	default:
		err = fmt.Errorf("%w %q", refio.ErrUnsupportedMediaType, mt)
	}
	if err != nil {
		return desc, nil, nil, err
	}
	return desc, img, idx, nil
}

// Write writes an image or an index to n with remote.Push, which uploads
// layers and config (mounting layers that come from another repository of
// the same registry, as the *remote.MountableLayer of Open do) before it
// puts the manifest by tag. jobs is how many blobs are uploaded at once (0
// or less: ggcr's default). progress, when not nil, receives the push's
// progress and is not closed. Errors say how many attempts were made and
// are explained by registryclient.
func Write(ctx context.Context, n name.Reference, t remote.Taggable, c registryclient.Options, jobs int, progress chan<- v1.Update) error {
	return c.Explain(ctx, n.Context(), c.AttemptsNote(push(ctx, n, t, c, jobs, progress)))
}

// push writes an image or an index with remote.Push. ggcr closes the
// channel given to remote.WithProgress when it is done, so updates go
// through a channel of our own to progress, which stays open.
func push(ctx context.Context, n name.Reference, t remote.Taggable, c registryclient.Options, jobs int, progress chan<- v1.Update) error {
	opts := c.RemoteOptions(ctx)
	if jobs > 0 {
		opts = append(opts, remote.WithJobs(jobs))
	}
	if progress != nil {
		updates := make(chan v1.Update)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for u := range updates {
				progress <- u
			}
		}()
		// remote.Push closes updates before it returns, whatever the outcome,
		// once its option processing succeeded, which ours always does.
		defer func() { <-done }()
		opts = append(opts, remote.WithProgress(updates))
	}
	return remote.Push(n, t, opts...)
}
