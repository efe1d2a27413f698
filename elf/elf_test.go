package elf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	stdelf "debug/elf"
)

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{Unneeded, Debug, All, None} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseMode("everything"); err == nil {
		t.Error("ParseMode(everything) succeeded")
	}
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTestdata splits the checked-in binaries in every mode and checks the
// results with debug/elf only (no external tools).
func TestTestdata(t *testing.T) {
	for _, tc := range []struct {
		file                  string
		class                 int
		machine, typ, buildID string
	}{
		{"hello-x86_64", 64, "EM_X86_64", "DYN", "89767a99b67313a64b656bd813efa9694ad1456f"},
		{"hello-x86_64-gz", 64, "EM_X86_64", "DYN", ""},
		{"hello-x86_64.o", 64, "EM_X86_64", "REL", ""},
		{"hello-s390x", 64, "EM_S390", "DYN", ""},
		{"hello-armhf", 32, "EM_ARM", "DYN", ""},
		{"hello-ppc", 32, "EM_PPC", "DYN", ""},
	} {
		in := readTestdata(t, tc.file)
		for _, mode := range []Mode{Unneeded, Debug, All} {
			t.Run(tc.file+"/"+mode.String(), func(t *testing.T) {
				info, err := Inspect(bytes.NewReader(in), int64(len(in)), mode)
				if err != nil {
					t.Fatal(err)
				}
				if info.Class != tc.class || info.Machine != tc.machine || info.Type != tc.typ {
					t.Errorf("Inspect = %+v", info)
				}
				if tc.buildID != "" && info.BuildID != tc.buildID {
					t.Errorf("BuildID = %q, want %q", info.BuildID, tc.buildID)
				}
				if tc.typ != "REL" && len(info.BuildID) != 40 {
					t.Errorf("BuildID = %q, want 40 hex digits", info.BuildID)
				}
				s, d, res, err := splitBytes(t, in, mode, "x.debug")
				if err != nil {
					t.Fatal(err)
				}
				checkOutputs(t, in, s, d, mode, "x.debug")
				if res.DebugBytes != info.DebugBytes || res.DebugBytes == 0 {
					t.Errorf("DebugBytes: Split %d, Inspect %d", res.DebugBytes, info.DebugBytes)
				}
				if saved := int64(len(in)) - res.StrippedSize; saved <= 0 {
					t.Errorf("stripped file is not smaller (%d -> %d)", len(in), res.StrippedSize)
				}
				removedSymtab := false
				for _, n := range res.Removed {
					removedSymtab = removedSymtab || n == ".symtab"
				}
				if want := mode != Debug && tc.typ != "REL"; removedSymtab != want {
					t.Errorf("removed %v; .symtab removed = %v, want %v", res.Removed, removedSymtab, want)
				}
			})
		}
	}
}

func TestUnchanged(t *testing.T) {
	stripped := readTestdata(t, "hello-x86_64-stripped")
	hello := readTestdata(t, "hello-x86_64")
	script := []byte("/* GNU ld script */\nOUTPUT_FORMAT(elf64-x86-64)\nGROUP ( /lib/x86_64-linux-gnu/libc.so.6 )\n")
	badShoff := bytes.Clone(hello)
	copy(badShoff[40:48], []byte{0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	badShnum := bytes.Clone(hello)
	badShnum[60], badShnum[61] = 0xfe, 0xfe
	badSection := bytes.Clone(hello) // .debug_info's sh_offset far past the end
	if f, err := parse(bytes.NewReader(hello), int64(len(hello))); err == nil {
		for i, s := range f.sects {
			if s.name == ".debug_info" {
				off := f.shoff + uint64(i)*f.shentsize + 24
				copy(badSection[off:off+8], []byte{0, 0, 0, 0, 1, 0, 0, 0})
			}
		}
	}
	for _, tc := range []struct {
		name       string
		in         []byte
		mode       Mode
		notELF     bool
		formatErr  bool
		reasonPart string
	}{
		{"empty", nil, Unneeded, true, false, ""},
		{"text", []byte("\x7fELF is a file format\n"), Unneeded, false, true, ""},
		{"ld script", script, Unneeded, true, false, ""},
		{"already stripped", stripped, Unneeded, false, false, "nothing to strip"},
		{"already stripped, debug", stripped, Debug, false, false, "nothing to strip"},
		{"mode none", hello, None, false, false, "none"},
		{"bogus e_shoff", badShoff, Unneeded, false, true, ""},
		{"bogus e_shnum", badShnum, Unneeded, false, true, ""},
		{"sh_offset past EOF", badSection, Unneeded, false, true, ""},
		{"half file", hello[:len(hello)/2], Unneeded, false, true, ""},
		{"100 bytes", hello[:100], Unneeded, false, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := splitBytes(t, tc.in, tc.mode, "x.debug")
			if !errors.Is(err, ErrUnchanged) {
				t.Fatalf("Split error %v, want ErrUnchanged", err)
			}
			if got := errors.Is(err, ErrNotELF); got != tc.notELF {
				t.Errorf("errors.Is(%v, ErrNotELF) = %v", err, got)
			}
			var fe *FormatError
			if got := errors.As(err, &fe); got != tc.formatErr {
				t.Errorf("errors.As(%v, *FormatError) = %v", err, got)
			}
			if !strings.Contains(err.Error(), tc.reasonPart) {
				t.Errorf("error %q does not mention %q", err, tc.reasonPart)
			}
		})
	}
}

// TestTruncated splits every truncation of a small binary (at a stride):
// no panic, and either ErrUnchanged or outputs that pass checkOutputs.
func TestTruncated(t *testing.T) {
	for _, name := range []string{"hello-x86_64", "hello-armhf", "hello-x86_64.o"} {
		in := readTestdata(t, name)
		for n := 0; n < len(in); n += 1 + n/50 {
			s, d, _, err := splitBytes(t, in[:n], Unneeded, "x.debug")
			if err != nil {
				if !errors.Is(err, ErrUnchanged) {
					t.Errorf("%s[:%d]: %v does not wrap ErrUnchanged", name, n, err)
				}
				continue
			}
			if _, err := stdelf.NewFile(bytes.NewReader(in[:n])); err == nil {
				checkOutputs(t, in[:n], s, d, Unneeded, "x.debug")
			}
		}
	}
}

// TestAllocationBound checks that a header claiming a huge section table
// is rejected without allocating more than the file size.
func TestAllocationBound(t *testing.T) {
	hello := readTestdata(t, "hello-x86_64")
	in := bytes.Clone(hello[:4096])
	in[60], in[61] = 0, 0 // e_shnum = 0: the count is in section header 0
	copy(in[40:48], []byte{0x40, 0, 0, 0, 0, 0, 0, 0})
	// Section header 0 at 0x40 (overlapping the program headers) with a
	// huge sh_size.
	copy(in[0x40+32:0x40+40], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, _, err := splitBytes(t, in, Unneeded, "x")
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrUnchanged) {
		t.Fatalf("Split = %v, want ErrUnchanged", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("allocated %d bytes for a %d-byte file", got, len(in))
	}
}

func TestKernelModuleDetection(t *testing.T) {
	// A relocatable object with a .modinfo section is a kernel module;
	// appending the signature marker makes it signed and untouchable.
	obj := readTestdata(t, "hello-x86_64.o")
	f, err := parse(bytes.NewReader(obj), int64(len(obj)))
	if err != nil {
		t.Fatal(err)
	}
	ko := bytes.Clone(obj)
	// Rename ".comment" to ".modinfo" in place (same length).
	names := f.sects[f.shstrndx]
	i := bytes.Index(ko[names.off:names.off+names.size], []byte(".comment\x00"))
	if i < 0 {
		t.Fatal("no .comment in the name table")
	}
	copy(ko[names.off+uint64(i):], ".modinfo")
	info, err := Inspect(bytes.NewReader(ko), int64(len(ko)), Unneeded)
	if err != nil || !info.KernelModule || info.Signed {
		t.Fatalf("Inspect = %+v, %v; want an unsigned kernel module", info, err)
	}
	s, d, res, err := splitBytes(t, ko, All, "m.debug")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range res.Removed {
		if !isDebugName(n) && !strings.HasPrefix(n, ".rela.debug") {
			t.Errorf("kernel module lost %s", n)
		}
	}
	checkOutputs(t, ko, s, d, Debug, "m.debug")

	signedKo := append(bytes.Clone(ko), []byte("SIG\x00\x00\x00\x00~Module signature appended~\n")...)
	info, err = Inspect(bytes.NewReader(signedKo), int64(len(signedKo)), Unneeded)
	if err != nil || !info.Signed || info.DebugBytes != 0 {
		t.Fatalf("Inspect = %+v, %v; want a signed module", info, err)
	}
	if _, _, _, err := splitBytes(t, signedKo, Unneeded, "m.debug"); !errors.Is(err, ErrUnchanged) || !strings.Contains(err.Error(), "signed") {
		t.Errorf("Split of a signed module: %v", err)
	}
}
