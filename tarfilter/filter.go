// Package tarfilter is the generic tar engine of a layer rewrite: a layer's
// tar stream goes entry by entry through a Filter (a Chain of small ones),
// and the driver, Copy, writes what survives. An entry a filter passes on
// untouched is copied byte for byte (its raw header blocks, body and
// padding), so a chain that keeps everything reproduces its input exactly
// and Stats.Changed says whether the output differs at all.
//
// The package knows nothing of images, layers or compression: it reads and
// writes uncompressed tar streams. The filters that make up a rewrite
// (dropping paths, splitting ELF debug information) live in package
// rewrite.
//
// Files: filter.go holds the model (Entry, Writer, Filter, Chain);
// copy.go the driver (Copy, Reader, ArchiveWriter, TarError).
package tarfilter

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
)

// Entry is one tar record. Body yields exactly Header.Size bytes for a
// regular file (and nothing for other types). An Entry handed to a Filter is
// valid only until that Filter call returns.
type Entry struct {
	Header *tar.Header
	Body   io.Reader

	// src is set on entries a Reader read; an ArchiveWriter uses it
	// to copy an entry that went through unchanged byte for byte.
	src *sourceEntry
}

// A Writer receives the entries that survive a filter.
type Writer interface {
	WriteEntry(ctx context.Context, e Entry) error
}

// A Filter sees each entry of a layer once and writes its replacement to
// next: nothing (drop), e itself (keep), or new entries (rewrite, split).
type Filter interface {
	Filter(ctx context.Context, e Entry, next Writer) error
}

// A Flusher is a Filter that has entries to write once the layer's last
// entry has gone by.
type Flusher interface {
	Flush(ctx context.Context, next Writer) error
}

// FilterFunc adapts a function to Filter, like http.HandlerFunc.
type FilterFunc func(ctx context.Context, e Entry, next Writer) error

// Filter calls f(ctx, e, next).
func (f FilterFunc) Filter(ctx context.Context, e Entry, next Writer) error { return f(ctx, e, next) }

// WriterFunc adapts a function to Writer.
type WriterFunc func(ctx context.Context, e Entry) error

// WriteEntry calls f(ctx, e).
func (f WriterFunc) WriteEntry(ctx context.Context, e Entry) error { return f(ctx, e) }

// Keep is the filter that passes every entry through unchanged.
func Keep() Filter {
	return FilterFunc(func(ctx context.Context, e Entry, next Writer) error {
		return next.WriteEntry(ctx, e)
	})
}

// Chain composes filters: an entry goes through fs[0] first, and whatever
// fs[0] writes goes through fs[1], and so on. Chain() is Keep().
func Chain(fs ...Filter) Filter {
	switch len(fs) {
	case 0:
		return Keep()
	case 1:
		return fs[0]
	}
	return chain(fs)
}

type chain []Filter

func (c chain) Filter(ctx context.Context, e Entry, next Writer) error {
	return c[0].Filter(ctx, e, c.rest(next))
}

// rest returns the Writer that feeds c[1:] and then next.
func (c chain) rest(next Writer) Writer {
	if len(c) == 1 {
		return next
	}
	tail := c[1:]
	return WriterFunc(func(ctx context.Context, e Entry) error {
		return tail.Filter(ctx, e, next)
	})
}

// Flush flushes each filter in order; what an earlier filter flushes still
// goes through the filters after it.
func (c chain) Flush(ctx context.Context, next Writer) error {
	for i, f := range c {
		fl, ok := f.(Flusher)
		if !ok {
			continue
		}
		if err := fl.Flush(ctx, c[i:].rest(next)); err != nil {
			return err
		}
	}
	return nil
}

// Peek returns the first n bytes of the entry's body (fewer if the body is
// shorter) without consuming them: e.Body is replaced by a reader that
// yields them again, and an entry read from the source can still be copied
// byte for byte.
func (e *Entry) Peek(n int) ([]byte, error) {
	if e.Body == nil {
		return nil, nil
	}
	if int64(n) > e.Header.Size {
		n = int(max(e.Header.Size, 0))
	}
	b := make([]byte, n)
	m, err := io.ReadFull(e.Body, b)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, err
	}
	b = b[:m]
	e.Body = io.MultiReader(bytes.NewReader(b), e.Body)
	if e.src != nil {
		src := *e.src
		src.body = e.Body
		e.src = &src
	}
	return b, nil
}

// WithBody returns e with its body replaced by r, which the caller promises
// yields exactly the bytes the body held. An entry read from the source
// keeps being copied byte for byte.
func (e Entry) WithBody(r io.Reader) Entry {
	e.Body = r
	if e.src != nil {
		src := *e.src
		src.body = r
		e.src = &src
	}
	return e
}
