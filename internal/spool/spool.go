// Package spool turns a stream into something that can be read at random:
// bytes stay in memory up to a threshold and go to a temporary file beyond
// it, so memory stays bounded whatever the stream's size.
package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTooLarge is returned when a spool would grow past its limit.
var ErrTooLarge = errors.New("spool: larger than the limit")

// Spool is an io.Writer that keeps what it is given for reading back.
// The zero value is not usable; call New.
type Spool struct {
	dir   string
	mem   int64 // bytes kept in memory before switching to a file
	limit int64 // 0: none
	buf   bytes.Buffer
	f     *os.File
	size  int64
}

// New returns a spool that keeps up to mem bytes in memory and puts larger
// streams in a temporary file under dir ("" for the system's). A positive
// limit caps the total size.
func New(dir string, mem, limit int64) *Spool {
	return &Spool{dir: dir, mem: mem, limit: limit}
}

// Write appends p.
func (s *Spool) Write(p []byte) (int, error) {
	if s.limit > 0 && s.size+int64(len(p)) > s.limit {
		return 0, fmt.Errorf("%w of %d bytes", ErrTooLarge, s.limit)
	}
	if s.f == nil && int64(s.buf.Len()+len(p)) > s.mem {
		f, err := os.CreateTemp(s.dir, "layerslim-spool-*")
		if err != nil {
			return 0, fmt.Errorf("spool: %w", err)
		}
		if _, err := f.Write(s.buf.Bytes()); err != nil {
			f.Close()
			os.Remove(f.Name())
			return 0, fmt.Errorf("spool: %w", err)
		}
		s.buf = bytes.Buffer{}
		s.f = f
	}
	var n int
	var err error
	if s.f != nil {
		n, err = s.f.Write(p)
	} else {
		n, err = s.buf.Write(p)
	}
	s.size += int64(n)
	return n, err
}

// ReadFrom fills the spool from r.
func (s *Spool) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := s.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Size is the number of bytes written.
func (s *Spool) Size() int64 { return s.size }

// ReadAt reads what was written, at random.
func (s *Spool) ReadAt(p []byte, off int64) (int, error) {
	if s.f != nil {
		return s.f.ReadAt(p, off)
	}
	return bytes.NewReader(s.buf.Bytes()).ReadAt(p, off)
}

// Reader returns a reader of everything written, from the start.
func (s *Spool) Reader() io.Reader { return io.NewSectionReader(s, 0, s.size) }

// InFile reports whether the spool went to a temporary file.
func (s *Spool) InFile() bool { return s.f != nil }

// Close releases the memory or removes the temporary file.
func (s *Spool) Close() error {
	s.buf = bytes.Buffer{}
	if s.f == nil {
		return nil
	}
	name := s.f.Name()
	err := s.f.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	s.f = nil
	return err
}
