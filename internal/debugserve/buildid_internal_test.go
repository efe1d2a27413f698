package debugserve

import (
	"bytes"
	"debug/elf"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The build-id read from the program headers of a file's first 64 KiB is
// the one debug/elf finds in the section headers, for 32- and 64-bit,
// little- and big-endian programs.
func TestNoteBuildID(t *testing.T) {
	files, _ := filepath.Glob("../../elf/testdata/hello-*")
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !bytes.HasPrefix(b, []byte("\x7fELF")) {
			continue
		}
		ef, err := elf.NewFile(bytes.NewReader(b))
		if err != nil || ef.Type == elf.ET_REL {
			continue
		}
		s := ef.Section(".note.gnu.build-id")
		if s == nil {
			continue
		}
		d, _ := s.Data()
		want := hex.EncodeToString(d[16:]) // namesz 4 ("GNU\0"), 12-byte header
		n++
		if got := noteBuildID(bytes.NewReader(b)); got != want {
			t.Errorf("%s (%s %s): %q, want %q", filepath.Base(f), ef.Class, ef.Data, got, want)
		}
	}
	if n < 4 {
		t.Fatalf("only %d test programs with a build-id in ../../elf/testdata", n)
	}
	for _, bad := range [][]byte{nil, []byte("\x7fELF"), []byte("#!/bin/sh\necho hi\n"), bytes.Repeat([]byte{0x7f, 'E', 'L', 'F', 2, 1}, 100)} {
		if got := noteBuildID(bytes.NewReader(bad)); got != "" {
			t.Errorf("%q: build-id %q", bad, got)
		}
	}
}

func TestParseBuildID(t *testing.T) {
	for in, want := range map[string]string{
		"ABCDEF0123":             "abcdef0123",
		"ab":                     "ab",
		strings.Repeat("a", 128): strings.Repeat("a", 128),
	} {
		if got, err := ParseBuildID(in); err != nil || got != want {
			t.Errorf("ParseBuildID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a", "abc", "zz", "..", "ab/cd", "ab%2f", strings.Repeat("a", 130), "ab\x00d", "ａｂ"} {
		if _, err := ParseBuildID(in); !errors.Is(err, ErrBadBuildID) {
			t.Errorf("ParseBuildID(%q): %v, want ErrBadBuildID", in, err)
		}
	}
}

func TestDebugPathBuildID(t *testing.T) {
	for p, want := range map[string]string{
		"usr/lib/debug/.build-id/1a/2b3c.debug":   "1a2b3c",
		"usr/lib/debug/.build-id/1A/2b3c.debug":   "",
		"usr/lib/debug/.build-id/1a/2b3c":         "",
		"usr/lib/debug/usr/bin/app.debug":         "",
		"usr/lib/debug/.build-id/1a2/b3c.debug":   "",
		"usr/lib/debug/.build-id/1a/x/y.debug":    "",
		"usr/lib/debug/.build-id/1a/.debug":       "",
		"usr/lib/debug/.build-id/1a/2b3.debug":    "",
		"opt/usr/lib/debug/.build-id/1a/2b.debug": "",
	} {
		got, ok := debugPathBuildID(p)
		if got != want || ok != (want != "") {
			t.Errorf("%s: %q %v, want %q", p, got, ok, want)
		}
	}
}

func FuzzNoteBuildID(f *testing.F) {
	files, _ := filepath.Glob("../../elf/testdata/hello-*")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil && len(b) > 0 {
			f.Add(b[:min(len(b), 4096)])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id := noteBuildID(bytes.NewReader(b))
		if id == "" {
			return
		}
		if got, err := ParseBuildID(id); err != nil || got != id {
			t.Fatalf("build-id %q is not a valid one: %v", id, err)
		}
	})
}

func FuzzParseBuildID(f *testing.F) {
	for _, s := range []string{"ab", "ABCDEF", "../x", "%2e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseBuildID(s)
		if err != nil {
			return
		}
		if strings.ContainsAny(id, "/\\.%\x00") || len(id)%2 != 0 || id != strings.ToLower(s) {
			t.Fatalf("ParseBuildID(%q) = %q", s, id)
		}
	})
}
