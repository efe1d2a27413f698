// Package spool turns a stream into something that can be read at random:
// bytes stay in memory up to a threshold and go to a temporary file beyond
// it, so memory stays bounded whatever the stream's size.
//
// The memory is held in chunks of a fixed size taken from a pool shared by
// every spool and given back by Close (or when the spool moves to a file),
// so that spooling many files one after the other leaves no garbage behind:
// garbage lets the Go heap grow to twice what is live before it is
// collected, and a rewrite spools every ELF file of a layer.
package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// ErrTooLarge is returned when a spool would grow past its limit.
var ErrTooLarge = errors.New("spool: larger than the limit")

// chunkSize is the size of the memory chunks: small enough that a small
// file takes little, large enough that a file of a few MiB takes few.
const chunkSize = 64 << 10

var chunks = sync.Pool{New: func() any { return new([chunkSize]byte) }}

// Spool is an io.Writer that keeps what it is given for reading back.
// The zero value is not usable; call New.
type Spool struct {
	dir   string
	mem   int64 // bytes kept in memory before switching to a file
	limit int64 // 0: none
	buf   []*[chunkSize]byte
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
	if s.f == nil && s.size+int64(len(p)) > s.mem {
		if err := s.toFile(); err != nil {
			return 0, err
		}
	}
	if s.f != nil {
		n, err := s.f.Write(p)
		s.size += int64(n)
		return n, err
	}
	n := len(p)
	for len(p) > 0 {
		c := s.tail()
		k := copy(c, p)
		p = p[k:]
		s.size += int64(k)
	}
	return n, nil
}

// tail returns the free part of the last chunk, adding a chunk if it is
// full.
func (s *Spool) tail() []byte {
	off := int(s.size % chunkSize)
	if off == 0 && s.size == int64(len(s.buf))*chunkSize {
		s.buf = append(s.buf, chunks.Get().(*[chunkSize]byte))
	}
	return s.buf[len(s.buf)-1][off:]
}

// toFile moves what is in memory to a temporary file, which takes every
// later write.
func (s *Spool) toFile() error {
	f, err := os.CreateTemp(s.dir, "layerslim-spool-*")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	left := s.size
	for _, c := range s.buf {
		k := min(left, chunkSize)
		if _, err := f.Write(c[:k]); err != nil {
			f.Close()
			os.Remove(f.Name())
			return fmt.Errorf("spool: %w", err)
		}
		left -= k
	}
	s.release()
	s.f = f
	return nil
}

func (s *Spool) release() {
	for i, c := range s.buf {
		chunks.Put(c)
		s.buf[i] = nil
	}
	s.buf = nil
}

// ReadFrom fills the spool from r. In memory it reads straight into its
// chunks; past the threshold it copies through one pooled chunk.
func (s *Spool) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		var p []byte
		var scratch *[chunkSize]byte
		if s.f == nil && s.size < s.mem {
			p = s.tail()
			if room := s.mem - s.size; int64(len(p)) > room {
				p = p[:room]
			}
		} else {
			// At the threshold (in memory or not) or in a file: read
			// into a scratch chunk and Write, which moves to a file.
			scratch = chunks.Get().(*[chunkSize]byte)
			p = scratch[:]
		}
		n, err := r.Read(p)
		if n > 0 {
			if scratch != nil {
				_, werr := s.Write(p[:n])
				if werr != nil {
					chunks.Put(scratch)
					return total, werr
				}
			} else if s.limit > 0 && s.size+int64(n) > s.limit {
				return total, fmt.Errorf("%w of %d bytes", ErrTooLarge, s.limit)
			} else {
				s.size += int64(n)
			}
			total += int64(n)
		}
		if scratch != nil {
			chunks.Put(scratch)
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
	if off < 0 {
		return 0, errors.New("spool: negative offset")
	}
	n := 0
	for len(p) > 0 && off < s.size && s.buf != nil {
		c := s.buf[off/chunkSize][off%chunkSize:]
		if left := s.size - off; int64(len(c)) > left {
			c = c[:left]
		}
		k := copy(p, c)
		p = p[k:]
		off += int64(k)
		n += k
	}
	if len(p) > 0 {
		return n, io.EOF
	}
	return n, nil
}

// Reader returns a reader of everything written, from the start.
func (s *Spool) Reader() io.Reader { return io.NewSectionReader(s, 0, s.size) }

// InFile reports whether the spool went to a temporary file.
func (s *Spool) InFile() bool { return s.f != nil }

// Close releases the memory or removes the temporary file. What was
// written cannot be read after it.
func (s *Spool) Close() error {
	s.release()
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
