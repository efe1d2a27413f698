package analyze

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"maps"
	"strings"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/internal/iocount"
)

const blockSize = 512

// estimator compresses the tar records that a rewrite would keep, to
// count the compressed bytes: nothing is kept.
type estimator struct {
	enc    io.WriteCloser
	closed bool
	out    iocount.Writer // counts (and discards) the compressed bytes
	in     int64          // uncompressed bytes written
	hdr    bytes.Buffer
}

func newEstimator(level int) (*estimator, error) {
	e := &estimator{}
	// The walk is the only encoder of the call. One encoder: each more
	// holds another stream encoder and its 16 MiB history, and the frames
	// still compress on their own goroutine while the tar is read.
	enc, err := compress.NewWriter(&e.out, compress.Zstd, compress.WithLevel(level), compress.WithConcurrency(1))
	if err != nil {
		return nil, err
	}
	e.enc = enc
	return e, nil
}

func (e *estimator) Write(p []byte) (int, error) {
	n, err := e.enc.Write(p)
	e.in += int64(n)
	return n, err
}

// record writes one tar record: h's header blocks (for a body of h.Size
// bytes), then whatever body writes, padded to the block size. It returns
// the record's uncompressed size.
func (e *estimator) record(h *tar.Header, body func(io.Writer) error) (int64, error) {
	start := e.in
	if err := e.header(h); err != nil {
		return 0, err
	}
	if body != nil {
		if err := body(e); err != nil {
			return 0, err
		}
	}
	if pad := (start - e.in) & (blockSize - 1); pad > 0 {
		var zeros [blockSize]byte
		if _, err := e.Write(zeros[:pad]); err != nil {
			return 0, err
		}
	}
	return e.in - start, nil
}

// header writes h's header blocks as archive/tar encodes them. The source's
// own encoding may differ by a few bytes (GNU against PAX records, say),
// which does not matter to an estimate.
func (e *estimator) header(h *tar.Header) error {
	c := *h
	if c.Typeflag == tar.TypeGNUSparse {
		c.Typeflag = tar.TypeReg // the reader expanded the body
	}
	if len(c.PAXRecords) > 0 {
		c.PAXRecords = maps.Clone(c.PAXRecords)
		maps.DeleteFunc(c.PAXRecords, func(k, _ string) bool { return strings.HasPrefix(k, "GNU.sparse.") })
	}
	e.hdr.Reset()
	err := tar.NewWriter(&e.hdr).WriteHeader(&c)
	if err != nil {
		// A header archive/tar cannot write as it was read: keep what
		// matters to the size.
		e.hdr.Reset()
		m := &tar.Header{Name: c.Name, Linkname: c.Linkname, Typeflag: c.Typeflag, Size: c.Size, Mode: c.Mode, ModTime: c.ModTime}
		if err := tar.NewWriter(&e.hdr).WriteHeader(m); err != nil {
			return fmt.Errorf("estimating: encoding tar header: %w", err)
		}
	}
	_, err = e.Write(e.hdr.Bytes())
	return err
}

// close writes the end-of-archive blocks and ends the frame. It returns the
// compressed size.
func (e *estimator) close() (int64, error) {
	var zeros [2 * blockSize]byte
	if _, err := e.Write(zeros[:]); err != nil {
		return 0, err
	}
	e.closed = true
	if err := e.enc.Close(); err != nil {
		return 0, err
	}
	return e.out.N, nil
}

// abort releases the encoder unless close did.
func (e *estimator) abort() {
	if !e.closed {
		e.closed = true
		e.enc.Close()
	}
}
