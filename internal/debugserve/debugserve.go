// Package debugserve answers the debuginfod HTTP API (elfutils'
// debuginfod(8): /buildid/ID/debuginfo and /buildid/ID/executable) from the
// debug images that rewrite writes, read straight from registries and OCI
// layouts.
//
// A debug image is its slim image plus one layer of
// usr/lib/debug/.build-id/xx/rest.debug files, so the build-ids of its debug
// files are in that layer's tar headers: indexing reads the headers, not the
// files. The index and the files served are kept on disk under a cache
// directory, so a restart reads no layer again and memory stays bounded
// whatever the number of images. Executables (the stripped files, from the
// image's other layers, which are the slim image's) are indexed when first
// asked for, by reading the GNU build-id note at the start of each ELF file.
package debugserve

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/layerslim/layerslim/internal/blob"
	"github.com/layerslim/layerslim/internal/ctxtime"
	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/imagewalk"
	"github.com/layerslim/layerslim/internal/limit"
	"github.com/layerslim/layerslim/internal/whiteout"
	"github.com/layerslim/layerslim/manifest"
)

// Defaults of Options.
const (
	DefaultCacheSize   int64 = 1 << 30
	DefaultRefresh           = 5 * time.Minute
	DefaultDebugSuffix       = "-debug"
	defaultJobs              = 4
	// fetchTimeout bounds the work shared by the requests waiting for one file.
	fetchTimeout = 10 * time.Minute
)

// Options configure a Server.
type Options struct {
	// CacheDir holds the index and the cached files; required.
	CacheDir string
	// CacheSize bounds the bytes of the files cached; 0 means DefaultCacheSize.
	CacheSize int64
	// Refresh is how often sources are listed again; 0 means DefaultRefresh,
	// a negative value never.
	Refresh time.Duration
	// DebugSuffix is the tag suffix of debug images, for sources that name
	// a repository or a whole OCI layout; "" means DefaultDebugSuffix.
	DebugSuffix string
	// Registry are the options of registry reads.
	Registry imageref.Options
	// Jobs is how many images are indexed at once; 0 means 4.
	Jobs int
	// Logger hears of indexing and of failures; nil means none.
	Logger *slog.Logger
	// ShutdownTimeout is how long Serve waits, once its context is done,
	// for responses still being written; 0 means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
}

// DefaultShutdownTimeout is Options.ShutdownTimeout's default.
const DefaultShutdownTimeout = 10 * time.Second

// Source is one place debug images are served from.
type Source struct {
	// Ref is a debug image or index, or an OCI layout without a tag.
	Ref imageref.Ref
	// Repo, when set, is a registry repository: every tag ending in the
	// debug suffix. Ref is then unset.
	Repo *name.Repository
}

// ParseSource parses a REF of debug serve: HOST/REPO:TAG, HOST/REPO@DIGEST
// or oci:DIR:TAG (a debug image or index), oci:DIR (every tag of the layout
// ending in the debug suffix) or HOST/REPO (every such tag of the
// repository). insecure allows plain HTTP.
func ParseSource(s string, insecure bool) (Source, error) {
	if !strings.HasPrefix(s, "oci:") && !strings.HasPrefix(s, "docker-archive:") {
		var opts []name.Option
		if insecure {
			opts = append(opts, name.Insecure)
		}
		// A repository has no tag or digest; name.NewRepository refuses both.
		if r, err := name.NewRepository(strings.TrimPrefix(s, "docker://"), append(opts, name.StrictValidation)...); err == nil {
			return Source{Repo: &r}, nil
		}
	}
	ref, err := imageref.Parse(s, insecure)
	if err != nil {
		return Source{}, err
	}
	if ref.Kind == imageref.DockerArchive {
		return Source{}, fmt.Errorf("%w %q: serve from a registry or an OCI layout (oci:DIR), not a docker-archive", imageref.ErrInvalidReference, s)
	}
	return Source{Ref: ref}, nil
}

func (s Source) String() string {
	if s.Repo != nil {
		return s.Repo.String()
	}
	return s.Ref.String()
}

// Server indexes debug images and answers debuginfod requests. Create it
// with New; it is an http.Handler.
type Server struct {
	o       Options
	sources []Source
	log     *slog.Logger
	idx     *index
	cache   *fileCache
	m       *metrics

	flight singleflight.Group

	mu   sync.Mutex
	seen map[string]v1.Hash // name of a source's tag → digest fully indexed
}

// New opens (or creates) the cache directory and returns a server of
// sources. It reads no source: Refresh and Serve do.
func New(sources []Source, o Options) (*Server, error) {
	if o.CacheDir == "" {
		return nil, errors.New("debugserve: no cache directory")
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.CacheSize < 0 {
		return nil, fmt.Errorf("debugserve: cache size %d is negative", o.CacheSize)
	}
	if o.Refresh == 0 {
		o.Refresh = DefaultRefresh
	}
	if o.DebugSuffix == "" {
		o.DebugSuffix = DefaultDebugSuffix
	}
	if o.Jobs <= 0 {
		o.Jobs = defaultJobs
	}
	lg := o.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	idx, err := openIndex(o.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("opening the index in %s: %w", o.CacheDir, err)
	}
	c, err := openCache(filepath.Join(o.CacheDir, "files"), o.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("opening the file cache in %s: %w", o.CacheDir, err)
	}
	s := &Server{o: o, sources: slices.Clone(sources), log: lg, idx: idx, cache: c, seen: map[string]v1.Hash{}}
	s.m = newMetrics(s)
	return s, nil
}

// Serve answers requests on ln until ctx is done, refreshing the index at
// once and then every Options.Refresh. Failures to read a source are
// logged and tried again at the next refresh: the images indexed before
// are still served.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	rctx, stop := context.WithCancel(ctx)
	refreshed := make(chan struct{})
	go func() {
		defer close(refreshed)
		s.refreshLoop(rctx)
	}()
	// Return only once the index is no longer written to.
	defer func() {
		stop()
		<-refreshed
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	wait := s.o.ShutdownTimeout
	if wait <= 0 {
		wait = DefaultShutdownTimeout
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wait)
	defer cancel()
	return hs.Shutdown(sctx)
}

func (s *Server) refreshLoop(ctx context.Context) {
	for {
		if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("refreshing the index", "err", err)
		}
		if s.o.Refresh < 0 {
			return
		}
		if ctxtime.Sleep(ctx, s.o.Refresh) != nil {
			return
		}
	}
}

// Refresh lists the sources again and indexes the debug images not indexed
// yet. It goes on past a failing source or image and returns the failures
// joined.
func (s *Server) Refresh(ctx context.Context) error {
	var errs []error
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.o.Jobs)
	var emu sync.Mutex
	fail := func(err error) {
		s.m.refreshErrors.Add(1)
		emu.Lock()
		errs = append(errs, err)
		emu.Unlock()
	}
	for _, src := range s.sources {
		refs, err := s.list(ctx, src)
		if err != nil {
			fail(fmt.Errorf("listing %s: %w", src, err))
			continue
		}
		for _, ref := range refs {
			g.Go(func() error {
				if err := s.indexRef(gctx, ref); err != nil {
					fail(err)
				}
				return nil
			})
		}
	}
	g.Wait()
	s.m.refreshes.Add(1)
	return errors.Join(errs...)
}

// list returns the debug images or indexes a source names.
func (s *Server) list(ctx context.Context, src Source) ([]imageref.Ref, error) {
	switch {
	case src.Repo != nil:
		tags, err := remote.List(*src.Repo, s.o.Registry.RemoteOptions(ctx)...)
		if err != nil {
			return nil, err
		}
		var out []imageref.Ref
		for _, t := range tags {
			if strings.HasSuffix(t, s.o.DebugSuffix) {
				out = append(out, imageref.Ref{Kind: imageref.Registry, Name: src.Repo.Tag(t)})
			}
		}
		return out, nil
	case src.Ref.Kind == imageref.OCI && src.Ref.Tag == "" && src.Ref.Digest == (v1.Hash{}):
		lp, err := layout.FromPath(src.Ref.Path)
		if err != nil {
			return nil, err
		}
		root, err := lp.ImageIndex()
		if err != nil {
			return nil, err
		}
		im, err := root.IndexManifest()
		if err != nil {
			return nil, err
		}
		var out []imageref.Ref
		for _, d := range im.Manifests {
			n := d.Annotations["org.opencontainers.image.ref.name"]
			if strings.HasSuffix(n, s.o.DebugSuffix) {
				// index.json may name a tag "HOST/REPO:TAG"; Open finds it by either.
				out = append(out, imageref.Ref{Kind: imageref.OCI, Path: src.Ref.Path, Tag: n[strings.LastIndex(n, ":")+1:]})
			}
		}
		return out, nil
	}
	return []imageref.Ref{src.Ref}, nil
}

// indexRef indexes the debug image or index ref names, unless its digest
// is the one indexed last time.
func (s *Server) indexRef(ctx context.Context, ref imageref.Ref) error {
	key := ref.String()
	if ref.Kind == imageref.Registry {
		if _, isTag := ref.Name.(name.Tag); isTag {
			n, opts, err := s.o.Registry.Remote(ctx, ref)
			if err != nil {
				return err
			}
			d, err := remote.Head(n, opts...)
			if err != nil {
				return fmt.Errorf("reading %s: %w", ref, err)
			}
			s.mu.Lock()
			same := s.seen[key] == d.Digest
			s.mu.Unlock()
			if same {
				return nil
			}
		}
	}
	src, err := imageref.Open(ctx, ref, s.o.Registry)
	if err != nil {
		return err
	}
	var rec imageRecord
	rec.Name = key
	if ref.Kind == imageref.Registry {
		n, _, err := s.o.Registry.Remote(ctx, ref)
		if err != nil {
			return err
		}
		rec.Repo = n.Context().Name()
	} else {
		rec.Layout = ref.Path
	}
	if src.Image != nil {
		if err := s.indexImage(ctx, rec, src.Descriptor.Digest, src.Image); err != nil {
			return err
		}
	} else {
		im, err := src.Index.IndexManifest()
		if err != nil {
			return fmt.Errorf("reading %s: %w", ref, err)
		}
		for _, d := range im.Manifests {
			if !imagewalk.IsImage(d) {
				continue
			}
			img, err := src.Index.Image(d.Digest)
			if err != nil {
				return fmt.Errorf("reading %s: %s: %w", ref, d.Digest, err)
			}
			r := rec
			if d.Platform != nil {
				r.Name = key + " " + d.Platform.String()
			}
			if err := s.indexImage(ctx, r, d.Digest, img); err != nil {
				return err
			}
		}
	}
	s.mu.Lock()
	s.seen[key] = src.Descriptor.Digest
	s.mu.Unlock()
	return nil
}

// indexImage indexes the debug files of img, whose manifest has digest d.
func (s *Server) indexImage(ctx context.Context, rec imageRecord, d v1.Hash, img v1.Image) error {
	if s.idx.hasImage(d) {
		return nil
	}
	if _, ok := sha256Hex(d); !ok {
		return fmt.Errorf("%s: manifest digest %s is not sha256", rec.Name, d)
	}
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("reading %s: %w", rec.Name, err)
	}
	rec.Digest = d
	rec.DebugFor = m.Annotations[manifest.AnnotationDebugFor]
	if m.Subject != nil {
		rec.Subject = m.Subject.Digest.String()
	}
	for _, l := range m.Layers {
		if _, ok := sha256Hex(l.Digest); !ok {
			return fmt.Errorf("%s: layer digest %s is not sha256", rec.Name, l.Digest)
		}
		rec.Layers = append(rec.Layers, layerRecord{Digest: l.Digest, Size: l.Size})
	}
	if len(rec.Layers) == 0 {
		return fmt.Errorf("%s: no layers: is it a debug image?", rec.Name)
	}
	start := time.Now()
	dl := rec.Layers[len(rec.Layers)-1]
	files, err := s.scan(ctx, &rec, dl, kindDebuginfo)
	if err != nil {
		return err
	}
	if err := s.idx.add(kindDebuginfo, d, dl.Digest, files); err != nil {
		return fmt.Errorf("indexing %s: %w", rec.Name, err)
	}
	if err := s.idx.putImage(&rec); err != nil {
		return fmt.Errorf("indexing %s: %w", rec.Name, err)
	}
	if len(files) == 0 {
		s.log.Warn("no debug files in the last layer: is it a debug image?", "image", rec.Name, "digest", d)
	}
	s.log.Info("indexed", "image", rec.Name, "digest", d, "debugFiles", len(files), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// scan returns the files of kind in layer l of rec: the debug files named
// by build-id, or the ELF files with a build-id. A layer is read once for
// each kind, whatever the number of images it is in.
func (s *Server) scan(ctx context.Context, rec *imageRecord, l layerRecord, kind string) ([]file, error) {
	if files, ok, err := s.idx.scanned(l.Digest, kind); ok || err != nil {
		return files, err
	}
	v, err, _ := s.flight.Do("scan "+kind+" "+l.Digest.String(), func() (any, error) {
		if files, ok, err := s.idx.scanned(l.Digest, kind); ok || err != nil {
			return files, err
		}
		s.m.layerScans.Add(1)
		var files []file
		err := s.walk(ctx, rec, l, false, func(p string, h *tar.Header, r io.Reader) (bool, error) {
			if h.Typeflag != tar.TypeReg {
				return false, nil
			}
			switch kind {
			case kindDebuginfo:
				if id, ok := debugPathBuildID(p); ok {
					files = append(files, file{BuildID: id, Path: p, Size: h.Size})
				}
			case kindExecutable:
				if h.Size >= 52 && !strings.HasPrefix(p, debugDir) {
					if id := noteBuildID(r); id != "" {
						files = append(files, file{BuildID: id, Path: p, Size: h.Size})
					}
				}
			}
			return false, nil
		})
		if err != nil {
			return nil, err
		}
		if err := s.idx.putScan(l.Digest, kind, files); err != nil {
			return nil, err
		}
		return files, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]file), nil
}

// walk reads layer l of rec, calling fn for each entry with its clean
// path; fn returning true stops calling it. A blob read from its source is
// read to its end, to check its digest, and with keep it is then cached
// (when it fits): the next file asked for from that layer needs no read of
// the source, and a blob from the cache was checked when it was cached. The
// error names image and layer.
func (s *Server) walk(ctx context.Context, rec *imageRecord, l layerRecord, keep bool, fn func(p string, h *tar.Header, r io.Reader) (bool, error)) error {
	bkey := cacheKey("blob", l.Digest.String())
	var keepTo *os.File
	err := func() error {
		var rc io.ReadCloser
		checked := false
		if f := s.cache.open(bkey); f != nil {
			s.m.blobHits.Add(1)
			rc, checked = f, true
		} else {
			s.m.layerReads.Add(1)
			var err error
			if rc, err = s.openBlob(ctx, rec, l.Digest); err != nil {
				return err
			}
			if keep && l.Size > 0 && s.cache.fits(l.Size) {
				if keepTo, err = s.cache.temp(); err != nil {
					rc.Close()
					return err
				}
				rc = teeCloser{io.TeeReader(rc, keepTo), rc}
			}
		}
		b, err := blob.OpenReader(ctx, rc, v1.Descriptor{Digest: l.Digest, Size: l.Size}, nil)
		if err != nil {
			return err
		}
		defer b.Close()
		n := limit.DefaultMaxLayerSize
		tr := tar.NewReader(limit.Reader(b.Tar, n, limit.Layer(n)))
		done := false
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				return b.Blob.Finish()
			}
			if err != nil {
				return err
			}
			if done {
				continue
			}
			p := whiteout.Clean(h.Name)
			if done, err = fn(p, h, tr); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if done && checked {
				return nil
			}
		}
	}()
	if keepTo != nil {
		name := keepTo.Name()
		if cerr := keepTo.Close(); err == nil && cerr == nil {
			err = s.cache.put(bkey, name, l.Size)
		} else {
			os.Remove(name)
		}
	}
	if err != nil {
		return fmt.Errorf("reading %s layer %s: %w", rec.where(), l.Digest, err)
	}
	return nil
}

type teeCloser struct {
	io.Reader
	io.Closer
}

// openBlob opens the blob h of rec's image where it was found.
func (s *Server) openBlob(ctx context.Context, rec *imageRecord, h v1.Hash) (io.ReadCloser, error) {
	if rec.Layout != "" {
		return layout.Path(rec.Layout).Blob(h)
	}
	var opts []name.Option
	if s.o.Registry.Insecure {
		opts = append(opts, name.Insecure)
	}
	d, err := name.NewDigest(rec.Repo+"@"+h.String(), opts...)
	if err != nil {
		return nil, err
	}
	l, err := remote.Layer(d, s.o.Registry.RemoteOptions(ctx)...)
	if err != nil {
		return nil, err
	}
	return l.Compressed()
}

// errNotInLayer: the index named a file its layer does not hold.
var errNotInLayer = errors.New("not in the layer")

// fetch returns the file at loc, from the cache or from its layer (and
// then caches it). The caller closes the file; remove, when not nil,
// removes a file too big to be cached, after the response.
func (s *Server) fetch(ctx context.Context, loc location) (f *os.File, remove func(), err error) {
	key := cacheKey(loc.Layer.String(), loc.Path)
	if f := s.cache.open(key); f != nil {
		s.m.hits.Add(1)
		return f, nil, nil
	}
	s.m.misses.Add(1)
	rec, err := s.idx.image(loc.Image)
	if err != nil {
		return nil, nil, err
	}
	var l layerRecord
	for _, x := range rec.Layers {
		if x.Digest == loc.Layer {
			l = x
		}
	}
	uncached := func() (*os.File, func(), error) {
		tmp, err := s.extract(ctx, rec, l, loc)
		if err != nil {
			return nil, nil, err
		}
		f, err := os.Open(tmp)
		if err != nil {
			os.Remove(tmp)
			return nil, nil, err
		}
		return f, func() { os.Remove(tmp) }, nil
	}
	if !s.cache.fits(loc.Size) {
		return uncached()
	}
	// Concurrent requests for one file share one read of its layer, which
	// goes on when the request that started it goes away.
	_, err, _ = s.flight.Do("file "+key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		defer cancel()
		tmp, err := s.extract(fctx, rec, l, loc)
		if err != nil {
			return nil, err
		}
		return nil, s.cache.put(key, tmp, loc.Size)
	})
	if err != nil {
		return nil, nil, err
	}
	if f := s.cache.open(key); f != nil {
		return f, nil, nil
	}
	// Evicted at once by a burst of other files: this request takes its
	// own copy.
	return uncached()
}

// extract copies the file at loc out of layer l into a temporary file of
// the cache directory and returns its name, once the whole blob checked.
func (s *Server) extract(ctx context.Context, rec *imageRecord, l layerRecord, loc location) (string, error) {
	if l.Size > 0 && s.cache.fits(l.Size) {
		// Requests for several files of one layer share one read of it:
		// the blob goes to the cache, the files come out of the copy.
		_, err, _ := s.flight.Do("blob "+l.Digest.String(), func() (any, error) {
			if f := s.cache.open(cacheKey("blob", l.Digest.String())); f != nil {
				return nil, f.Close()
			}
			return nil, s.walk(ctx, rec, l, true, func(string, *tar.Header, io.Reader) (bool, error) { return true, nil })
		})
		if err != nil {
			return "", err
		}
	}
	tmp, err := s.cache.temp()
	if err != nil {
		return "", err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	found := false
	var n int64
	err = s.walk(ctx, rec, l, false, func(p string, h *tar.Header, r io.Reader) (bool, error) {
		if p != loc.Path || h.Typeflag != tar.TypeReg {
			return false, nil
		}
		found = true
		n, err = io.Copy(tmp, r)
		return true, err
	})
	if err != nil {
		return "", err
	}
	if !found {
		return "", fmt.Errorf("%s: %s in layer %s: %w", rec.where(), loc.Path, loc.Layer, errNotInLayer)
	}
	if n != loc.Size {
		return "", fmt.Errorf("%s: %s in layer %s has %d bytes, the index says %d", rec.where(), loc.Path, loc.Layer, n, loc.Size)
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	ok = true
	return tmp.Name(), nil
}

// locate returns the locations of build-id id for kind. Executables are
// indexed here, the first time one of the images holding id's debug file
// is asked for one.
func (s *Server) locate(ctx context.Context, id, kind string) ([]location, error) {
	locs, err := s.idx.lookup(id)
	if err != nil {
		return nil, err
	}
	out := ofKind(locs, kind)
	if len(out) > 0 || kind != kindExecutable {
		return out, nil
	}
	var errs []error
	for _, l := range ofKind(locs, kindDebuginfo) {
		rec, err := s.idx.image(l.Image)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, lr := range rec.Layers[:len(rec.Layers)-1] {
			files, err := s.scan(ctx, rec, lr, kindExecutable)
			if err == nil {
				err = s.idx.add(kindExecutable, rec.Digest, lr.Digest, files)
			}
			if err != nil && !isGone(err) { // an image gone holds nothing
				errs = append(errs, err)
			}
		}
		locs, err := s.idx.lookup(id)
		if err != nil {
			return nil, err
		}
		if out = ofKind(locs, kind); len(out) > 0 {
			return out, nil
		}
	}
	return nil, errors.Join(errs...)
}

func ofKind(locs []location, kind string) []location {
	var out []location
	for _, l := range locs {
		if l.Kind == kind {
			out = append(out, l)
		}
	}
	return out
}
