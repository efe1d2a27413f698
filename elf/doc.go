// Package elf splits the debug information out of ELF files.
//
// Split writes two files for one input: a stripped copy that keeps every
// byte from the start of the file to the end of the last loadable segment
// (only e_shoff, e_shnum and e_shstrndx in the ELF header change), and a
// debug file laid out as `objcopy --only-keep-debug` lays it out. The
// stripped copy gets a .gnu_debuglink section naming the debug file and
// carrying its CRC32.
//
// Only non-allocated sections are ever removed. Which ones depends on the
// Mode (the --strip flag; docs/elf.md has a table of what each mode
// removes from each kind of file) and on the file type: relocatable objects
// and kernel modules only lose debug sections, whatever the mode.
//
// Inputs this package cannot rewrite safely (not ELF, malformed, nothing
// to strip, signed kernel modules) give an error wrapping ErrUnchanged, and
// nothing is written: the caller keeps the file as it was.
//
// The package reads with io.ReaderAt and checks every offset and size
// against the file size before it reads or allocates, so hostile input
// cannot make it panic or allocate more than the file size.
//
// The package is named elf; files that also need the standard library's
// debug/elf import it as stdelf.
package elf
