package elf

import (
	"bytes"
	"encoding/binary"
	"io"
	"slices"
	"strings"

	stdelf "debug/elf"
)

// section is one section header as it is in the file, plus its name.
type section struct {
	name    string
	nameOff uint32
	typ     uint32
	flags   uint64
	addr    uint64
	off     uint64
	size    uint64
	link    uint32
	info    uint32
	align   uint64
	entsize uint64
}

// hasBytes reports whether the section occupies bytes in the file.
func (s *section) hasBytes() bool {
	return s.typ != uint32(stdelf.SHT_NOBITS) && s.typ != uint32(stdelf.SHT_NULL)
}

func (s *section) alloc() bool { return s.flags&uint64(stdelf.SHF_ALLOC) != 0 }

// prog is one program header.
type prog struct {
	typ, flags           uint32
	off, vaddr, paddr    uint64
	filesz, memsz, align uint64
}

// byteOrder is binary.LittleEndian or binary.BigEndian.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// file is a parsed ELF file: headers only, contents stay in r.
type file struct {
	r    io.ReaderAt
	size int64

	is64    bool
	bo      byteOrder
	ident   [16]byte
	typ     uint16
	machine uint16
	entry   uint64
	flags   uint32
	ehsize  uint64

	phoff     uint64
	phentsize uint64
	progs     []prog

	shoff     uint64
	shentsize uint64
	shstrndx  int
	sects     []section
}

const (
	shnLoreserve = 0xff00
	shnXindex    = 0xffff
)

func (f *file) class() int {
	if f.is64 {
		return 64
	}
	return 32
}

// readAt reads exactly len(b) bytes at off, or fails with a FormatError.
func (f *file) readAt(b []byte, off uint64) error {
	if !f.inFile(off, uint64(len(b))) {
		return formatErr(off, "read of %d bytes past end of file (size %d)", len(b), f.size)
	}
	if _, err := f.r.ReadAt(b, int64(off)); err != nil {
		if err == io.EOF {
			return formatErr(off, "unexpected end of file")
		}
		return err
	}
	return nil
}

// inFile reports whether [off, off+n) lies inside the file.
func (f *file) inFile(off, n uint64) bool {
	end := off + n
	return end >= off && end <= uint64(f.size)
}

// parse reads and validates the ELF, program and section headers.
func parse(r io.ReaderAt, size int64) (*file, error) {
	f := &file{r: r, size: size}
	if size < 16 {
		return nil, notELF("file too short")
	}
	if _, err := r.ReadAt(f.ident[:], 0); err != nil {
		return nil, notELF("cannot read identification")
	}
	if string(f.ident[:4]) != stdelf.ELFMAG {
		return nil, notELF("no ELF magic")
	}
	switch stdelf.Class(f.ident[stdelf.EI_CLASS]) {
	case stdelf.ELFCLASS32:
	case stdelf.ELFCLASS64:
		f.is64 = true
	default:
		return nil, formatErr(stdelf.EI_CLASS, "unknown ELF class %d", f.ident[stdelf.EI_CLASS])
	}
	switch stdelf.Data(f.ident[stdelf.EI_DATA]) {
	case stdelf.ELFDATA2LSB:
		f.bo = binary.LittleEndian
	case stdelf.ELFDATA2MSB:
		f.bo = binary.BigEndian
	default:
		return nil, formatErr(stdelf.EI_DATA, "unknown ELF data encoding %d", f.ident[stdelf.EI_DATA])
	}
	if f.ident[stdelf.EI_VERSION] != byte(stdelf.EV_CURRENT) {
		return nil, formatErr(stdelf.EI_VERSION, "unknown ELF version %d", f.ident[stdelf.EI_VERSION])
	}
	var hdr [64]byte
	h := hdr[:52]
	if f.is64 {
		h = hdr[:64]
	}
	if err := f.readAt(h, 0); err != nil {
		return nil, err
	}
	bo := f.bo
	f.typ = bo.Uint16(h[16:])
	f.machine = bo.Uint16(h[18:])
	var shnum, shstrndx uint64
	var phnum uint64
	if f.is64 {
		f.entry = bo.Uint64(h[24:])
		f.phoff = bo.Uint64(h[32:])
		f.shoff = bo.Uint64(h[40:])
		f.flags = bo.Uint32(h[48:])
		f.ehsize = uint64(bo.Uint16(h[52:]))
		f.phentsize = uint64(bo.Uint16(h[54:]))
		phnum = uint64(bo.Uint16(h[56:]))
		f.shentsize = uint64(bo.Uint16(h[58:]))
		shnum = uint64(bo.Uint16(h[60:]))
		shstrndx = uint64(bo.Uint16(h[62:]))
	} else {
		f.entry = uint64(bo.Uint32(h[24:]))
		f.phoff = uint64(bo.Uint32(h[28:]))
		f.shoff = uint64(bo.Uint32(h[32:]))
		f.flags = bo.Uint32(h[36:])
		f.ehsize = uint64(bo.Uint16(h[40:]))
		f.phentsize = uint64(bo.Uint16(h[42:]))
		phnum = uint64(bo.Uint16(h[44:]))
		f.shentsize = uint64(bo.Uint16(h[46:]))
		shnum = uint64(bo.Uint16(h[48:]))
		shstrndx = uint64(bo.Uint16(h[50:]))
	}
	if f.ehsize < uint64(len(h)) || f.ehsize > uint64(size) {
		return nil, formatErr(f.hdrOff(52, 40), "bad e_ehsize %d", f.ehsize)
	}

	// Program headers.
	if phnum > 0 {
		if f.phentsize < f.stdPhentsize() {
			return nil, formatErr(f.hdrOff(54, 42), "bad e_phentsize %d", f.phentsize)
		}
		if !f.inFile(f.phoff, phnum*f.phentsize) {
			return nil, formatErr(f.hdrOff(32, 28), "program header table past end of file")
		}
		buf := make([]byte, phnum*f.phentsize)
		if err := f.readAt(buf, f.phoff); err != nil {
			return nil, err
		}
		f.progs = make([]prog, phnum)
		for i := range f.progs {
			p := &f.progs[i]
			b := buf[uint64(i)*f.phentsize:]
			if f.is64 {
				p.typ, p.flags = bo.Uint32(b), bo.Uint32(b[4:])
				p.off, p.vaddr, p.paddr = bo.Uint64(b[8:]), bo.Uint64(b[16:]), bo.Uint64(b[24:])
				p.filesz, p.memsz, p.align = bo.Uint64(b[32:]), bo.Uint64(b[40:]), bo.Uint64(b[48:])
			} else {
				p.typ = bo.Uint32(b)
				p.off, p.vaddr, p.paddr = uint64(bo.Uint32(b[4:])), uint64(bo.Uint32(b[8:])), uint64(bo.Uint32(b[12:]))
				p.filesz, p.memsz = uint64(bo.Uint32(b[16:])), uint64(bo.Uint32(b[20:]))
				p.flags, p.align = bo.Uint32(b[24:]), uint64(bo.Uint32(b[28:]))
			}
			if p.filesz > 0 && !f.inFile(p.off, p.filesz) {
				return nil, formatErr(f.phoff+uint64(i)*f.phentsize, "program header %d: segment [%#x, +%#x) past end of file", i, p.off, p.filesz)
			}
		}
	}

	// Section headers.
	if f.shoff == 0 {
		return f, nil
	}
	if f.shentsize < f.stdShentsize() {
		return nil, formatErr(f.hdrOff(58, 46), "bad e_shentsize %d", f.shentsize)
	}
	if !f.inFile(f.shoff, f.shentsize) {
		return nil, formatErr(f.hdrOff(40, 32), "section header table offset %#x past end of file", f.shoff)
	}
	first, err := f.readShdr(0)
	if err != nil {
		return nil, err
	}
	if shnum == 0 {
		shnum = first.size // extended numbering
	}
	if shstrndx == shnXindex {
		shstrndx = uint64(first.link)
	}
	if shnum == 0 {
		return f, nil
	}
	if shnum > uint64(size)/f.shentsize || !f.inFile(f.shoff, shnum*f.shentsize) {
		return nil, formatErr(f.hdrOff(40, 32), "section header table (%d entries at %#x) past end of file", shnum, f.shoff)
	}
	if shstrndx >= shnum {
		return nil, formatErr(f.hdrOff(62, 50), "section name table index %d out of range (%d sections)", shstrndx, shnum)
	}
	f.shstrndx = int(shstrndx)
	buf := make([]byte, shnum*f.shentsize)
	if err := f.readAt(buf, f.shoff); err != nil {
		return nil, err
	}
	f.sects = make([]section, shnum)
	for i := range f.sects {
		s := &f.sects[i]
		f.decodeShdr(s, buf[uint64(i)*f.shentsize:])
		if i > 0 && s.hasBytes() && !f.inFile(s.off, s.size) {
			return nil, formatErr(f.shoff+uint64(i)*f.shentsize, "section %d: contents [%#x, +%#x) past end of file", i, s.off, s.size)
		}
	}
	// Sections with contents must not overlap: that keeps every pass over
	// section contents linear in the file size, whatever the input.
	var spans []int
	for i := 1; i < len(f.sects); i++ {
		if s := &f.sects[i]; s.hasBytes() && s.size > 0 {
			spans = append(spans, i)
		}
	}
	slices.SortFunc(spans, func(a, b int) int { return cmpU64(f.sects[a].off, f.sects[b].off) })
	for k := 1; k < len(spans); k++ {
		a, b := &f.sects[spans[k-1]], &f.sects[spans[k]]
		if a.off+a.size > b.off {
			return nil, formatErr(f.shoff+uint64(spans[k])*f.shentsize, "sections %d and %d overlap", spans[k-1], spans[k])
		}
	}
	// Section names.
	strs := &f.sects[f.shstrndx]
	if f.shstrndx != 0 {
		if strs.typ != uint32(stdelf.SHT_STRTAB) || !strs.hasBytes() {
			return nil, formatErr(f.shoff+uint64(f.shstrndx)*f.shentsize, "section name table has type %d", strs.typ)
		}
		names := make([]byte, strs.size)
		if err := f.readAt(names, strs.off); err != nil {
			return nil, err
		}
		for i := range f.sects {
			s := &f.sects[i]
			if uint64(s.nameOff) >= uint64(len(names)) {
				if s.nameOff == 0 && len(names) == 0 {
					continue
				}
				return nil, formatErr(f.shoff+uint64(i)*f.shentsize, "section %d: name offset %d outside section name table", i, s.nameOff)
			}
			n := names[s.nameOff:]
			if j := bytes.IndexByte(n, 0); j >= 0 {
				n = n[:j]
			}
			s.name = strings.Clone(string(n))
		}
	}
	return f, nil
}

// hdrOff picks the offset of an ELF header field for the file's class.
func (f *file) hdrOff(off64, off32 uint64) uint64 {
	if f.is64 {
		return off64
	}
	return off32
}

func (f *file) stdPhentsize() uint64 {
	if f.is64 {
		return 56
	}
	return 32
}

func (f *file) stdShentsize() uint64 {
	if f.is64 {
		return 64
	}
	return 40
}

func (f *file) stdSymentsize() uint64 {
	if f.is64 {
		return 24
	}
	return 16
}

func (f *file) readShdr(i uint64) (section, error) {
	var s section
	b := make([]byte, f.stdShentsize())
	if err := f.readAt(b, f.shoff+i*f.shentsize); err != nil {
		return s, err
	}
	f.decodeShdr(&s, b)
	return s, nil
}

func (f *file) decodeShdr(s *section, b []byte) {
	bo := f.bo
	if f.is64 {
		s.nameOff, s.typ = bo.Uint32(b), bo.Uint32(b[4:])
		s.flags, s.addr, s.off, s.size = bo.Uint64(b[8:]), bo.Uint64(b[16:]), bo.Uint64(b[24:]), bo.Uint64(b[32:])
		s.link, s.info = bo.Uint32(b[40:]), bo.Uint32(b[44:])
		s.align, s.entsize = bo.Uint64(b[48:]), bo.Uint64(b[56:])
		return
	}
	s.nameOff, s.typ = bo.Uint32(b), bo.Uint32(b[4:])
	s.flags, s.addr = uint64(bo.Uint32(b[8:])), uint64(bo.Uint32(b[12:]))
	s.off, s.size = uint64(bo.Uint32(b[16:])), uint64(bo.Uint32(b[20:]))
	s.link, s.info = bo.Uint32(b[24:]), bo.Uint32(b[28:])
	s.align, s.entsize = uint64(bo.Uint32(b[32:])), uint64(bo.Uint32(b[36:]))
}

// encodeShdr appends the section header s in the file's class and byte order.
func (f *file) encodeShdr(b []byte, s *section) []byte {
	bo := f.bo
	if f.is64 {
		b = bo.AppendUint32(b, s.nameOff)
		b = bo.AppendUint32(b, s.typ)
		b = bo.AppendUint64(b, s.flags)
		b = bo.AppendUint64(b, s.addr)
		b = bo.AppendUint64(b, s.off)
		b = bo.AppendUint64(b, s.size)
		b = bo.AppendUint32(b, s.link)
		b = bo.AppendUint32(b, s.info)
		b = bo.AppendUint64(b, s.align)
		return bo.AppendUint64(b, s.entsize)
	}
	b = bo.AppendUint32(b, s.nameOff)
	b = bo.AppendUint32(b, s.typ)
	b = bo.AppendUint32(b, uint32(s.flags))
	b = bo.AppendUint32(b, uint32(s.addr))
	b = bo.AppendUint32(b, uint32(s.off))
	b = bo.AppendUint32(b, uint32(s.size))
	b = bo.AppendUint32(b, s.link)
	b = bo.AppendUint32(b, s.info)
	b = bo.AppendUint32(b, uint32(s.align))
	return bo.AppendUint32(b, uint32(s.entsize))
}

// encodePhdr appends the program header p.
func (f *file) encodePhdr(b []byte, p *prog) []byte {
	bo := f.bo
	if f.is64 {
		b = bo.AppendUint32(b, p.typ)
		b = bo.AppendUint32(b, p.flags)
		b = bo.AppendUint64(b, p.off)
		b = bo.AppendUint64(b, p.vaddr)
		b = bo.AppendUint64(b, p.paddr)
		b = bo.AppendUint64(b, p.filesz)
		b = bo.AppendUint64(b, p.memsz)
		return bo.AppendUint64(b, p.align)
	}
	b = bo.AppendUint32(b, p.typ)
	b = bo.AppendUint32(b, uint32(p.off))
	b = bo.AppendUint32(b, uint32(p.vaddr))
	b = bo.AppendUint32(b, uint32(p.paddr))
	b = bo.AppendUint32(b, uint32(p.filesz))
	b = bo.AppendUint32(b, uint32(p.memsz))
	b = bo.AppendUint32(b, p.flags)
	return bo.AppendUint32(b, uint32(p.align))
}

// typeName is "EXEC", "DYN", "REL", "CORE" or a number.
func typeName(t uint16) string {
	return strings.TrimPrefix(stdelf.Type(t).String(), "ET_")
}
