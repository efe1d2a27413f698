package elf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	stdelf "debug/elf"
)

func kept(t *testing.T, b []byte) [32]byte {
	t.Helper()
	sum, ok, err := Kept(bytes.NewReader(b), int64(len(b)))
	if err != nil || !ok {
		t.Fatalf("Kept: %v %v", ok, err)
	}
	return sum
}

// A program with bytes after its ELF data (a self-extracting program,
// an AppImage, a PyInstaller program) is left as it is, and Kept covers
// those bytes, so a copy without them is not the same file.
func TestAppendedPayload(t *testing.T) {
	exe := readTestdata(t, "hello-x86_64")
	poly := append(bytes.Clone(exe), "PK\x03\x04 payload PK\x05\x06"...)
	var s, d bytes.Buffer
	_, err := Split(bytes.NewReader(poly), int64(len(poly)), Unneeded, "x.debug", &s, &d)
	if !errors.Is(err, ErrUnchanged) || !strings.Contains(err.Error(), "appended payload") || s.Len() != 0 {
		t.Fatalf("Split of a program with a payload: %v, %d bytes written", err, s.Len())
	}
	if kept(t, poly) == kept(t, exe) {
		t.Error("Kept does not see the payload")
	}
	other := bytes.Clone(poly)
	other[len(other)-3] ^= 1
	if kept(t, poly) == kept(t, other) {
		t.Error("Kept does not see a change in the payload")
	}
	// Stripping changes nothing Kept covers.
	if _, err := Split(bytes.NewReader(exe), int64(len(exe)), Unneeded, "x.debug", &s, &d); err != nil {
		t.Fatal(err)
	}
	if kept(t, s.Bytes()) != kept(t, exe) {
		t.Error("the stripped file is not the same ELF file by Kept")
	}
}

// IsDebugFile knows objcopy --only-keep-debug output wherever it is, and
// anything ELF under usr/lib/debug; not a program.
func TestIsDebugFile(t *testing.T) {
	exe := readTestdata(t, "hello-x86_64")
	var s, d bytes.Buffer
	if _, err := Split(bytes.NewReader(exe), int64(len(exe)), Unneeded, "x.debug", &s, &d); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		b    []byte
		want bool
	}{
		{"usr/bin/hello", exe, false},
		{"usr/bin/hello", s.Bytes(), false},
		{"opt/x/.debug/hello.debug", d.Bytes(), true},
		{"usr/lib/debug/usr/bin/hello", exe, true},
		{"usr/lib/debug/notes.txt", []byte("not ELF at all"), false},
	} {
		if got := IsDebugFile(tc.path, bytes.NewReader(tc.b), int64(len(tc.b))); got != tc.want {
			t.Errorf("IsDebugFile(%s) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

// Little-endian MIPS64 keeps the symbol index in the low half of r_info:
// Kept resolves it there, so an object whose symbols the split renumbers
// is the same file by Kept. (An x86-64 object retyped as MIPS64 with its
// r_info halves swapped stands in for a real one.)
func TestKeptMIPS64LittleEndian(t *testing.T) {
	obj := bytes.Clone(readTestdata(t, "hello-x86_64.o"))
	f, err := stdelf.NewFile(bytes.NewReader(obj))
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint16(obj[18:], uint16(stdelf.EM_MIPS))
	for _, s := range f.Sections {
		if s.Type != stdelf.SHT_RELA {
			continue
		}
		for off := s.Offset; off+24 <= s.Offset+s.Size; off += 24 {
			info := binary.LittleEndian.Uint64(obj[off+8:])
			binary.LittleEndian.PutUint64(obj[off+8:], info>>32|info<<32)
		}
	}
	var s, d bytes.Buffer
	res, err := Split(bytes.NewReader(obj), int64(len(obj)), Debug, "x.debug", &s, &d)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) == 0 {
		t.Fatal("nothing removed")
	}
	if kept(t, s.Bytes()) != kept(t, obj) {
		t.Error("the split MIPS64 object is not the same file by Kept")
	}
}
