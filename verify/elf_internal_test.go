package verify

import (
	"bytes"
	stdelf "debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// synthELF builds a minimal ELF file: header, one program header, a
// payload, all in one PT_LOAD from offset 0; then, outside the segment, a
// section name table and a section header table (null section and
// .shstrtab), unless withSections is false, in which case e_shoff, e_shnum
// and e_shstrndx are zero as in a stripped copy.
func synthELF(t *testing.T, class stdelf.Class, bo binary.ByteOrder, withSections bool) []byte {
	t.Helper()
	payload := bytes.Repeat([]byte("loadable bytes. "), 8)
	shstrtab := []byte("\x00.shstrtab\x00")
	var buf bytes.Buffer
	w := func(v any) {
		if err := binary.Write(&buf, bo, v); err != nil {
			t.Fatal(err)
		}
	}
	var ident [stdelf.EI_NIDENT]byte
	copy(ident[:], stdelf.ELFMAG)
	ident[stdelf.EI_CLASS] = byte(class)
	ident[stdelf.EI_DATA] = byte(stdelf.ELFDATA2LSB)
	if bo == binary.BigEndian {
		ident[stdelf.EI_DATA] = byte(stdelf.ELFDATA2MSB)
	}
	ident[stdelf.EI_VERSION] = byte(stdelf.EV_CURRENT)
	shnum, shstrndx := uint16(0), uint16(0)
	if withSections {
		shnum, shstrndx = 2, 1
	}
	if class == stdelf.ELFCLASS64 {
		hdr, ph := 64, 56
		end := uint64(hdr + ph + len(payload))
		shoff := uint64(0)
		if withSections {
			shoff = (end + uint64(len(shstrtab)) + 7) &^ 7
		}
		w(stdelf.Header64{Ident: ident, Type: uint16(stdelf.ET_EXEC), Machine: uint16(stdelf.EM_S390), Version: 1, Entry: 0x400078,
			Phoff: uint64(hdr), Shoff: shoff, Ehsize: uint16(hdr), Phentsize: uint16(ph), Phnum: 1, Shentsize: 64, Shnum: shnum, Shstrndx: shstrndx})
		w(stdelf.Prog64{Type: uint32(stdelf.PT_LOAD), Flags: uint32(stdelf.PF_R | stdelf.PF_X), Off: 0, Vaddr: 0x400000, Paddr: 0x400000, Filesz: end, Memsz: end, Align: 0x1000})
		buf.Write(payload)
		if withSections {
			buf.Write(shstrtab)
			buf.Write(make([]byte, int(shoff)-buf.Len()))
			w(stdelf.Section64{})
			w(stdelf.Section64{Name: 1, Type: uint32(stdelf.SHT_STRTAB), Off: end, Size: uint64(len(shstrtab)), Addralign: 1})
		}
	} else {
		hdr, ph := 52, 32
		end := uint32(hdr + ph + len(payload))
		shoff := uint32(0)
		if withSections {
			shoff = (end + uint32(len(shstrtab)) + 3) &^ 3
		}
		w(stdelf.Header32{Ident: ident, Type: uint16(stdelf.ET_EXEC), Machine: uint16(stdelf.EM_PPC), Version: 1, Entry: 0x10000054,
			Phoff: uint32(hdr), Shoff: shoff, Ehsize: uint16(hdr), Phentsize: uint16(ph), Phnum: 1, Shentsize: 40, Shnum: shnum, Shstrndx: shstrndx})
		w(stdelf.Prog32{Type: uint32(stdelf.PT_LOAD), Flags: uint32(stdelf.PF_R | stdelf.PF_X), Off: 0, Vaddr: 0x10000000, Paddr: 0x10000000, Filesz: end, Memsz: end, Align: 0x1000})
		buf.Write(payload)
		if withSections {
			buf.Write(shstrtab)
			buf.Write(make([]byte, int(shoff)-buf.Len()))
			w(stdelf.Section32{})
			w(stdelf.Section32{Name: 1, Type: uint32(stdelf.SHT_STRTAB), Off: end, Size: uint32(len(shstrtab)), Addralign: 1})
		}
	}
	return buf.Bytes()
}

func digestOf(t *testing.T, b []byte) *[32]byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := elfDigest(f, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestELFDigestClassesAndByteOrders(t *testing.T) {
	for _, tc := range []struct {
		name  string
		class stdelf.Class
		bo    binary.ByteOrder
	}{
		{"ELF64 little-endian", stdelf.ELFCLASS64, binary.LittleEndian},
		{"ELF64 big-endian", stdelf.ELFCLASS64, binary.BigEndian},
		{"ELF32 little-endian", stdelf.ELFCLASS32, binary.LittleEndian},
		{"ELF32 big-endian", stdelf.ELFCLASS32, binary.BigEndian},
	} {
		t.Run(tc.name, func(t *testing.T) {
			full := synthELF(t, tc.class, tc.bo, true)
			stripped := synthELF(t, tc.class, tc.bo, false)
			if bytes.Equal(full[:0x40], stripped[:0x40]) {
				t.Fatal("test files do not differ in their ELF headers")
			}
			df, ds := digestOf(t, full), digestOf(t, stripped)
			if df == nil || ds == nil {
				t.Fatalf("no digest: full %v, stripped %v", df, ds)
			}
			if *df != *ds {
				t.Errorf("the section-table fields changed the digest")
			}
			// Any other byte of the segment counts, in the header too.
			for _, off := range []int{0x12 /* e_machine */, 0x18 /* e_entry */, len(stripped) - 1} {
				b := bytes.Clone(stripped)
				b[off] ^= 0xff
				if d := digestOf(t, b); d == nil || *d == *ds {
					t.Errorf("changing byte %#x kept the digest", off)
				}
			}
		})
	}
}

func TestELFDigestNotChecked(t *testing.T) {
	good := synthELF(t, stdelf.ELFCLASS64, binary.LittleEndian, false)
	for name, b := range map[string][]byte{
		"text":      []byte("\x7fELF is what this line starts with"),
		"truncated": good[:40],
		"segment past the end": func() []byte {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint64(b[64+32:], 1<<20) // p_filesz
			return b
		}(),
	} {
		if d := digestOf(t, b); d != nil {
			t.Errorf("%s: got a digest, want none", name)
		}
	}
}
