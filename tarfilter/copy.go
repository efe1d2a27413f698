package tarfilter

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"

	"github.com/layerslim/layerslim/internal/iocount"
	"github.com/layerslim/layerslim/internal/limit"
	"github.com/layerslim/layerslim/internal/tarentry"
)

const blockSize = 512

// sourceEntry remembers how an entry looked in the source stream, so that an
// entry a filter passes on untouched is written back byte for byte.
type sourceEntry struct {
	raw    []byte     // the entry's header blocks as read (PAX and GNU records included)
	header tar.Header // a copy of the header as parsed
	body   io.Reader  // the body handed to the filter
	sparse bool       // sparse entries cannot be copied raw: their body is expanded
	copied bool       // written raw exactly once
}

// recorder passes reads through and keeps a copy of them while on, up to
// limit.HeaderBytes: archive/tar reads any number of chained PAX or GNU
// long-name records before an entry, and a copy of them all must not grow
// without bound.
type recorder struct {
	r   io.Reader
	on  bool
	buf bytes.Buffer
}

// errHeaderTooLarge is the error for an entry whose header records go past
// limit.HeaderBytes.
var errHeaderTooLarge = fmt.Errorf("the header records of one entry take more than %s (a chain of PAX or GNU long-name records)", limit.Size(limit.HeaderBytes))

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if r.on && n > 0 {
		if int64(r.buf.Len()+n) > limit.HeaderBytes {
			return 0, errHeaderTooLarge
		}
		r.buf.Write(p[:n])
	}
	return n, err
}

func (r *recorder) start() { r.buf.Reset(); r.on = true }

func (r *recorder) stop() []byte { r.on = false; return r.buf.Bytes() }

// TarError is a malformed tar stream, with the offset in the stream of the
// entry that could not be read.
type TarError struct {
	Offset int64
	Path   string // the last entry read before the fault, if any
	Err    error
}

func (e *TarError) Error() string {
	if e.Path != "" {
		return fmt.Sprintf("malformed tar at byte %d (after %s): %v", e.Offset, e.Path, e.Err)
	}
	return fmt.Sprintf("malformed tar at byte %d: %v", e.Offset, e.Err)
}

func (e *TarError) Unwrap() error { return e.Err }

// Stats counts what went through Copy.
type Stats struct {
	EntriesIn  int // entries read
	EntriesOut int // entries written
	// Changed is false when the output is the input byte for byte.
	Changed bool
}

// A Reader reads the entries of a tar stream, keeping the raw header
// blocks of each, so that an entry that reaches an ArchiveWriter unchanged
// is written back byte for byte. Copy is a Reader, a Filter and an
// ArchiveWriter in a loop; a caller that needs another loop (a walk of
// several layers) uses the parts.
type Reader struct {
	src      *errMemo
	rec      *recorder
	cr       *iocount.Reader
	tr       *tar.Reader
	bodies   io.Reader // tr, or tr within a budget of body bytes
	prev     *sourceEntry
	body     *tarentry.Reader // the current entry's
	off      int64            // where the current entry's header starts
	lastPath string           // the current entry, for messages
	n        int              // entries read
	// dirtyPad is set when a copied entry's padding held non-zero bytes:
	// the copy pads with zeros, so the output differs from the input.
	dirtyPad bool
	// trailer holds the end-of-archive blocks once next returned io.EOF.
	trailer []byte
}

// NewReader returns a Reader of the tar stream in.
func NewReader(in io.Reader) *Reader {
	src := &errMemo{r: in}
	rec := &recorder{r: src}
	cr := &iocount.Reader{R: rec}
	tr := tar.NewReader(cr)
	return &Reader{src: src, rec: rec, cr: cr, tr: tr, bodies: tr}
}

// errMemo remembers the last error its reader gave other than io.EOF: an
// error of the stream under the tar (a decompressor's, a limit) is not a
// malformed tar.
type errMemo struct {
	r   io.Reader
	err error
}

func (e *errMemo) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// streamErr reports whether err is (or wraps) an error of the stream
// under the tar.
func (r *Reader) streamErr(err error) bool {
	return r.src.err != nil && errors.Is(err, r.src.err)
}

// LimitBodies bounds the bytes of all the bodies read to n (0: none). A
// sparse file's body is its holes expanded, so the bodies of a small
// stream may be huge.
func (r *Reader) LimitBodies(n int64) {
	r.bodies = limit.Reader(r.tr, n, limit.Files(n))
}

// Next returns the next entry, or io.EOF after the end-of-archive blocks.
// The entry's body is valid until the next call; call SkipBody before it
// to discard what was not read. A stream that cannot be read as tar gives
// a *TarError; an error of the stream under it is returned as it is.
func (r *Reader) Next() (Entry, error) {
	r.off = r.cr.N
	r.rec.start()
	hdr, err := r.tr.Next()
	raw := r.rec.stop()
	// What Next read is the previous entry's padding, then this entry's
	// header blocks: the padding is what makes the total a multiple of the
	// block size again.
	pad := len(raw) % blockSize
	if r.prev != nil && r.prev.copied && !allZero(raw[:pad]) {
		r.dirtyPad = true
	}
	raw = raw[pad:]
	if errors.Is(err, io.EOF) {
		if len(raw) < 2*blockSize && r.cr.N > 0 {
			return Entry{}, &TarError{Offset: r.cr.N, Path: r.lastPath, Err: errors.New("archive ends without its end-of-archive blocks (truncated?)")}
		}
		r.trailer = raw
		return Entry{}, io.EOF
	}
	if errors.Is(err, limit.ErrExceeded) || (err != nil && r.streamErr(err)) {
		return Entry{}, err
	}
	if err != nil {
		return Entry{}, &TarError{Offset: r.off, Path: r.lastPath, Err: err}
	}
	r.n++
	r.lastPath = hdr.Name
	r.body = tarentry.Body(r.bodies, hdr.Size)
	src := &sourceEntry{
		raw:    bytes.Clone(raw),
		header: CloneHeader(hdr),
		body:   r.body,
		sparse: isSparse(hdr),
	}
	r.prev = src
	return Entry{Header: hdr, Body: r.body, src: src}, nil
}

// SkipBody reads what is left of the current entry's body. Call it before
// Next: the raw copy of the next entry's header blocks must not take in
// body bytes.
func (r *Reader) SkipBody() error {
	if _, err := io.Copy(io.Discard, r.body); err != nil {
		if errors.Is(err, limit.ErrExceeded) || r.streamErr(err) {
			return fmt.Errorf("%s: %w", r.lastPath, err)
		}
		return &TarError{Offset: r.off, Path: r.lastPath, Err: err}
	}
	return nil
}

// Rest is what follows the end-of-archive blocks.
func (r *Reader) Rest() io.Reader { return r.rec }

// Copy streams the tar archive in through f into w. Entries that f passes
// on unchanged are copied byte for byte, as are the end-of-archive blocks and
// anything after them, so a filter that keeps everything reproduces the input
// exactly. The returned stats say whether the output differs from the input.
func Copy(ctx context.Context, in io.Reader, w io.Writer, f Filter) (Stats, error) {
	return CopyLimit(ctx, in, w, f, 0)
}

// CopyLimit is Copy with the bodies of the entries bounded to
// maxBody bytes in all (0: no bound).
func CopyLimit(ctx context.Context, in io.Reader, w io.Writer, f Filter, maxBody int64) (Stats, error) {
	er := NewReader(in)
	er.LimitBodies(maxBody)
	out := NewArchiveWriter(w)
	var st Stats
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		e, err := er.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, err
		}
		if err := f.Filter(ctx, e, out); err != nil {
			return st, fmt.Errorf("%s: %w", e.Header.Name, err)
		}
		if err := er.SkipBody(); err != nil {
			return st, err
		}
	}
	if fl, ok := f.(Flusher); ok {
		if err := fl.Flush(ctx, out); err != nil {
			return st, err
		}
	}
	if err := out.finish(er.trailer); err != nil {
		return st, err
	}
	// Keep whatever follows the end-of-archive marker.
	if _, err := io.Copy(w, er.Rest()); err != nil {
		return st, err
	}
	st.EntriesIn = er.n
	st.EntriesOut = out.entries
	st.Changed = out.changed || er.dirtyPad || out.raws != er.n
	return st, nil
}

// NewArchiveWriter returns an ArchiveWriter that writes a tar stream to w.
func NewArchiveWriter(w io.Writer) *ArchiveWriter {
	return &ArchiveWriter{w: w, tw: tar.NewWriter(w)}
}

// An ArchiveWriter is the Writer at the end of a filter chain: it writes
// the entries into a tar stream, an entry read by a Reader and passed on
// unchanged as the raw bytes it was read from. Close writes the
// end-of-archive blocks.
type ArchiveWriter struct {
	w       io.Writer
	tw      *tar.Writer
	entries int  // entries written
	raws    int  // of which copied raw
	changed bool // something was written that the source did not have
}

// WriteEntry writes e: byte for byte when it is a Reader's entry as read,
// else as archive/tar writes its header, then its body.
func (t *ArchiveWriter) WriteEntry(ctx context.Context, e Entry) error {
	t.entries++
	if s := e.src; s != nil && !s.copied && !s.sparse && e.Body == s.body && headerEqual(e.Header, &s.header) {
		s.copied = true
		t.raws++
		return t.writeRaw(s.raw, e.Body, bodySize(e.Header))
	}
	t.changed = true
	if err := t.tw.WriteHeader(e.Header); err != nil {
		return err
	}
	if size := bodySize(e.Header); e.Body != nil && size > 0 {
		n, err := io.Copy(t.tw, e.Body)
		if err != nil {
			return err
		}
		if n != size {
			return fmt.Errorf("entry %s: body has %d bytes, header says %d", e.Header.Name, n, size)
		}
	}
	return t.tw.Flush()
}

// bodySize is how many body bytes follow h in a tar stream: none for the
// types archive/tar reads as header only (links, devices, directories,
// FIFOs), whatever size their header gives, else the header's size.
func bodySize(h *tar.Header) int64 {
	switch h.Typeflag {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		return 0
	}
	return h.Size
}

func (t *ArchiveWriter) writeRaw(hdr []byte, body io.Reader, size int64) error {
	if _, err := t.w.Write(hdr); err != nil {
		return err
	}
	if size > 0 {
		n, err := io.CopyN(t.w, body, size)
		if err == io.EOF {
			return fmt.Errorf("body ends after %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return err // a source body's error says how much there was
		}
	}
	if p := (-size) & (blockSize - 1); p > 0 {
		var zeros [blockSize]byte
		if _, err := t.w.Write(zeros[:p]); err != nil {
			return err
		}
	}
	return nil
}

// Entries is the number of entries written.
func (t *ArchiveWriter) Entries() int { return t.entries }

// Close writes the end-of-archive blocks (two zero blocks). It does not
// close the underlying writer.
func (t *ArchiveWriter) Close() error { return t.finish(nil) }

// finish writes the end-of-archive blocks: the source's own when they are
// complete, else the two zero blocks tar requires.
func (t *ArchiveWriter) finish(trailer []byte) error {
	if len(trailer) < 2*blockSize || !allZero(trailer) {
		t.changed = true
		trailer = make([]byte, 2*blockSize)
	}
	_, err := t.w.Write(trailer)
	return err
}

func isSparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range h.PAXRecords {
		if len(k) > 11 && k[:11] == "GNU.sparse." {
			return true
		}
	}
	return false
}

// CloneHeader returns a copy of h that shares no map with it: a filter
// changes the copy, and the entry read keeps its header as it was.
func CloneHeader(h *tar.Header) tar.Header {
	c := *h
	c.PAXRecords = maps.Clone(h.PAXRecords)
	c.Xattrs = maps.Clone(h.Xattrs) //nolint:staticcheck // kept for equality with readers that fill it
	return c
}

func headerEqual(a, b *tar.Header) bool {
	return a.Typeflag == b.Typeflag && a.Name == b.Name && a.Linkname == b.Linkname &&
		a.Size == b.Size && a.Mode == b.Mode && a.Uid == b.Uid && a.Gid == b.Gid &&
		a.Uname == b.Uname && a.Gname == b.Gname &&
		a.ModTime.Equal(b.ModTime) && a.AccessTime.Equal(b.AccessTime) && a.ChangeTime.Equal(b.ChangeTime) &&
		a.Devmajor == b.Devmajor && a.Devminor == b.Devminor && a.Format == b.Format &&
		maps.Equal(a.PAXRecords, b.PAXRecords) && maps.Equal(a.Xattrs, b.Xattrs) //nolint:staticcheck
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
