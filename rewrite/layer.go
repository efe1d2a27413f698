package rewrite

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/internal/blob"
	"github.com/layerslim/layerslim/internal/imagewalk"
	"github.com/layerslim/layerslim/internal/iocount"
	"github.com/layerslim/layerslim/internal/whiteout"
	"github.com/layerslim/layerslim/tarfilter"
)

// ErrDigestMismatch is returned when a blob's bytes do not hash to the digest
// that names it.
var ErrDigestMismatch = blob.ErrDigestMismatch

// ErrUnsupportedMediaType is returned for a layer of a media type layerslim
// does not know (analyze returns the same error).
var ErrUnsupportedMediaType = imagewalk.ErrUnsupportedMediaType

// layerOut is the result for one distinct source layer.
type layerOut struct {
	layer  v1.Layer // the output blob, media type still in the source's family
	report LayerReport
	debug  []DebugFile // split out of the layer's ELF files
	// links are the hardlinks the output keeps (clean name → clean
	// target), when known: a cached or merged output leaves them unknown.
	links      map[string]string
	linksKnown bool
}

func closeDebug(ds []DebugFile) {
	for _, d := range ds {
		d.Close()
	}
}

// processLayerPass is one pass of a source layer through the pipeline:
//
//	Compressed → verify digest → detect codec → decompress → [tar filters] →
//	hash diffID → compress → hash digest → spool file
//
// The source is read once (twice when its whiteouts come after entries
// beside them, or a kept hardlink's target is dropped: see processLayer;
// once more when it links to a name a lower layer dropped as a link: see
// dropChainedLinks). A layer already in the target codec that no filter
// changed is returned as it is.
func processLayerPass(ctx context.Context, in imagewalk.Layer, o *options, platform string, paths map[string]bool, order *layerPass) (layerOut, error) {
	start := time.Now()
	rep := LayerReport{Source: Blob{Digest: in.Desc.Digest, Size: in.Desc.Size, MediaType: in.Desc.MediaType, DiffID: in.DiffID}}
	o.reporter.Report(Event{Kind: LayerStarted, Platform: platform, Digest: in.Desc.Digest, Size: in.Desc.Size})

	src, err := blob.Open(ctx, in.Layer, in.Desc, func(n int64) {
		o.reporter.Report(Event{Kind: LayerProgress, Platform: platform, Digest: in.Desc.Digest, Bytes: n})
	})
	if err != nil {
		return layerOut{}, err
	}
	defer src.Close()
	codec := src.Codec
	rep.Source.Codec = codec

	reuse := func() (layerOut, error) {
		rep.Action = Reused
		rep.Output = rep.Source
		rep.Duration = time.Since(start)
		o.reporter.Report(Event{Kind: LayerDone, Platform: platform, Digest: in.Desc.Digest, Layer: &rep})
		return layerOut{layer: in.Layer, report: rep}, nil
	}
	if !o.tarPass() && codec == o.codec && !o.force && !o.reencode() {
		return reuse()
	}

	sp, err := newSpool(o)
	if err != nil {
		return layerOut{}, err
	}
	ok := false
	defer func() {
		if !ok {
			sp.discard()
		}
	}()

	changed := false
	counted := &iocount.Reader{R: o.layerReader(src.Tar)}
	var debug []DebugFile
	var links map[string]string // nil: the layer was copied as it is
	defer func() {
		if !ok {
			closeDebug(debug)
		}
	}()
	if !o.tarPass() {
		if _, err := io.Copy(sp.tar, counted); err != nil {
			return layerOut{}, readErr(codec, err)
		}
	} else {
		changes := &changeList{}
		links = map[string]string{}
		f := order.wrap(tarfilter.Chain(o.chain(changes, paths, func(d DebugFile) { debug = append(debug, d) }), recordLinks(links)))
		st, err := tarfilter.CopyLimit(ctx, counted, sp.tar, f, o.maxLayer())
		if err != nil {
			return layerOut{}, readErr(codec, err)
		}
		if order.again(changes.changes) {
			return layerOut{}, errAgain
		}
		changed = st.Changed
		rep.Changes = changes.changes
		rep.Empty = changed && st.EntriesOut == 0
	}
	// Read what is left of the blob (a compressed stream's end may not be
	// read by its decoder) so that the digest covers every byte.
	if err := src.Blob.Finish(); err != nil {
		return layerOut{}, err
	}
	rep.Source.Size = src.Blob.N()
	rep.UncompressedBytes = counted.N
	diffID := sp.diffID()
	if !changed && in.DiffID.Hex != "" {
		if err := blob.CheckDiffID(diffID, in.DiffID); err != nil {
			return layerOut{}, err
		}
	}
	if !changed && codec == o.codec && !o.force && !o.reencode() {
		if links == nil {
			return reuse()
		}
		out, err := reuse()
		out.links, out.linksKnown = links, true
		return out, err
	}

	out, err := sp.close(diffID)
	if err != nil {
		return layerOut{}, err
	}
	ok = true
	rep.Action = Recompressed
	if changed {
		rep.Action = Rewritten
	}
	rep.Output = Blob{Digest: out.digest, Size: out.size, MediaType: out.mediaType, Codec: o.codec, DiffID: diffID}
	rep.Duration = time.Since(start)
	o.reporter.Report(Event{Kind: LayerDone, Platform: platform, Digest: in.Desc.Digest, Layer: &rep})
	return layerOut{layer: out, report: rep, debug: debug, links: links, linksKnown: links != nil}, nil
}

func readErr(codec compress.Codec, err error) error {
	var te *tarfilter.TarError
	if errors.As(err, &te) || errors.Is(err, ErrLimitExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if codec == compress.None {
		return fmt.Errorf("reading: %w", err)
	}
	return err // the decompressor's errors say "decompressing <codec>"
}

type hashWriter struct {
	w io.Writer
	h hash.Hash
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	return n, err
}

// outSpool compresses into a temporary file, hashing and counting the
// compressed bytes on their way. The layer's tar is written to tar, which
// hashes it into the diff_id.
type outSpool struct {
	tar   *hashWriter
	f     *os.File
	bw    *bufio.Writer
	out   *hashWriter
	count *iocount.Writer
	enc   io.WriteCloser
	codec compress.Codec
	oci   bool
	alt   *outSpool // the added compression's, with WithAddCompression
}

func newSpool(o *options) (*outSpool, error) {
	f, err := os.CreateTemp(o.tempDir, "layerslim-layer-*")
	if err != nil {
		return nil, fmt.Errorf("creating spool file: %w", err)
	}
	s := &outSpool{f: f, bw: bufio.NewWriterSize(f, 1<<20), codec: o.codec}
	s.count = &iocount.Writer{W: s.bw}
	s.out = &hashWriter{w: s.count, h: sha256.New()}
	s.enc, err = newEncoder(s.out, o)
	if err != nil {
		s.discard()
		return nil, err
	}
	if err := s.addVariant(o); err != nil {
		s.discard()
		return nil, err
	}
	s.tar = &hashWriter{w: s.enc, h: sha256.New()}
	return s, nil
}

// diffID is the digest of the tar written so far.
func (s *outSpool) diffID() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", s.tar.h.Sum(nil))}
}

// close finishes the stream, in order: encoder frame, buffer, file.
func (s *outSpool) close(diffID v1.Hash) (*spooledLayer, error) {
	if err := s.enc.Close(); err != nil {
		return nil, fmt.Errorf("compressing: %w", err)
	}
	if err := s.bw.Flush(); err != nil {
		return nil, fmt.Errorf("writing spool file: %w", err)
	}
	if err := s.f.Close(); err != nil {
		return nil, fmt.Errorf("writing spool file: %w", err)
	}
	mt, err := compress.LayerMediaType(s.codec, true)
	if err != nil {
		return nil, err
	}
	l := &spooledLayer{
		path:      s.f.Name(),
		digest:    v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", s.out.h.Sum(nil))},
		diffID:    diffID,
		size:      s.count.N,
		mediaType: mt,
		codec:     s.codec,
	}
	l.annotations = encoderAnnotations(s.enc)
	if s.alt != nil {
		if l.alt, err = s.alt.close(diffID); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (s *outSpool) discard() {
	if s.enc != nil {
		s.enc.Close()
	}
	s.f.Close()
	os.Remove(s.f.Name())
	if s.alt != nil {
		s.alt.discard()
	}
}

// spooledLayer is an output layer kept in a temporary file, with its digests
// computed as it was written.
type spooledLayer struct {
	path      string
	digest    v1.Hash
	diffID    v1.Hash
	size      int64
	mediaType types.MediaType
	codec     compress.Codec
	alt       *spooledLayer // the same layer in the added compression
	// annotations go on the layer's descriptor (zstd:chunked's).
	annotations map[string]string
}

var _ v1.Layer = (*spooledLayer)(nil)

func (l *spooledLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *spooledLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *spooledLayer) Size() (int64, error)                { return l.size, nil }
func (l *spooledLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }
func (l *spooledLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }

// LocalFile is the temporary file that holds the layer until Result.Close:
// a writer on the same file system may link it rather than copy it.
func (l *spooledLayer) LocalFile() string { return l.path }
func (l *spooledLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	r, err := compress.NewReader(l.codec, bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		f.Close()
		return nil, err
	}
	return &readCloser{Reader: r, close: func() error { r.Close(); return f.Close() }}, nil
}

// recordPaths notes the clean path of every entry that goes by, and the
// directories above it.
func recordPaths(paths map[string]bool) tarfilter.Filter {
	return tarfilter.FilterFunc(func(ctx context.Context, e tarfilter.Entry, next tarfilter.Writer) error {
		for p := whiteout.Clean(e.Header.Name); p != "" && !paths[p]; p = path.Dir(p) {
			paths[p] = true
			if !strings.Contains(p, "/") {
				break
			}
		}
		return next.WriteEntry(ctx, e)
	})
}

// recordLinks notes in links each hardlink that goes through.
func recordLinks(links map[string]string) tarfilter.Filter {
	return tarfilter.FilterFunc(func(ctx context.Context, e tarfilter.Entry, next tarfilter.Writer) error {
		if e.Header.Typeflag == tar.TypeLink {
			links[whiteout.Clean(e.Header.Name)] = whiteout.Clean(e.Header.Linkname)
		}
		return next.WriteEntry(ctx, e)
	})
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r *readCloser) Close() error { return r.close() }

// typedLayer presents a layer under another media type (a Docker layer in
// an OCI manifest, say). Everything else is the wrapped layer's.
type typedLayer struct {
	v1.Layer
	mediaType types.MediaType
}

func (l *typedLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

// LocalFile is the wrapped layer's, if it has one.
func (l *typedLayer) LocalFile() string {
	if f, ok := l.Layer.(interface{ LocalFile() string }); ok {
		return f.LocalFile()
	}
	return ""
}
