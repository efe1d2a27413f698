package elf

import (
	"bufio"
	"crypto/sha256"
	stdelf "debug/elf"
	"errors"
	"fmt"
	"hash"
	"io"
)

// errMalformed stops a digest: the file is compared byte for byte instead.
var errMalformed = errors.New("malformed ELF file")

// Kept is the one definition of "the same ELF file but its debug
// information" that the rewrite checks its own output with and that
// verify compares with: two files are that when their Kept sums are
// equal. ok is false when r is not an ELF file this definition covers
// (not ELF, malformed, no loadable segment and not relocatable); then
// only identical bytes are the same file. Only errors reading r are
// returned.
//
//   - A file with PT_LOAD segments (executables, shared objects): the ELF
//     identity, every program header, and the bytes of every PT_LOAD, in
//     program header order, with e_shoff, e_shnum and e_shstrndx read as
//     zero where a segment covers them.
//   - A relocatable object (no segments; kernel modules, the only
//     relocatable files a rewrite strips): every section that is not
//     debug information, symbol or string table, in order, with its header
//     and bytes; the relocations of those sections with their symbols
//     resolved (so renumbered symbol tables compare equal); section groups
//     by member names; and the symbols, except FILE symbols and symbols of
//     debug sections.
//   - Both: the bytes after the end of the ELF data (the furthest of the
//     headers, segments, sections and section header table), where
//     self-extracting programs, AppImages and PyInstaller programs keep
//     their payload, with their length.
func Kept(r io.ReaderAt, size int64) (sum [sha256.Size]byte, ok bool, err error) {
	defer func() {
		if p := recover(); p != nil { // debug/elf on hostile input
			sum, ok, err = [sha256.Size]byte{}, false, nil
		}
	}()
	ef, err := stdelf.NewFile(io.NewSectionReader(r, 0, size))
	if err != nil {
		return sum, false, nil
	}
	d := &elfDigester{f: r, ef: ef, size: size, h: sha256.New()}
	loads := 0
	for _, p := range ef.Progs {
		if p.Type == stdelf.PT_LOAD {
			loads++
		}
	}
	switch {
	case loads > 0:
		err = d.segments()
	case ef.Type == stdelf.ET_REL:
		err = d.sections()
	default:
		return sum, false, nil
	}
	if err == nil {
		err = d.trailer()
	}
	if errors.Is(err, errMalformed) {
		return sum, false, nil
	}
	if err != nil {
		return sum, false, err
	}
	d.h.Sum(sum[:0])
	return sum, true, nil
}

// DataEnd returns the end of the ELF data of the file in r: the furthest
// end of the ELF header, the program and section header tables, the
// segments and the sections with contents. Bytes after it (an appended
// payload) belong to no part of the ELF file.
func DataEnd(r io.ReaderAt, size int64) (int64, error) {
	f, err := parse(r, size)
	if err != nil {
		return 0, err
	}
	return int64(f.dataEnd()), nil
}

func (f *file) dataEnd() uint64 {
	end := f.ehsize
	if len(f.progs) > 0 {
		end = max(end, f.phoff+uint64(len(f.progs))*f.phentsize)
	}
	for _, ph := range f.progs {
		if ph.filesz > 0 {
			end = max(end, ph.off+ph.filesz)
		}
	}
	if f.shoff != 0 {
		n := max(uint64(len(f.sects)), 1)
		end = max(end, f.shoff+n*f.shentsize)
	}
	for i := 1; i < len(f.sects); i++ {
		if s := &f.sects[i]; s.hasBytes() {
			end = max(end, s.off+s.size)
		}
	}
	return min(end, uint64(f.size))
}

// trailer hashes the bytes after the ELF data.
func (d *elfDigester) trailer() error {
	f, err := parse(d.f, d.size)
	if err != nil {
		return errMalformed
	}
	end := int64(f.dataEnd())
	fmt.Fprintf(d.h, "trailer %d\n", d.size-end)
	return d.copyRange(end, d.size-end, nil)
}

type elfDigester struct {
	f    io.ReaderAt
	ef   *stdelf.File
	size int64
	h    hash.Hash
	buf  []byte
}

// ident hashes the ELF header fields that say what the file is.
func (d *elfDigester) ident(kind string) error {
	ef := d.ef
	fmt.Fprintf(d.h, "%s\n%v %v %v %d %v %v %#x\n", kind, ef.Class, ef.Data, ef.OSABI, ef.ABIVersion, ef.Type, ef.Machine, ef.Entry)
	// e_flags (ABI flags of ARM, MIPS, RISC-V…): debug/elf does not expose it.
	off := int64(0x24)
	if ef.Class == stdelf.ELFCLASS64 {
		off = 0x30
	}
	return d.copyRange(off, 4, nil)
}

// shFields returns the file ranges of e_shoff, e_shnum and e_shstrndx.
func shFields(c stdelf.Class) [][2]int64 {
	if c == stdelf.ELFCLASS64 {
		return [][2]int64{{0x28, 0x30}, {0x3c, 0x40}}
	}
	return [][2]int64{{0x20, 0x24}, {0x30, 0x34}}
}

func (d *elfDigester) segments() error {
	if err := d.ident("segments"); err != nil {
		return err
	}
	for _, p := range d.ef.Progs {
		fmt.Fprintf(d.h, "%v %v %#x %#x %#x %#x %#x %#x\n", p.Type, p.Flags, p.Off, p.Vaddr, p.Paddr, p.Filesz, p.Memsz, p.Align)
	}
	zero := shFields(d.ef.Class)
	for _, p := range d.ef.Progs {
		if p.Type != stdelf.PT_LOAD {
			continue
		}
		if p.Off > uint64(d.size) || p.Filesz > uint64(d.size)-p.Off {
			return errMalformed
		}
		if err := d.copyRange(int64(p.Off), int64(p.Filesz), zero); err != nil {
			return err
		}
	}
	return nil
}

// copyRange hashes the n bytes of the file at off, with the bytes in the
// zero ranges read as zero.
func (d *elfDigester) copyRange(off, n int64, zero [][2]int64) error {
	if off < 0 || n < 0 || off > d.size || n > d.size-off {
		return errMalformed
	}
	if d.buf == nil {
		d.buf = make([]byte, 64<<10)
	}
	for end := off + n; off < end; {
		b := d.buf[:min(int64(len(d.buf)), end-off)]
		if _, err := d.f.ReadAt(b, off); err != nil {
			return err
		}
		for _, z := range zero {
			lo, hi := max(z[0], off), min(z[1], off+int64(len(b)))
			for i := lo; i < hi; i++ {
				b[i-off] = 0
			}
		}
		d.h.Write(b)
		off += int64(len(b))
	}
	return nil
}

func (d *elfDigester) sections() error {
	if err := d.ident("sections"); err != nil {
		return err
	}
	ef := d.ef
	syms, err := ef.Symbols()
	if err != nil && !errors.Is(err, stdelf.ErrNoSymbols) {
		return errMalformed
	}
	for i, s := range ef.Sections {
		switch {
		case i == 0 || isDebugName(s.Name) || s.Name == ".gnu_debuglink":
		case s.Type == stdelf.SHT_SYMTAB || s.Type == stdelf.SHT_SYMTAB_SHNDX:
		case s.Type == stdelf.SHT_STRTAB && s.Flags&stdelf.SHF_ALLOC == 0:
			// .strtab and .shstrtab: the names they hold are hashed where used.
		case s.Type == stdelf.SHT_REL || s.Type == stdelf.SHT_RELA:
			if err := d.relocations(s, syms); err != nil {
				return err
			}
		case s.Type == stdelf.SHT_GROUP:
			if err := d.group(s); err != nil {
				return err
			}
		default:
			fmt.Fprintf(d.h, "section %q %v %v %#x %#x %#x %#x\n", s.Name, s.Type, s.Flags, s.Addr, s.Addralign, s.Entsize, s.Size)
			if s.Type != stdelf.SHT_NOBITS {
				if err := d.copyRange(int64(s.Offset), int64(s.FileSize), nil); err != nil {
					return err
				}
			}
		}
	}
	for _, sym := range syms {
		if stdelf.ST_TYPE(sym.Info) == stdelf.STT_FILE {
			continue
		}
		sec := d.sectionName(sym.Section)
		if isDebugName(sec) {
			continue
		}
		fmt.Fprintf(d.h, "symbol %q %#x %#x %q %#x %#x\n", sym.Name, sym.Info, sym.Other, sec, sym.Value, sym.Size)
	}
	return nil
}

// sectionName names a section index, special indexes included.
func (d *elfDigester) sectionName(i stdelf.SectionIndex) string {
	switch {
	case i == stdelf.SHN_UNDEF:
		return "UND"
	case i >= stdelf.SHN_LORESERVE:
		return fmt.Sprintf("%#x", uint16(i))
	case int(i) < len(d.ef.Sections):
		return d.ef.Sections[i].Name
	}
	return fmt.Sprintf("bad index %d", i)
}

// relocations hashes the relocations of a section that is kept, each with
// its symbol described rather than numbered.
func (d *elfDigester) relocations(s *stdelf.Section, syms []stdelf.Symbol) error {
	if int(s.Info) >= len(d.ef.Sections) {
		return errMalformed
	}
	target := d.ef.Sections[s.Info].Name
	if s.Info != 0 && isDebugName(target) {
		return nil
	}
	if s.Flags&stdelf.SHF_COMPRESSED != 0 || s.Offset > uint64(d.size) || s.FileSize > uint64(d.size)-s.Offset {
		return errMalformed
	}
	is64 := d.ef.Class == stdelf.ELFCLASS64
	rela := s.Type == stdelf.SHT_RELA
	entSize := map[[2]bool]int{{false, false}: 8, {false, true}: 12, {true, false}: 16, {true, true}: 24}[[2]bool{is64, rela}]
	fmt.Fprintf(d.h, "relocations %q for %q %v\n", s.Name, target, s.Flags)
	r := bufio.NewReader(io.NewSectionReader(d.f, int64(s.Offset), int64(s.FileSize)))
	bo := d.ef.ByteOrder
	e := make([]byte, entSize)
	for n := s.FileSize / uint64(entSize); n > 0; n-- {
		if _, err := io.ReadFull(r, e); err != nil {
			return err
		}
		var off, info, addend uint64
		var sym, typ uint64
		if is64 {
			off, info = bo.Uint64(e), bo.Uint64(e[8:])
			sym, typ = info>>32, info&0xffffffff
			if d.ef.Machine == stdelf.EM_MIPS && d.ef.Data == stdelf.ELFDATA2LSB {
				// Little-endian MIPS64 r_info: r_sym, then the types.
				sym, typ = info&0xffffffff, info>>32
			}
			if rela {
				addend = bo.Uint64(e[16:])
			}
		} else {
			off, info = uint64(bo.Uint32(e)), uint64(bo.Uint32(e[4:]))
			sym, typ = info>>8, info&0xff
			if rela {
				addend = uint64(bo.Uint32(e[8:]))
			}
		}
		desc := "none"
		if sym > 0 {
			if sym > uint64(len(syms)) {
				return errMalformed
			}
			y := syms[sym-1]
			desc = fmt.Sprintf("%q %#x %q %#x", y.Name, y.Info, d.sectionName(y.Section), y.Value)
		}
		fmt.Fprintf(d.h, "%#x %#x %#x %s\n", off, typ, addend, desc)
	}
	return nil
}

// group hashes a section group (COMDAT) by the names of its members that
// are not debug information.
func (d *elfDigester) group(s *stdelf.Section) error {
	if s.Offset > uint64(d.size) || s.FileSize > uint64(d.size)-s.Offset || s.FileSize%4 != 0 {
		return errMalformed
	}
	fmt.Fprintf(d.h, "group %q %v\n", s.Name, s.Flags)
	r := bufio.NewReader(io.NewSectionReader(d.f, int64(s.Offset), int64(s.FileSize)))
	var w [4]byte
	for i := uint64(0); i < s.FileSize/4; i++ {
		if _, err := io.ReadFull(r, w[:]); err != nil {
			return err
		}
		v := d.ef.ByteOrder.Uint32(w[:])
		if i == 0 {
			fmt.Fprintf(d.h, "flags %#x\n", v)
			continue
		}
		if name := d.sectionName(stdelf.SectionIndex(v)); !isDebugName(name) {
			fmt.Fprintf(d.h, "member %q\n", name)
		}
	}
	return nil
}
