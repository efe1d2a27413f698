package elf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"
)

// Info is what Inspect finds without writing anything.
type Info struct {
	Class     int              // 32 or 64
	ByteOrder binary.ByteOrder // binary.LittleEndian or binary.BigEndian
	Machine   string           // e.g. "EM_X86_64"
	Type      string           // "EXEC", "DYN", "REL" (or "CORE", which is never stripped)
	BuildID   string           // lower-case hex of NT_GNU_BUILD_ID, "" if none
	// DebugBytes is the size of the sections Split would remove in this
	// mode: debug sections, plus .symtab/.strtab (and for All other
	// non-allocated sections) where the mode removes them. Savings in
	// section headers and padding are not counted. It is 0 when Split
	// would leave the file unchanged.
	DebugBytes int64
	// HasDebug reports whether the file has non-allocated debug sections
	// with contents (.debug_*, .zdebug_*, .stab, ...).
	HasDebug     bool
	KernelModule bool // ET_REL with a .modinfo section
	Signed       bool // a kernel module ending with "~Module signature appended~\n"
}

// Result is what Split did.
type Result struct {
	Info
	StrippedSize int64
	DebugSize    int64
	Removed      []string // names of the removed sections, in section header order
	// DebugCRC is the CRC32 of the debug file, as .gnu_debuglink carries it.
	DebugCRC uint32
	// DebugSections names the non-allocated sections that carry contents
	// in the debug file (.shstrtab aside), sorted: what a debug file of
	// one copy of a program has that another may lack.
	DebugSections []string
}

// Inspect parses the ELF file in r and reports what Split would remove in
// mode. Errors wrap ErrUnchanged (with ErrNotELF or a *FormatError) for
// input that is not ELF or is malformed.
func Inspect(r io.ReaderAt, size int64, mode Mode) (*Info, error) {
	f, err := parse(r, size)
	if err != nil {
		return nil, err
	}
	p, err := newPlan(f, mode, "", true)
	if err != nil {
		return nil, err
	}
	if p.reason != "" {
		p.info.DebugBytes = 0
	}
	return &p.info, nil
}

// Split writes the stripped file to stripped and the debug file to debug,
// the debug file first: the stripped file's .gnu_debuglink carries the
// CRC32 of the whole debug file. debugName is the file name recorded in
// .gnu_debuglink.
//
// When there is nothing to strip, or the input is not a valid ELF file
// this package can safely rewrite, Split writes nothing and returns an
// error wrapping ErrUnchanged. Other errors come from a debugName that is
// not a plain file name, from reading r or from writing the outputs; then
// the outputs may be incomplete.
func Split(r io.ReaderAt, size int64, mode Mode, debugName string, stripped, debug io.Writer) (*Result, error) {
	p, err := splitPlan(r, size, mode, debugName)
	if err != nil {
		return nil, err
	}
	crc, err := p.writeDebug(debug)
	if err != nil {
		return nil, fmt.Errorf("writing debug file: %w", err)
	}
	if err := p.writeStripped(stripped, crc); err != nil {
		return nil, fmt.Errorf("writing stripped file: %w", err)
	}
	res := p.result()
	res.DebugCRC = crc
	return res, nil
}

// SplitLinked is Split without the debug file: it writes the stripped file
// only, its .gnu_debuglink naming debugName with the given CRC, that of a
// debug file of the same build-id written by Split for another copy. The
// Result's DebugSize and DebugCRC are those of the debug file Split would
// have written.
func SplitLinked(r io.ReaderAt, size int64, mode Mode, debugName string, crc uint32, stripped io.Writer) (*Result, error) {
	p, err := splitPlan(r, size, mode, debugName)
	if err != nil {
		return nil, err
	}
	if err := p.writeStripped(stripped, crc); err != nil {
		return nil, fmt.Errorf("writing stripped file: %w", err)
	}
	res := p.result()
	res.DebugCRC = crc
	return res, nil
}

func (p *plan) result() *Result {
	return &Result{
		Info:          p.info,
		StrippedSize:  int64(p.strippedSz),
		DebugSize:     int64(p.dbgSize),
		Removed:       p.removed,
		DebugSections: p.debugSections(),
	}
}

// debugSections lists the non-allocated sections the debug file keeps
// contents of, sorted.
func (p *plan) debugSections() []string {
	var out []string
	for i := range p.dbg {
		o := &p.dbg[i]
		if i == 0 || i == p.f.shstrndx || o.kind != kindCopy || o.hdr.alloc() || o.hdr.size == 0 {
			continue
		}
		out = append(out, p.f.sects[i].name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// emitter writes an output file sequentially and tracks the position.
type emitter struct {
	f   *file
	w   *bufio.Writer
	pos uint64
	buf []byte
}

func newEmitter(f *file, w io.Writer) *emitter {
	return &emitter{f: f, w: bufio.NewWriterSize(w, 256<<10), buf: make([]byte, 256<<10)}
}

func (e *emitter) write(b []byte) error {
	n, err := e.w.Write(b)
	e.pos += uint64(n)
	return err
}

// padTo writes zero bytes up to offset off.
func (e *emitter) padTo(off uint64) error {
	if off < e.pos {
		return fmt.Errorf("internal error: layout goes backwards (%#x < %#x)", off, e.pos)
	}
	clear(e.buf)
	for e.pos < off {
		if err := e.write(e.buf[:min(uint64(len(e.buf)), off-e.pos)]); err != nil {
			return err
		}
	}
	return nil
}

// copyRange copies input bytes [off, off+n).
func (e *emitter) copyRange(off, n uint64) error {
	for n > 0 {
		b := e.buf[:min(uint64(len(e.buf)), n)]
		if err := e.f.readAt(b, off); err != nil {
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

// header returns the input ELF header with the section table fields and
// e_phoff replaced.
func (p *plan) header(phoff, shoff uint64, shnum int, shstrndx uint32) ([]byte, error) {
	f := p.f
	h := make([]byte, f.ehsize)
	if err := f.readAt(h, 0); err != nil {
		return nil, err
	}
	n, x := uint16(shnum), uint16(shstrndx)
	if shnum >= shnLoreserve {
		n = 0
	}
	if shstrndx >= shnLoreserve {
		x = shnXindex
	}
	bo := f.bo
	if f.is64 {
		bo.PutUint64(h[32:], phoff)
		bo.PutUint64(h[40:], shoff)
		bo.PutUint16(h[60:], n)
		bo.PutUint16(h[62:], x)
	} else {
		bo.PutUint32(h[28:], uint32(phoff))
		bo.PutUint32(h[32:], uint32(shoff))
		bo.PutUint16(h[48:], n)
		bo.PutUint16(h[50:], x)
	}
	return h, nil
}

// writeShdrs writes the section header table at off.
func (e *emitter) writeShdrs(off uint64, out []outSect) error {
	if err := e.padTo(off); err != nil {
		return err
	}
	var b []byte
	for i := range out {
		b = e.f.encodeShdr(b[:0], &out[i].hdr)
		for uint64(len(b)) < e.f.shentsize {
			b = append(b, 0)
		}
		if err := e.write(b); err != nil {
			return err
		}
	}
	return nil
}

// writeDebug writes the debug file and returns its CRC32.
func (p *plan) writeDebug(w io.Writer) (uint32, error) {
	f := p.f
	crc := crc32.NewIEEE()
	e := newEmitter(f, io.MultiWriter(w, crc))
	h, err := p.header(p.dbgPhoff, p.dbgShoff, len(f.sects), uint32(f.shstrndx))
	if err != nil {
		return 0, err
	}
	// The section count and name index stay as in the input, including
	// extended numbering held in section header 0.
	if f.is64 {
		copyHeaderField(h, f, 60, 4)
	} else {
		copyHeaderField(h, f, 48, 4)
	}
	if err := e.write(h); err != nil {
		return 0, err
	}
	if len(p.dbgProgs) > 0 {
		if err := e.padTo(p.dbgPhoff); err != nil {
			return 0, err
		}
		var b []byte
		for i := range p.dbgProgs {
			b = f.encodePhdr(b[:0], &p.dbgProgs[i])
			for uint64(len(b)) < f.phentsize {
				b = append(b, 0)
			}
			if err := e.write(b); err != nil {
				return 0, err
			}
		}
	}
	for i := range p.dbg {
		o := &p.dbg[i]
		if o.kind != kindCopy || o.hdr.size == 0 {
			continue
		}
		if err := e.padTo(o.hdr.off); err != nil {
			return 0, err
		}
		if err := e.copyRange(f.sects[o.old].off, o.hdr.size); err != nil {
			return 0, err
		}
	}
	if err := e.writeShdrs(p.dbgShoff, p.dbg); err != nil {
		return 0, err
	}
	if err := e.w.Flush(); err != nil {
		return 0, err
	}
	if e.pos != p.dbgSize {
		return 0, fmt.Errorf("internal error: debug file is %d bytes, planned %d", e.pos, p.dbgSize)
	}
	return crc.Sum32(), nil
}

// copyHeaderField restores n bytes of the input ELF header at off in h.
func copyHeaderField(h []byte, f *file, off, n int) {
	b := make([]byte, n)
	if f.readAt(b, uint64(off)) == nil {
		copy(h[off:], b)
	}
}

// writeStripped writes the stripped file; crc is the debug file's CRC32
// for .gnu_debuglink.
func (p *plan) writeStripped(w io.Writer, crc uint32) error {
	f := p.f
	e := newEmitter(f, w)
	h, err := p.header(f.phoff, p.shoff, len(p.out), p.newIdx[f.shstrndx])
	if err != nil {
		return err
	}
	if err := e.write(h); err != nil {
		return err
	}
	if err := e.copyRange(f.ehsize, p.prefixEnd-f.ehsize); err != nil {
		return err
	}
	var order []int
	for j := range p.out {
		if p.out[j].kind != kindNone && p.out[j].hdr.size > 0 {
			order = append(order, j)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmpU64(p.out[a].hdr.off, p.out[b].hdr.off) })
	for _, j := range order {
		o := &p.out[j]
		if err := e.padTo(o.hdr.off); err != nil {
			return err
		}
		if err := p.writeContents(e, o, crc); err != nil {
			return err
		}
	}
	if err := e.writeShdrs(p.shoff, p.out); err != nil {
		return err
	}
	if err := e.w.Flush(); err != nil {
		return err
	}
	if e.pos != p.strippedSz {
		return fmt.Errorf("internal error: stripped file is %d bytes, planned %d", e.pos, p.strippedSz)
	}
	return nil
}

func (p *plan) writeContents(e *emitter, o *outSect, crc uint32) error {
	f := p.f
	switch o.kind {
	case kindCopy:
		return e.copyRange(f.sects[o.old].off, o.hdr.size)
	case kindData:
		return e.write(o.data)
	case kindDebuglink:
		return e.write(f.bo.AppendUint32(slices.Clone(p.linkData), crc))
	case kindSymtab, kindShndx:
		s := &f.sects[p.symtab]
		es := f.stdSymentsize()
		var out []byte
		var werr error
		err := p.eachChunk(s.off, s.size, es, func(k uint64, b []byte) {
			shOff := f.symShndxOff()
			sh, x, drop, _ := p.mapShndx(f.bo.Uint16(b[shOff:]), k)
			if drop || werr != nil {
				return
			}
			if o.kind == kindShndx {
				out = f.bo.AppendUint32(out, x)
			} else {
				f.bo.PutUint16(b[shOff:], sh)
				if p.oldStrtab != nil {
					f.bo.PutUint32(b, p.strOff[cstring(p.oldStrtab, f.bo.Uint32(b))])
				}
				out = append(out, b...)
			}
			if len(out) >= 64<<10 {
				werr = e.write(out)
				out = out[:0]
			}
		})
		if err != nil {
			return err
		}
		if werr != nil {
			return werr
		}
		return e.write(out)
	case kindRel:
		s := &f.sects[o.old]
		var werr error
		err := p.eachChunk(s.off, s.size, f.relEntsize(s.typ), func(_ uint64, b []byte) {
			n, _ := p.mapSym(f.relSym(b))
			f.setRelSym(b, n)
			if werr == nil {
				werr = e.write(b)
			}
		})
		if err != nil {
			return err
		}
		return werr
	}
	return nil
}

// splitPlan checks debugName, parses r and plans its split: what Split and
// SplitLinked share. A file with nothing to strip is ErrUnchanged.
func splitPlan(r io.ReaderAt, size int64, mode Mode, debugName string) (*plan, error) {
	if debugName == "" || strings.ContainsAny(debugName, "/\x00") {
		return nil, fmt.Errorf("elf: debug file name %q is not a base name", debugName)
	}
	f, err := parse(r, size)
	if err != nil {
		return nil, err
	}
	p, err := newPlan(f, mode, debugName, true)
	if err != nil {
		return nil, err
	}
	if p.reason != "" {
		return nil, unchanged(p.reason)
	}
	return p, nil
}
