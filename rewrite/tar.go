package rewrite

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
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

// recorder passes reads through and keeps a copy of them while on.
type recorder struct {
	r   io.Reader
	on  bool
	buf bytes.Buffer
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if r.on && n > 0 {
		r.buf.Write(p[:n])
	}
	return n, err
}

func (r *recorder) start() { r.buf.Reset(); r.on = true }

func (r *recorder) stop() []byte { r.on = false; return r.buf.Bytes() }

// TarError is a malformed tar stream, with the offset of the entry that
// could not be read in the uncompressed layer.
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

// tarStats counts what went through copyTar.
type tarStats struct {
	entriesIn, entriesOut int
	changed               bool
}

// copyTar streams the tar archive in through f into w. Entries that f passes
// on unchanged are copied byte for byte, as are the end-of-archive blocks and
// anything after them, so a filter that keeps everything reproduces the input
// exactly. The returned stats say whether the output differs from the input.
func copyTar(ctx context.Context, in io.Reader, w io.Writer, f Filter) (tarStats, error) {
	cw := &countWriter{w: w}
	rec := &recorder{r: in}
	cr := &countReader{r: rec}
	tr := tar.NewReader(cr)
	out := &tarWriter{w: cw, tw: tar.NewWriter(cw)}
	var st tarStats
	var prev *sourceEntry
	var lastPath string
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		off := cr.n
		rec.start()
		hdr, err := tr.Next()
		raw := rec.stop()
		// What Next read is the previous entry's padding, then this entry's
		// header blocks: the padding is what makes the total a multiple of
		// the block size again.
		pad := len(raw) % blockSize
		if prev != nil && prev.copied && !allZero(raw[:pad]) {
			out.changed = true // padding with garbage in it is written as zeros
		}
		raw = raw[pad:]
		if errors.Is(err, io.EOF) {
			if len(raw) < 2*blockSize && cr.n > 0 {
				return st, &TarError{Offset: cr.n, Path: lastPath, Err: errors.New("archive ends without its end-of-archive blocks (truncated?)")}
			}
			if fl, ok := f.(Flusher); ok {
				if err := fl.Flush(ctx, out); err != nil {
					return st, err
				}
			}
			if err := out.finish(raw); err != nil {
				return st, err
			}
			// Keep whatever follows the end-of-archive marker.
			if _, err := io.Copy(cw, rec); err != nil {
				return st, err
			}
			st.entriesOut = out.entries
			st.changed = out.changed || out.raws != st.entriesIn
			return st, nil
		}
		if err != nil {
			return st, &TarError{Offset: off, Path: lastPath, Err: err}
		}
		st.entriesIn++
		lastPath = hdr.Name
		src := &sourceEntry{
			raw:    bytes.Clone(raw),
			header: cloneHeader(hdr),
			body:   tr,
			sparse: isSparse(hdr),
		}
		e := Entry{Header: hdr, Body: tr, src: src}
		if err := f.Filter(ctx, e, out); err != nil {
			return st, fmt.Errorf("%s: %w", hdr.Name, err)
		}
		// Whatever the filter did not read is skipped, so the recorder only
		// ever holds header blocks.
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return st, &TarError{Offset: off, Path: hdr.Name, Err: err}
		}
		prev = src
	}
}

// tarWriter is the Writer at the end of the filter chain.
type tarWriter struct {
	w       *countWriter
	tw      *tar.Writer
	entries int  // entries written
	raws    int  // of which copied raw
	changed bool // something was written that the source did not have
}

func (t *tarWriter) WriteEntry(ctx context.Context, e Entry) error {
	t.entries++
	if s := e.src; s != nil && !s.copied && !s.sparse && e.Body == s.body && headerEqual(e.Header, &s.header) {
		s.copied = true
		t.raws++
		return t.writeRaw(s.raw, e.Body, e.Header.Size)
	}
	t.changed = true
	if err := t.tw.WriteHeader(e.Header); err != nil {
		return err
	}
	if e.Body != nil && e.Header.Size > 0 {
		n, err := io.Copy(t.tw, e.Body)
		if err != nil {
			return err
		}
		if n != e.Header.Size {
			return fmt.Errorf("entry %s: body has %d bytes, header says %d", e.Header.Name, n, e.Header.Size)
		}
	}
	return t.tw.Flush()
}

func (t *tarWriter) writeRaw(hdr []byte, body io.Reader, size int64) error {
	if _, err := t.w.Write(hdr); err != nil {
		return err
	}
	if size > 0 {
		n, err := io.CopyN(t.w, body, size)
		if err != nil {
			return fmt.Errorf("copying %d bytes of data (got %d): %w", size, n, err)
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

// finish writes the end-of-archive blocks: the source's own when they are
// complete, else the two zero blocks tar requires.
func (t *tarWriter) finish(trailer []byte) error {
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

func cloneHeader(h *tar.Header) tar.Header {
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

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
