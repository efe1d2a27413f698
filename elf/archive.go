package elf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	stdelf "debug/elf"
)

const (
	arMagic     = "!<arch>\n"
	arHeaderLen = 60
)

// IsArchive reports whether r starts with the ar magic "!<arch>\n"
// (thin archives, "!<thin>\n", hold no members to strip).
func IsArchive(r io.ReaderAt, size int64) bool {
	var b [8]byte
	if size < int64(len(b)) {
		return false
	}
	_, err := r.ReadAt(b[:], 0)
	return err == nil && string(b[:]) == arMagic
}

// arMember is one member of an ar archive.
type arMember struct {
	hdrOff  uint64 // offset of the 60-byte member header
	hdr     [arHeaderLen]byte
	name    string // raw name field, trimmed
	dataOff uint64
	size    uint64
	plan    *plan // non-nil for ELF members that are stripped
	newOff  uint64
}

func (m *arMember) newSize() uint64 {
	if m.plan != nil {
		return m.plan.strippedSz
	}
	return m.size
}

// SplitArchive strips the debug sections of every relocatable ELF member
// of a static archive ("!<arch>\n"), with Debug semantics whatever the
// strip mode (like dh_strip for .a files: .symtab and all non-debug
// relocations stay, so the archive still links). Other members and the
// long name table are copied byte for byte, member headers are kept except
// their size field, and the symbol index ("/" or "/SYM64/") is rewritten
// with the new member offsets. Members get no .gnu_debuglink and there is
// no debug file: the Result's DebugSize is 0.
//
// When no member has anything to strip, or the archive is in a format
// this package does not rewrite (BSD names, malformed headers), it writes
// nothing and returns an error wrapping ErrUnchanged. A malformed ELF
// member is kept as it is.
//
// The debug sections it removes are not kept anywhere: a rewrite does not
// call it, and leaves static archives as they are.
func SplitArchive(r io.ReaderAt, size int64, out io.Writer) (*Result, error) {
	if !IsArchive(r, size) {
		return nil, notELF("not an ar archive")
	}
	members, err := readArchive(r, size)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	var removed []string
	stripped := 0
	for i := range members {
		m := &members[i]
		if strings.HasPrefix(m.name, "/") && !isLongName(m.name) {
			continue // symbol index or long name table
		}
		f, err := parse(io.NewSectionReader(r, int64(m.dataOff), int64(m.size)), int64(m.size))
		if err != nil || f.typ != uint16(stdelf.ET_REL) {
			continue // not ELF, or malformed: keep the member as it is
		}
		p, err := newPlan(f, Debug, "", false)
		if err != nil || p.reason != "" {
			continue
		}
		if res.Class == 0 {
			res.Info = p.info
		}
		m.plan = p
		res.DebugBytes += p.info.DebugBytes
		removed = append(removed, p.removed...)
		stripped++
	}
	if stripped == 0 {
		return nil, unchanged("nothing to strip")
	}
	res.Info.BuildID, res.Info.KernelModule, res.Info.Signed = "", false, false
	slices.Sort(removed)
	res.Removed = slices.Compact(removed)

	// New offsets, then the symbol index with them.
	pos := uint64(len(arMagic))
	newOff := make(map[uint64]uint64, len(members))
	for i := range members {
		m := &members[i]
		m.newOff = pos
		newOff[m.hdrOff] = pos
		pos += arHeaderLen + m.newSize()
		pos += pos & 1
	}
	res.StrippedSize = int64(pos)

	e := newEmitter(nil, out)
	if err := e.write([]byte(arMagic)); err != nil {
		return nil, err
	}
	for i := range members {
		m := &members[i]
		hdr := m.hdr
		if m.plan != nil {
			sz := strconv.FormatUint(m.plan.strippedSz, 10)
			copy(hdr[48:58], fmt.Sprintf("%-10s", sz))
		}
		if err := e.write(hdr[:]); err != nil {
			return nil, err
		}
		switch {
		case m.name == "/" || m.name == "/SYM64/":
			idx, err := rewriteSymIndex(r, m, newOff)
			if err != nil {
				return nil, err
			}
			if err := e.write(idx); err != nil {
				return nil, err
			}
		case m.plan != nil:
			if err := e.w.Flush(); err != nil {
				return nil, err
			}
			if err := m.plan.writeStripped(out, 0); err != nil {
				return nil, fmt.Errorf("writing archive member at %#x: %w", m.hdrOff, err)
			}
			e.pos += m.plan.strippedSz
		default:
			if err := e.copyFrom(r, m.dataOff, m.size); err != nil {
				return nil, err
			}
		}
		if e.pos&1 != 0 {
			if err := e.write([]byte{'\n'}); err != nil {
				return nil, err
			}
		}
	}
	if err := e.w.Flush(); err != nil {
		return nil, err
	}
	if e.pos != pos {
		return nil, fmt.Errorf("internal error: archive is %d bytes, planned %d", e.pos, pos)
	}
	return res, nil
}

// isLongName reports whether an ar name field refers to the GNU long
// name table ("/123").
func isLongName(name string) bool {
	if len(name) < 2 || name[0] != '/' {
		return false
	}
	_, err := strconv.ParseUint(name[1:], 10, 64)
	return err == nil
}

// readArchive reads the member headers of a GNU/SysV ar archive.
func readArchive(r io.ReaderAt, size int64) ([]arMember, error) {
	var members []arMember
	pos := uint64(len(arMagic))
	for pos < uint64(size) {
		var m arMember
		m.hdrOff = pos
		if pos+arHeaderLen > uint64(size) {
			return nil, formatErr(pos, "truncated archive member header")
		}
		if _, err := r.ReadAt(m.hdr[:], int64(pos)); err != nil {
			return nil, formatErr(pos, "reading archive member header: %v", err)
		}
		if string(m.hdr[58:60]) != "`\n" {
			return nil, formatErr(pos+58, "bad archive member header magic")
		}
		m.name = strings.TrimRight(string(m.hdr[:16]), " ")
		if strings.HasPrefix(m.name, "#1/") || strings.HasPrefix(m.name, "__.SYMDEF") {
			return nil, unchanged("BSD archive format is left as it is")
		}
		sz, err := strconv.ParseUint(strings.TrimRight(string(m.hdr[48:58]), " "), 10, 64)
		if err != nil {
			return nil, formatErr(pos+48, "bad archive member size %q", m.hdr[48:58])
		}
		m.dataOff, m.size = pos+arHeaderLen, sz
		if m.dataOff+sz < m.dataOff || m.dataOff+sz > uint64(size) {
			return nil, formatErr(pos+48, "archive member size %d past end of file", sz)
		}
		members = append(members, m)
		pos = m.dataOff + sz
		pos += pos & 1
	}
	return members, nil
}

// rewriteSymIndex returns the symbol index member m with each member
// offset replaced by the member's new offset.
func rewriteSymIndex(r io.ReaderAt, m *arMember, newOff map[uint64]uint64) ([]byte, error) {
	b := make([]byte, m.size)
	if _, err := r.ReadAt(b, int64(m.dataOff)); err != nil {
		return nil, formatErr(m.dataOff, "reading archive symbol index: %v", err)
	}
	w := uint64(4)
	if m.name == "/SYM64/" {
		w = 8
	}
	get := func(o uint64) uint64 {
		if w == 8 {
			return binary.BigEndian.Uint64(b[o:])
		}
		return uint64(binary.BigEndian.Uint32(b[o:]))
	}
	if uint64(len(b)) < w {
		return nil, formatErr(m.dataOff, "archive symbol index too short")
	}
	n := get(0)
	if n > (uint64(len(b))-w)/w {
		return nil, formatErr(m.dataOff, "archive symbol index count %d too large", n)
	}
	out := bytes.Clone(b)
	for k := uint64(0); k < n; k++ {
		o := w + k*w
		old := get(o)
		nw, ok := newOff[old]
		if !ok {
			return nil, formatErr(m.dataOff+o, "archive symbol index entry %d points at %#x, not at a member", k, old)
		}
		if w == 8 {
			binary.BigEndian.PutUint64(out[o:], nw)
		} else {
			if nw > 0xffffffff {
				return nil, unchanged("archive offsets no longer fit the 32-bit symbol index")
			}
			binary.BigEndian.PutUint32(out[o:], uint32(nw))
		}
	}
	return out, nil
}

// copyFrom copies [off, off+n) of r.
func (e *emitter) copyFrom(r io.ReaderAt, off, n uint64) error {
	for n > 0 {
		b := e.buf[:min(uint64(len(e.buf)), n)]
		if _, err := r.ReadAt(b, int64(off)); err != nil {
			return err
		}
		if err := e.write(b); err != nil {
			return err
		}
		off += uint64(len(b))
		n -= uint64(len(b))
	}
	return nil
}
