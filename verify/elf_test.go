package verify_test

import (
	"bytes"
	"context"
	stdelf "debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/layerslim/layerslim/verify"
)

// need skips the test when a tool is missing, except in CI.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required in CI: %v", tool, err)
			}
			t.Skipf("%s not found: %v", tool, err)
		}
	}
}

func runTool(t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

const helloC = `#include <stdio.h>
static const char greeting[] = "hello from verify";
int main(void) { puts(greeting); return 0; }
`

// cBinaries builds hello.c with debug information as an executable and
// as an object, and their copies stripped by binutils.
func cBinaries(t *testing.T) (exe, exeStripped, obj, objStripped []byte) {
	need(t, "gcc", "strip")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.c"), []byte(helloC), 0o644); err != nil {
		t.Fatal(err)
	}
	runTool(t, dir, nil, "gcc", "-g", "-O1", "-o", "hello", "hello.c")
	runTool(t, dir, nil, "gcc", "-g", "-O1", "-c", "-o", "hello.o", "hello.c")
	runTool(t, dir, nil, "strip", "--strip-debug", "-o", "hello.stripped", "hello")
	runTool(t, dir, nil, "strip", "--strip-debug", "-o", "hello.stripped.o", "hello.o")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return read("hello"), read("hello.stripped"), read("hello.o"), read("hello.stripped.o")
}

// truncateSections cuts an ELF file after its last loadable segment and
// clears the section-table fields of its header: the smallest strip that
// keeps every loadable byte.
func truncateSections(t *testing.T, b []byte) []byte {
	t.Helper()
	f, err := stdelf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var end uint64
	for _, p := range f.Progs {
		end = max(end, p.Off+p.Filesz)
	}
	out := bytes.Clone(b[:end])
	if f.Class != stdelf.ELFCLASS64 {
		t.Fatalf("want an ELF64 test binary, got %v", f.Class)
	}
	binary.LittleEndian.PutUint64(out[0x28:], 0) // e_shoff
	binary.LittleEndian.PutUint16(out[0x3c:], 0) // e_shnum
	binary.LittleEndian.PutUint16(out[0x3e:], 0) // e_shstrndx
	if f.ByteOrder != binary.LittleEndian {
		t.Fatal("want a little-endian test binary")
	}
	return out
}

// flipInSection changes one byte in the middle of a section.
func flipInSection(t *testing.T, b []byte, section string) []byte {
	t.Helper()
	f, err := stdelf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	s := f.Section(section)
	if s == nil || s.Size == 0 {
		t.Fatalf("no %s section", section)
	}
	out := bytes.Clone(b)
	out[s.Offset+s.Size/2] ^= 0x01
	return out
}

// goBinary builds a static Go hello world, not stripped.
func goBinary(t *testing.T) []byte {
	need(t, "go")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { println(\"hello\") }\n"), 0o644)
	runTool(t, dir, []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=-trimpath", "GOTOOLCHAIN=local"}, "go", "build", "-o", "hello", ".")
	b, err := os.ReadFile(filepath.Join(dir, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestImageELF(t *testing.T) {
	exe, exeStripped, obj, objStripped := cBinaries(t)
	if bytes.Equal(exe, exeStripped) || bytes.Equal(obj, objStripped) {
		t.Fatal("strip --strip-debug changed nothing: the test binaries have no debug information")
	}
	gobin := goBinary(t)
	const p = "app/hello"
	for _, tc := range []struct {
		name     string
		src, dst ent
		want     []got
	}{
		{
			name: "executable stripped by binutils", src: binFile(p, exe), dst: binFile(p, exeStripped),
			want: []got{{p, "content", verify.ELFStripped}},
		},
		{
			name: "executable with the section table cut off", src: binFile(p, exe), dst: binFile(p, truncateSections(t, exe)),
			want: []got{{p, "content", verify.ELFStripped}},
		},
		{
			name: "Go executable with the section table cut off", src: binFile(p, gobin), dst: binFile(p, truncateSections(t, gobin)),
			want: []got{{p, "content", verify.ELFStripped}},
		},
		{
			name: "object file stripped by binutils", src: binFile(p, obj), dst: binFile(p, objStripped),
			want: []got{{p, "content", verify.ELFStripped}},
		},
		{
			name: "one byte of .text changed", src: binFile(p, exe), dst: binFile(p, flipInSection(t, exeStripped, ".text")),
			want: []got{{p, "content", verify.Violation}},
		},
		{
			name: "one byte of .rodata changed in a Go executable", src: binFile(p, gobin), dst: binFile(p, truncateSections(t, flipInSection(t, gobin, ".rodata"))),
			want: []got{{p, "content", verify.Violation}},
		},
		{
			name: "one byte of an object's .text changed", src: binFile(p, obj), dst: binFile(p, flipInSection(t, objStripped, ".text")),
			want: []got{{p, "content", verify.Violation}},
		},
		{
			name: "stripped, but the mode changed", src: binFile(p, exe), dst: binFile(p, exeStripped, mode(0o700)),
			want: []got{{p, "content", verify.ELFStripped}, {p, "mode", verify.Violation}},
		},
		{
			name: "stripped, but the capability lost", src: binFile(p, exe, xattr("security.capability", "\x01\x00\x00\x02")), dst: binFile(p, exeStripped),
			want: []got{{p, "content", verify.ELFStripped}, {p, "xattrs", verify.Violation}},
		},
		{
			name: "an ELF file replaced by another", src: binFile(p, exe), dst: binFile(p, obj),
			want: []got{{p, "content", verify.Violation}},
		},
		{
			name: "an appended payload kept", src: binFile(p, withPayload(exe)), dst: binFile(p, withPayload(exeStripped)),
			want: []got{{p, "content", verify.ELFStripped}},
		},
		{
			name: "an appended payload cut off", src: binFile(p, withPayload(exe)), dst: binFile(p, exeStripped),
			want: []got{{p, "content", verify.Violation}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := imageOf(t, nil, []ent{dir("app"), tc.src})
			dst := imageOf(t, nil, []ent{dir("app"), tc.dst})
			res, err := verify.Image(context.Background(), src, dst, verify.Options{TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, summarize(res)); diff != "" {
				t.Errorf("differences (-want +got):\n%s\n%+v", diff, res.Differences)
			}
		})
	}
}

func TestImageELFSpoolsAreRemoved(t *testing.T) {
	exe, exeStripped, _, _ := cBinaries(t)
	tmp := t.TempDir()
	src := imageOf(t, nil, []ent{binFile("a", exe), binFile("b", exe)})
	dst := imageOf(t, nil, []ent{binFile("a", exeStripped), binFile("b", exe)})
	if _, err := verify.Image(context.Background(), src, dst, verify.Options{TempDir: tmp, Jobs: 2}); err != nil {
		t.Fatal(err)
	}
	left, _ := os.ReadDir(tmp)
	if len(left) != 0 {
		t.Errorf("%d spool files left in the temporary directory", len(left))
	}
}

func withPayload(b []byte) []byte {
	return append(bytes.Clone(b), "PK\x03\x04 a zip payload PK\x05\x06\x00\x00"...)
}

// A separate debug file (objcopy --only-keep-debug output, or anything ELF
// under usr/lib/debug) may be missing: the rewrite moves it to the debug
// image; so may an implicit directory that held nothing else. A missing
// program may not.
func TestMissingDebugFile(t *testing.T) {
	need(t, "gcc", "objcopy")
	tmp := t.TempDir()
	os.WriteFile(filepath.Join(tmp, "hello.c"), []byte(helloC), 0o644)
	runTool(t, tmp, nil, "gcc", "-g", "-O1", "-o", "hello", "hello.c")
	runTool(t, tmp, nil, "objcopy", "--only-keep-debug", "hello", "hello.debug")
	exe, _ := os.ReadFile(filepath.Join(tmp, "hello"))
	dbg, _ := os.ReadFile(filepath.Join(tmp, "hello.debug"))
	src := imageOf(t, nil, []ent{dir("app"), binFile("app/hello", exe), binFile("app/.debug/hello.debug", dbg),
		binFile("usr/lib/debug/.build-id/ab/cdef.debug", exe), binFile("opt/x/prog", exe)})
	dst := imageOf(t, nil, []ent{dir("app"), binFile("app/hello", exe)})
	res, err := verify.Image(context.Background(), src, dst, verify.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	want := []got{
		{"app/.debug", "missing", verify.Dropped},
		{"app/.debug/hello.debug", "missing", verify.Dropped},
		{"opt", "missing", verify.Violation},
		{"opt/x", "missing", verify.Violation},
		{"opt/x/prog", "missing", verify.Violation},
		{"usr", "missing", verify.Dropped},
		{"usr/lib", "missing", verify.Dropped},
		{"usr/lib/debug", "missing", verify.Dropped},
		{"usr/lib/debug/.build-id", "missing", verify.Dropped},
		{"usr/lib/debug/.build-id/ab", "missing", verify.Dropped},
		{"usr/lib/debug/.build-id/ab/cdef.debug", "missing", verify.Dropped},
	}
	if diff := cmp.Diff(want, summarize(res)); diff != "" {
		t.Errorf("differences (-want +got):\n%s\n%+v", diff, res.Differences)
	}
}
