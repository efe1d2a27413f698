package elf

import (
	"encoding/hex"

	stdelf "debug/elf"
)

// maxNoteSize bounds how much of a note section is read to find the build-id.
const maxNoteSize = 1 << 20

// ntGNUBuildID is the note type of NT_GNU_BUILD_ID (owner "GNU").
const ntGNUBuildID = 3

// buildID returns the lower-case hex NT_GNU_BUILD_ID of f, or "".
// It reads the SHT_NOTE sections, or the PT_NOTE segments when the file
// has no section headers.
func buildID(f *file) (string, error) {
	type area struct{ off, size, align uint64 }
	var areas []area
	for i := 1; i < len(f.sects); i++ {
		if s := &f.sects[i]; s.typ == uint32(stdelf.SHT_NOTE) {
			areas = append(areas, area{s.off, s.size, s.align})
		}
	}
	if len(f.sects) == 0 {
		for _, ph := range f.progs {
			if ph.typ == uint32(stdelf.PT_NOTE) {
				areas = append(areas, area{ph.off, ph.filesz, ph.align})
			}
		}
	}
	budget := uint64(4 * maxNoteSize)
	for _, a := range areas {
		n := min(a.size, maxNoteSize, budget)
		budget -= n
		b := make([]byte, n)
		if err := f.readAt(b, a.off); err != nil {
			return "", err
		}
		if id := findBuildID(f, b, a.align); id != "" {
			return id, nil
		}
	}
	return "", nil
}

// findBuildID walks the notes in b. Note names and descriptors are padded
// to 8 bytes in sections aligned to 8 (.note.gnu.property on ELF64) and to
// 4 bytes otherwise.
func findBuildID(f *file, b []byte, align uint64) string {
	pad := uint64(4)
	if align == 8 {
		pad = 8
	}
	for len(b) >= 12 {
		namesz, descsz, typ := uint64(f.bo.Uint32(b)), uint64(f.bo.Uint32(b[4:])), f.bo.Uint32(b[8:])
		nameEnd := 12 + alignUp(namesz, pad)
		descEnd := nameEnd + alignUp(descsz, pad)
		if namesz > uint64(len(b)) || descsz > uint64(len(b)) || descEnd > uint64(len(b)) {
			return ""
		}
		if typ == ntGNUBuildID && namesz == 4 && string(b[12:16]) == "GNU\x00" {
			return hex.EncodeToString(b[nameEnd : nameEnd+descsz])
		}
		b = b[descEnd:]
	}
	return ""
}

const moduleSigMagic = "~Module signature appended~\n"

// signed reports whether f ends with a kernel module signature.
func signed(f *file) bool {
	n := int64(len(moduleSigMagic))
	if f.size < n {
		return false
	}
	b := make([]byte, n)
	if _, err := f.r.ReadAt(b, f.size-n); err != nil {
		return false
	}
	return string(b) == moduleSigMagic
}
