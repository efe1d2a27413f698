package elf

import (
	"io"
	"path"
	"slices"
	"strings"

	stdelf "debug/elf"
)

// DebugDir is where separate debug files live, as a clean relative path.
const DebugDir = "usr/lib/debug"

// DebugPath is where the debug file of the ELF file at clean path p with
// build-id id lives: the build-id layout gdb, perf and debuginfod read
// (DebugDir/.build-id/xx/rest.debug), or the path layout for files without
// a build-id (DebugDir/p.debug). Its base name is the one .gnu_debuglink
// records (DebugLinkName).
func DebugPath(p, id string) string {
	if len(id) > 2 {
		return path.Join(DebugDir, ".build-id", id[:2], id[2:]+".debug")
	}
	return path.Join(DebugDir, p+".debug")
}

// DebugLinkName is the name the .gnu_debuglink section of the stripped ELF
// file at p with build-id id records: the base name of its DebugPath.
func DebugLinkName(p, id string) string { return path.Base(DebugPath(p, id)) }

// IsDebugFile reports whether the ELF file in r, at clean relative path p,
// is itself a separate debug file: any ELF file under usr/lib/debug (what
// dbgsym packages install), or an executable or shared object shaped like
// `objcopy --only-keep-debug` output (every allocated section that has a
// size is SHT_NOBITS or a note). Such a file is never split: a rewrite
// moves it whole to the debug image, and verify accepts its absence.
func IsDebugFile(p string, r io.ReaderAt, size int64) bool {
	var magic [4]byte
	if size < 4 {
		return false
	}
	if _, err := r.ReadAt(magic[:], 0); err != nil || string(magic[:]) != stdelf.ELFMAG {
		return false
	}
	if strings.HasPrefix(p, DebugDir+"/") {
		return true
	}
	f, err := parse(r, size)
	if err != nil || (f.typ != uint16(stdelf.ET_EXEC) && f.typ != uint16(stdelf.ET_DYN)) {
		return false
	}
	alloc := false
	for i := 1; i < len(f.sects); i++ {
		s := &f.sects[i]
		if !s.alloc() || s.size == 0 {
			continue
		}
		alloc = true
		if s.typ != uint32(stdelf.SHT_NOBITS) && s.typ != uint32(stdelf.SHT_NOTE) {
			return false
		}
	}
	return alloc
}

// DebugSections lists the non-allocated sections of the ELF file in r
// that carry contents (the section name table aside), sorted: for a
// separate debug file, what it holds. It is nil for input that is not
// ELF or is malformed.
func DebugSections(r io.ReaderAt, size int64) []string {
	f, err := parse(r, size)
	if err != nil {
		return nil
	}
	var out []string
	for i := 1; i < len(f.sects); i++ {
		if s := &f.sects[i]; i != f.shstrndx && !s.alloc() && s.hasBytes() && s.size > 0 {
			out = append(out, s.name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ArchiveHasDebug reports whether a member of the ar archive in r is an
// ELF file with non-allocated debug sections.
func ArchiveHasDebug(r io.ReaderAt, size int64) bool {
	members, err := readArchive(r, size)
	if err != nil {
		return false
	}
	for _, m := range members {
		f, err := parse(io.NewSectionReader(r, int64(m.dataOff), int64(m.size)), int64(m.size))
		if err != nil {
			continue
		}
		for i := 1; i < len(f.sects); i++ {
			if s := &f.sects[i]; !s.alloc() && s.hasBytes() && s.size > 0 && isDebugName(s.name) {
				return true
			}
		}
	}
	return false
}

// DefaultStripSkip are the paths (globs in the --drop-path syntax) whose
// ELF files a rewrite leaves as they are by default: test data is not a
// program (the Go toolchain's debug/elf tests read the debug sections of
// their testdata files).
var DefaultStripSkip = []string{"**/testdata/**"}

// LinkInput reports whether the file is an input to later links: a
// relocatable object that is not a kernel module. A rewrite leaves such
// files (and static archives) as they are, since the programs linked from
// them need their debug information.
func (i *Info) LinkInput() bool { return i.Type == "REL" && !i.KernelModule }
