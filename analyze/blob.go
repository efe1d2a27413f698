package analyze

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/layerslim/layerslim/internal/blob"
	"github.com/layerslim/layerslim/internal/imagewalk"
)

// ErrDigestMismatch is wrapped by the error for a blob or an uncompressed
// layer whose bytes do not hash to the digest that names it.
var ErrDigestMismatch = blob.ErrDigestMismatch

// openBlob is an open compressed layer blob.
type openBlob struct {
	r      io.Reader
	finish func() error // drains and verifies
	close  func() error
}

// openDirect streams the blob from its source, verifying it on the way.
func openDirect(ctx context.Context, in imagewalk.Layer) (*openBlob, error) {
	rc, err := in.Layer.Compressed()
	if err != nil {
		return nil, fmt.Errorf("opening blob: %w", err)
	}
	v := blob.NewReader(ctx, rc, in.Desc.Digest, in.Desc.Size, nil)
	return &openBlob{
		r:      v,
		finish: v.Finish,
		close:  rc.Close,
	}, nil
}

// openFile reads a blob that download verified.
func openFile(ctx context.Context, name string) (*openBlob, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	v := blob.NewReader(ctx, bufio.NewReaderSize(f, 1<<20), v1.Hash{}, 0, nil)
	return &openBlob{
		r:      v,
		finish: v.Finish,
		close:  f.Close,
	}, nil
}

// download copies the blob of in into a new file in dir, verified, and
// returns the file's name.
func download(ctx context.Context, in imagewalk.Layer, dir string) (string, error) {
	b, err := openDirect(ctx, in)
	if err != nil {
		return "", err
	}
	defer b.close()
	f, err := os.CreateTemp(dir, "blob-*")
	if err != nil {
		return "", err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	_, err = io.Copy(bw, b.r)
	if err == nil {
		err = b.finish()
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

type fetched struct {
	name string
	err  error
}

// prefetcher downloads the blobs below the layer being walked, top down,
// at most jobs-1 of them on disk at once.
type prefetcher struct {
	g     *errgroup.Group
	ctx   context.Context
	slots []chan fetched // per layer; nil for layers read directly
	sem   chan struct{}
}

// startPrefetch begins downloading the layers of ins below the top one.
// The top layer, and layers that are not read, get no slot.
func startPrefetch(ctx context.Context, ins []imagewalk.Layer, skip func(int) bool, jobs int, dir string) *prefetcher {
	g, gctx := errgroup.WithContext(ctx)
	p := &prefetcher{g: g, ctx: gctx, slots: make([]chan fetched, len(ins)), sem: make(chan struct{}, jobs-1)}
	var todo []int
	for i := len(ins) - 2; i >= 0; i-- {
		if !skip(i) {
			p.slots[i] = make(chan fetched, 1)
			todo = append(todo, i)
		}
	}
	g.Go(func() error {
		for _, i := range todo {
			select {
			case p.sem <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			g.Go(func() error {
				name, err := download(gctx, ins[i], dir)
				p.slots[i] <- fetched{name: name, err: err}
				return err
			})
		}
		return nil
	})
	return p
}

// open returns layer i's blob: from its download when it has a slot.
func (p *prefetcher) open(ctx context.Context, i int, in imagewalk.Layer) (*openBlob, error) {
	if p == nil || p.slots[i] == nil {
		return openDirect(ctx, in)
	}
	var f fetched
	select {
	case f = <-p.slots[i]:
	case <-p.ctx.Done():
		// The download failed before this layer's began, or the walk was
		// cancelled: report why.
		if err := p.g.Wait(); err != nil {
			return nil, err
		}
		return nil, ctx.Err()
	}
	if f.err != nil {
		return nil, f.err
	}
	b, err := openFile(ctx, f.name)
	if err != nil {
		os.Remove(f.name)
		<-p.sem
		return nil, err
	}
	closeFile := b.close
	b.close = func() error {
		err := closeFile()
		os.Remove(f.name)
		<-p.sem
		return err
	}
	return b, nil
}
