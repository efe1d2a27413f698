// Package tarentry reads the bodies of tar entries so that a stream that
// ends before a body does says how much of the body there was.
package tarentry

import (
	"errors"
	"fmt"
	"io"

	"github.com/layerslim/layerslim/internal/limit"
)

// Body reads the body of an entry whose header gives size bytes, from r
// (a tar.Reader positioned at the entry). A read error other than io.EOF
// and a limit says "(tar header says N bytes, M present)".
func Body(r io.Reader, size int64) *Reader {
	return &Reader{r: r, size: size}
}

// Reader is a body being read.
type Reader struct {
	r    io.Reader
	size int64 // what the header says
	n    int64 // read so far
}

func (b *Reader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF && !errors.Is(err, limit.ErrExceeded) {
		err = fmt.Errorf("%w (tar header says %d bytes, %d present)", err, b.size, b.n)
	}
	return n, err
}
