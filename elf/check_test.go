package elf

import (
	"bytes"

	"hash/crc32"
	"testing"

	stdelf "debug/elf"
)

// splitBytes runs Split on in and returns the two outputs.
func splitBytes(t testing.TB, in []byte, mode Mode, name string) (stripped, debug []byte, res *Result, err error) {
	t.Helper()
	var s, d bytes.Buffer
	res, err = Split(bytes.NewReader(in), int64(len(in)), mode, name, &s, &d)
	if err != nil {
		if s.Len() != 0 || d.Len() != 0 {
			t.Errorf("Split failed (%v) but wrote %d stripped and %d debug bytes", err, s.Len(), d.Len())
		}
		return nil, nil, nil, err
	}
	if res.StrippedSize != int64(s.Len()) || res.DebugSize != int64(d.Len()) {
		t.Errorf("Result sizes %d/%d, wrote %d/%d", res.StrippedSize, res.DebugSize, s.Len(), d.Len())
	}
	return s.Bytes(), d.Bytes(), res, nil
}

// loadEnd is the end of the bytes that must not change: the ELF and
// program headers and every segment's file contents, read with debug/elf.
func loadEnd(t testing.TB, f *stdelf.File) uint64 {
	t.Helper()
	end := uint64(64)
	if f.Class == stdelf.ELFCLASS32 {
		end = 52
	}
	for _, p := range f.Progs {
		end = max(end, p.Off+p.Filesz)
	}
	return end
}

// headerFieldsThatMayChange lists the byte ranges of e_shoff, e_shnum and
// e_shstrndx.
func headerFieldsThatMayChange(class stdelf.Class) [][2]int {
	if class == stdelf.ELFCLASS64 {
		return [][2]int{{40, 48}, {60, 64}}
	}
	return [][2]int{{32, 36}, {48, 52}}
}

// checkOutputs checks a Split result with debug/elf and by comparing
// bytes: the prefix and every PT_LOAD are unchanged, the section tables
// are what they should be, and .gnu_debuglink names the debug file and
// carries its CRC.
func checkOutputs(t testing.TB, in, stripped, debug []byte, mode Mode, name string) {
	t.Helper()
	fi, err := stdelf.NewFile(bytes.NewReader(in))
	if err != nil {
		t.Fatalf("input: %v", err)
	}
	fs, err := stdelf.NewFile(bytes.NewReader(stripped))
	if err != nil {
		t.Fatalf("stripped output does not parse with debug/elf: %v", err)
	}
	fd, err := stdelf.NewFile(bytes.NewReader(debug))
	if err != nil {
		t.Fatalf("debug output does not parse with debug/elf: %v", err)
	}

	// (1) The prefix, but for three header fields, and every segment.
	end := loadEnd(t, fi)
	if uint64(len(stripped)) < end {
		t.Fatalf("stripped file (%d bytes) shorter than the loaded prefix (%d)", len(stripped), end)
	}
	ma, mb := bytes.Clone(in), bytes.Clone(stripped)
	for _, r := range headerFieldsThatMayChange(fi.Class) {
		clear(ma[r[0]:r[1]])
		clear(mb[r[0]:r[1]])
	}
	a, b := ma[:end], mb[:end]
	if !bytes.Equal(a, b) {
		i := 0
		for a[i] == b[i] {
			i++
		}
		t.Errorf("stripped file differs from the input at byte %#x, inside the loaded prefix [0, %#x)", i, end)
	}
	if len(fs.Progs) != len(fi.Progs) {
		t.Fatalf("stripped file has %d program headers, input %d", len(fs.Progs), len(fi.Progs))
	}
	for i, p := range fi.Progs {
		q := fs.Progs[i]
		if p.ProgHeader != q.ProgHeader {
			t.Errorf("program header %d changed: %+v -> %+v", i, p.ProgHeader, q.ProgHeader)
		}
		if p.Type == stdelf.PT_LOAD && !bytes.Equal(ma[p.Off:p.Off+p.Filesz], mb[q.Off:q.Off+q.Filesz]) {
			t.Errorf("PT_LOAD %d bytes differ", i)
		}
	}

	// Allocated sections are all kept; debug sections are all gone.
	type key struct {
		name string
		addr uint64
	}
	kept := map[key]*stdelf.Section{}
	for _, s := range fs.Sections {
		kept[key{s.Name, s.Addr}] = s
		if s.Flags&stdelf.SHF_ALLOC == 0 && isDebugName(s.Name) {
			t.Errorf("stripped file keeps debug section %s", s.Name)
		}
		if mode != Debug && fi.Type != stdelf.ET_REL && s.Type == stdelf.SHT_SYMTAB {
			t.Errorf("stripped file keeps .symtab in mode %v", mode)
		}
	}
	for _, s := range fi.Sections {
		k, ok := kept[key{s.Name, s.Addr}]
		if s.Flags&stdelf.SHF_ALLOC != 0 && !ok {
			t.Errorf("allocated section %s removed", s.Name)
		}
		if !ok || s.Type == stdelf.SHT_NOBITS || s.Type == stdelf.SHT_NULL || s.Name == debuglinkName || s.Name == ".shstrtab" {
			continue
		}
		switch s.Type {
		case stdelf.SHT_SYMTAB, stdelf.SHT_STRTAB, stdelf.SHT_REL, stdelf.SHT_RELA, stdelf.SHT_GROUP, stdelf.SHT_SYMTAB_SHNDX:
			continue // may be rewritten
		}
		if k.Type != s.Type || k.Flags != s.Flags || k.Size != s.Size || k.Addralign != s.Addralign || k.Entsize != s.Entsize {
			t.Errorf("section %s header changed: %+v -> %+v", s.Name, s.SectionHeader, k.SectionHeader)
			continue
		}
		if !bytes.Equal(raw(in, s), raw(stripped, k)) {
			t.Errorf("section %s contents changed", s.Name)
		}
	}

	// (5) .gnu_debuglink.
	dl := fs.Section(debuglinkName)
	if dl == nil {
		t.Fatalf("stripped file has no %s", debuglinkName)
	}
	if dl.Type != stdelf.SHT_PROGBITS || dl.Flags != 0 || dl.Addralign != 4 {
		t.Errorf("%s header %+v", debuglinkName, dl.SectionHeader)
	}
	link := raw(stripped, dl)
	if len(link)%4 != 0 || len(link) < 8 {
		t.Fatalf("%s is %d bytes", debuglinkName, len(link))
	}
	if got := string(link[:bytes.IndexByte(link, 0)]); got != name {
		t.Errorf("%s names %q, want %q", debuglinkName, got, name)
	}
	if got, want := fi.ByteOrder.Uint32(link[len(link)-4:]), crc32.ChecksumIEEE(debug); got != want {
		t.Errorf("%s CRC %#08x, crc32 of the debug file %#08x", debuglinkName, got, want)
	}

	// The debug file: the same section table, contents as objcopy
	// --only-keep-debug leaves them.
	if fd.Type != fi.Type || fd.Machine != fi.Machine || fd.Entry != fi.Entry || fd.Class != fi.Class || fd.Data != fi.Data {
		t.Errorf("debug file header %+v, input %+v", fd.FileHeader, fi.FileHeader)
	}
	if len(fd.Progs) != len(fi.Progs) {
		t.Errorf("debug file has %d program headers, input %d", len(fd.Progs), len(fi.Progs))
	}
	for i, p := range fi.Progs {
		if i >= len(fd.Progs) {
			break
		}
		q := fd.Progs[i]
		if q.Type != p.Type || q.Vaddr != p.Vaddr || q.Memsz != p.Memsz || q.Flags != p.Flags || q.Filesz > p.Filesz {
			t.Errorf("debug file program header %d: %+v, input %+v", i, q.ProgHeader, p.ProgHeader)
		}
		if q.Filesz > 0 && q.Off+q.Filesz > uint64(len(debug)) {
			t.Errorf("debug file program header %d points past the end of the file", i)
		}
	}
	if len(fd.Sections) != len(fi.Sections) {
		t.Fatalf("debug file has %d sections, input %d", len(fd.Sections), len(fi.Sections))
	}
	for i, s := range fi.Sections {
		d := fd.Sections[i]
		if d.Name != s.Name || d.Addr != s.Addr || d.Flags != s.Flags || d.Link != s.Link || d.Info != s.Info || d.Addralign != s.Addralign || d.Entsize != s.Entsize || d.Size != s.Size {
			t.Errorf("debug section %d: %+v, input %+v", i, d.SectionHeader, s.SectionHeader)
			continue
		}
		switch {
		case s.Type == stdelf.SHT_NOBITS || s.Type == stdelf.SHT_NULL:
		case s.Flags&stdelf.SHF_ALLOC != 0 && s.Type != stdelf.SHT_NOTE:
			if d.Type != stdelf.SHT_NOBITS {
				t.Errorf("debug section %s has type %v, want SHT_NOBITS", s.Name, d.Type)
			}
		default:
			if d.Type != s.Type {
				t.Errorf("debug section %s has type %v, want %v", s.Name, d.Type, s.Type)
			}
			if !bytes.Equal(raw(in, s), raw(debug, d)) {
				t.Errorf("debug section %s contents differ from the input's", s.Name)
			}
		}
	}
	// debug/elf's DWARF reads every .debug_* section, and an allocated one
	// (Rust's .debug_gdb_scripts) is SHT_NOBITS in a debug file.
	allocDebug := false
	for _, s := range fi.Sections {
		allocDebug = allocDebug || s.Flags&stdelf.SHF_ALLOC != 0 && isDebugName(s.Name)
	}
	if fi.Section(".debug_info") != nil && !allocDebug {
		if _, err := fd.DWARF(); err != nil {
			t.Errorf("debug file DWARF: %v", err)
		}
	}
}

// raw returns the bytes of section s in file b, compressed or not.
func raw(b []byte, s *stdelf.Section) []byte {
	if s.Type == stdelf.SHT_NOBITS {
		return nil
	}
	return b[s.Offset : s.Offset+s.FileSize]
}
