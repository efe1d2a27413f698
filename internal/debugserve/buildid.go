package debugserve

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// ErrBadBuildID is wrapped by the error for a build-id that is not hex.
var ErrBadBuildID = errors.New("malformed build-id")

// maxBuildID is the longest build-id accepted, in hex digits. GNU ld's
// are 16 (md5), 20 (sha1) or up to 64 (--build-id=0x...) bytes.
const maxBuildID = 128

// ParseBuildID checks s, the build-id of a request, and returns it in lower
// case: an even number of hex digits, 2 to 128 of them.
func ParseBuildID(s string) (string, error) {
	if len(s) < 2 || len(s) > maxBuildID || len(s)%2 != 0 {
		return "", fmt.Errorf("%w %q: want 2 to %d hex digits, an even number", ErrBadBuildID, trim(s), maxBuildID)
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			b[i] = c + 'a' - 'A'
		default:
			return "", fmt.Errorf("%w %q: want hex digits", ErrBadBuildID, trim(s))
		}
	}
	return string(b), nil
}

func trim(s string) string {
	if len(s) > 140 {
		return s[:140] + "…"
	}
	return s
}

// debugDir is where debug images keep their files.
const debugDir = "usr/lib/debug/"

// debugPathBuildID returns the build-id of a debug layer's file by its
// clean path: usr/lib/debug/.build-id/xx/rest.debug.
func debugPathBuildID(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, debugDir+".build-id/")
	if !ok {
		return "", false
	}
	dir, file := path.Split(rest)
	name, ok := strings.CutSuffix(file, ".debug")
	if !ok || name == "" || len(dir) != 3 || dir[2] != '/' {
		return "", false
	}
	id, err := ParseBuildID(dir[:2] + name)
	if err != nil || id != dir[:2]+name {
		return "", false
	}
	return id, true
}

// elfPrefix is how much of a file noteBuildID reads: build-id notes sit
// right after the program headers (gcc, clang, Go alike).
const elfPrefix = 64 << 10

// ELF constants (debug/elf's, as plain numbers to index the header).
const (
	ptNote        = 4
	ntGNUBuildID  = 3
	elfClass32    = 1
	elfClass64    = 2
	elfData2LSB   = 1
	elfData2MSB   = 2
	maxProgHeader = 1 << 12
)

// noteBuildID reads the GNU build-id of the ELF file that r starts with,
// from the PT_NOTE segments found in its first 64 KiB: no section
// headers, which lie at the end of the file. "" for anything else.
func noteBuildID(r io.Reader) string {
	b := make([]byte, elfPrefix)
	n, _ := io.ReadFull(r, b)
	b = b[:n]
	if len(b) < 52 || !bytes.HasPrefix(b, []byte("\x7fELF")) {
		return ""
	}
	var bo binary.ByteOrder
	switch b[5] {
	case elfData2LSB:
		bo = binary.LittleEndian
	case elfData2MSB:
		bo = binary.BigEndian
	default:
		return ""
	}
	var phoff, phentsize, phnum uint64
	switch b[4] {
	case elfClass64:
		if len(b) < 64 {
			return ""
		}
		phoff, phentsize, phnum = bo.Uint64(b[32:]), uint64(bo.Uint16(b[54:])), uint64(bo.Uint16(b[56:]))
	case elfClass32:
		phoff, phentsize, phnum = uint64(bo.Uint32(b[28:])), uint64(bo.Uint16(b[42:])), uint64(bo.Uint16(b[44:]))
	default:
		return ""
	}
	if phnum > maxProgHeader || phentsize < 32 || phoff > uint64(len(b)) || phnum*phentsize > uint64(len(b))-phoff {
		return ""
	}
	for i := range phnum {
		ph := b[phoff+i*phentsize:]
		if bo.Uint32(ph) != ptNote {
			continue
		}
		var off, size, align uint64
		if b[4] == elfClass64 {
			if phentsize < 56 {
				return ""
			}
			off, size, align = bo.Uint64(ph[8:]), bo.Uint64(ph[32:]), bo.Uint64(ph[48:])
		} else {
			off, size, align = uint64(bo.Uint32(ph[4:])), uint64(bo.Uint32(ph[16:])), uint64(bo.Uint32(ph[28:]))
		}
		if off > uint64(len(b)) || size > uint64(len(b))-off {
			continue
		}
		if id := gnuBuildID(b[off:off+size], bo, align); id != "" {
			return id
		}
	}
	return ""
}

// gnuBuildID finds the NT_GNU_BUILD_ID note in notes.
func gnuBuildID(notes []byte, bo binary.ByteOrder, align uint64) string {
	if align != 8 {
		align = 4
	}
	pad := func(n uint64) uint64 { return (n + align - 1) &^ (align - 1) }
	for len(notes) >= 12 {
		namesz, descsz, typ := uint64(bo.Uint32(notes)), uint64(bo.Uint32(notes[4:])), bo.Uint32(notes[8:])
		rest := uint64(len(notes)) - 12
		if namesz > rest || pad(namesz) > rest || descsz > rest-pad(namesz) {
			return ""
		}
		name := notes[12 : 12+namesz]
		desc := notes[12+pad(namesz) : 12+pad(namesz)+descsz]
		if typ == ntGNUBuildID && string(name) == "GNU\x00" && len(desc) > 0 && 2*len(desc) <= maxBuildID {
			return fmt.Sprintf("%x", desc)
		}
		next := 12 + pad(namesz) + pad(descsz)
		if next > uint64(len(notes)) {
			return ""
		}
		notes = notes[next:]
	}
	return ""
}
