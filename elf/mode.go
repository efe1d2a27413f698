package elf

import "fmt"

// Mode is what to remove, as the --strip flag chooses it; docs/elf.md
// "What each kind of file gets" tables it for each kind of file. The zero
// Mode is None: an options struct or call that says nothing strips nothing
// (rewrite without WithStrip, analyze.Options{}); the command line's
// --strip default is Unneeded, which it always passes.
type Mode int

const (
	// None removes nothing.
	None Mode = iota
	// Unneeded removes debug sections, and from executables and shared
	// objects also .symtab and .strtab (like Debian's dh_strip).
	Unneeded
	// Debug removes debug sections only (strip --strip-debug).
	Debug
	// All removes what Unneeded removes and, from executables and shared
	// objects, every other non-allocated section except notes and
	// processor-specific sections (.comment, .GCC.command.line, ...).
	All
)

var modeNames = [...]string{Unneeded: "unneeded", Debug: "debug", All: "all", None: "none"}

// ParseMode parses the --strip values "unneeded", "debug", "all" and "none".
func ParseMode(s string) (Mode, error) {
	for m, n := range modeNames {
		if n == s {
			return Mode(m), nil
		}
	}
	return 0, fmt.Errorf("elf: unknown strip mode %q (want unneeded, debug, all or none)", s)
}

func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}
