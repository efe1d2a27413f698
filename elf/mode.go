package elf

import "fmt"

// Mode is what to remove, as the --strip flag chooses it; docs/elf.md
// "What each kind of file gets" tables it for each kind of file.
type Mode int

const (
	// Unneeded removes debug sections, and from executables and shared
	// objects also .symtab and .strtab (like Debian's dh_strip).
	Unneeded Mode = iota
	// Debug removes debug sections only (strip --strip-debug).
	Debug
	// All removes what Unneeded removes and, from executables and shared
	// objects, every other non-allocated section except notes and
	// processor-specific sections (.comment, .GCC.command.line, ...).
	All
	// None removes nothing.
	None
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
