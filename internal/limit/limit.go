// Package limit bounds what a hostile layer can make layerslim read or
// keep: the uncompressed bytes of one layer (a decompression bomb), the
// bytes of one file put aside for random access (an ELF file being split,
// a hardlink's content read again), and the header records of one tar
// entry (chained PAX or GNU long-name records).
package limit

import (
	"errors"
	"fmt"
	"io"
)

const (
	// DefaultMaxLayerSize is the default limit on the uncompressed bytes of
	// one layer: well above the largest real layers (CUDA and model
	// images reach 10-20 GiB), far below what a few MiB of gzip or zstd
	// can expand to.
	DefaultMaxLayerSize int64 = 64 << 30
	// DefaultMaxSpool is the default limit on the bytes of one file spooled
	// to memory or a temporary file: ELF files with full DWARF of large
	// C++ programs reach a few GiB.
	DefaultMaxSpool int64 = 16 << 30
	// HeaderBytes bounds the header records of one tar entry: a PAX
	// record set, a GNU long name and a GNU long link take at most 1 MiB
	// each (archive/tar's own limit), so a real entry needs less than
	// 4 MiB; only a chain of such records, which archive/tar reads one
	// after another, takes more.
	HeaderBytes int64 = 4 << 20
)

// ErrExceeded is wrapped by every error for a limit that input went past.
var ErrExceeded = errors.New("limit exceeded")

// Error is a limit that input went past.
type Error struct {
	What  string // what went past it: "uncompressed layer", "file of 20 GiB"…
	Limit int64
	Flag  string // the command-line flag that raises it, without dashes
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s exceeds the limit of %s (--%s)", e.What, Size(e.Limit), e.Flag)
}

// Is makes errors.Is(err, ErrExceeded) true.
func (e *Error) Is(target error) bool { return target == ErrExceeded }

// Layer is the error for a layer whose uncompressed stream goes past n.
func Layer(n int64) error {
	return &Error{What: "uncompressed layer", Limit: n, Flag: "max-layer-size"}
}

// Files is the error for a layer whose files hold more than n bytes of
// content: only sparse files, whose holes a tar reader expands to zeros,
// hold more than the uncompressed stream carries.
func Files(n int64) error {
	return &Error{What: "content of the layer's files (sparse files expanded)", Limit: n, Flag: "max-layer-size"}
}

// Spool is the error for a file of size bytes (or more, when size < 0)
// that would be spooled past n.
func Spool(size, n int64) error {
	what := "file to spool"
	if size >= 0 {
		what = "file of " + Size(size)
	}
	return &Error{What: what, Limit: n, Flag: "max-spool"}
}

// Resolve turns an option value into a limit: 0 means def, a negative
// value means none (0).
func Resolve(v, def int64) int64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// Reader passes r through until more than n bytes have come; then it fails
// with err. n <= 0 means no limit: r is returned as it is.
func Reader(r io.Reader, n int64, err error) io.Reader {
	if n <= 0 {
		return r
	}
	return &reader{r: r, left: n, err: err}
}

type reader struct {
	r    io.Reader
	left int64 // bytes still allowed
	err  error
}

func (l *reader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, l.err
	}
	// Read one byte more than allowed, to tell a stream of exactly the
	// limit from a longer one.
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n + int(l.left), l.err
	}
	return n, err
}

// Size formats a byte count for messages: 64 GiB, 1.5 MiB, 512 bytes.
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	s := fmt.Sprintf("%.1f", v)
	if n%div == 0 {
		s = fmt.Sprintf("%d", n/div)
	}
	return s + " " + string("KMGTPE"[exp]) + "iB"
}
