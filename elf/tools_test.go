package elf

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	stdelf "debug/elf"
)

// needTool returns the path of an external command. Without it the test
// is skipped, except in CI (CI=true), where it fails: CI installs every
// package in testdata/debian-packages.txt and must not skip silently.
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (see elf/testdata/debian-packages.txt)", name)
		}
		t.Skipf("%s is not installed (see elf/testdata/debian-packages.txt)", name)
	}
	return p
}

// command runs name with args in dir with extra environment variables and
// returns stdout and stderr together.
func command(t testing.TB, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, needTool(t, name), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// mustRun is command that fails the test when the command fails.
func mustRun(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := command(t, dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// target is a toolchain and a way to run its programs.
type target struct {
	name     string
	cc       string   // C compiler
	binutils string   // prefix of strip and objcopy for this target
	run      []string // how to run a program: nil natively, else a qemu-user command
}

var nativeTarget = target{name: "native", cc: "gcc"}

// crossTargets are the Debian cross compilers (gcc-<triple>) and the
// qemu-user-static emulators the cross tests use.
var crossTargets = []target{
	{"aarch64", "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-", []string{"qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu"}},
	{"s390x", "s390x-linux-gnu-gcc", "s390x-linux-gnu-", []string{"qemu-s390x-static", "-L", "/usr/s390x-linux-gnu"}},
	{"armhf", "arm-linux-gnueabihf-gcc", "arm-linux-gnueabihf-", []string{"qemu-arm-static", "-L", "/usr/arm-linux-gnueabihf"}},
	{"i686", "i686-linux-gnu-gcc", "i686-linux-gnu-", []string{"qemu-i386-static", "-L", "/usr/i686-linux-gnu"}},
	{"powerpc", "powerpc-linux-gnu-gcc", "powerpc-linux-gnu-", []string{"qemu-ppc-static", "-L", "/usr/powerpc-linux-gnu"}},
	{"mips", "mips-linux-gnu-gcc", "mips-linux-gnu-", []string{"qemu-mips-static", "-L", "/usr/mips-linux-gnu"}},
	{"riscv64", "riscv64-linux-gnu-gcc", "riscv64-linux-gnu-", []string{"qemu-riscv64-static", "-L", "/usr/riscv64-linux-gnu"}},
	{"ppc64le", "powerpc64le-linux-gnu-gcc", "powerpc64le-linux-gnu-", []string{"qemu-ppc64le-static", "-L", "/usr/powerpc64le-linux-gnu"}},
}

// runProgram runs path (natively or under qemu) and returns its output.
func (tg target) runProgram(t testing.TB, env []string, path string) string {
	t.Helper()
	if tg.run == nil {
		return mustRun(t, filepath.Dir(path), env, path)
	}
	return mustRun(t, filepath.Dir(path), env, tg.run[0], append(slices.Clone(tg.run[1:]), path)...)
}

// splitFile splits in into dir/<base>.stripped and dir/<base>.debug and
// runs the debug/elf checks on the result.
func splitFile(t testing.TB, in string, mode Mode) (stripped, debug string, res *Result) {
	t.Helper()
	b, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(in) + ".debug"
	s, d, res, err := splitBytes(t, b, mode, name)
	if err != nil {
		t.Fatalf("Split(%s, %v): %v", in, mode, err)
	}
	checkOutputs(t, b, s, d, mode, name)
	dir := filepath.Join(filepath.Dir(in), "out-"+mode.String())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stripped = filepath.Join(dir, filepath.Base(in))
	debug = filepath.Join(dir, name)
	if err := os.WriteFile(stripped, s, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(debug, d, 0o644); err != nil {
		t.Fatal(err)
	}
	return stripped, debug, res
}

// stripArgs are the binutils strip options that remove what mode removes
// from a file of type typ.
func stripArgs(mode Mode, typ stdelf.Type) []string {
	switch {
	case typ == stdelf.ET_REL || mode == Debug:
		return []string{"--strip-debug"}
	case mode == All:
		return []string{"--strip-all", "--remove-section=.comment"}
	}
	return []string{"--strip-unneeded"}
}

var (
	hexRE = regexp.MustCompile(`0x[0-9a-fA-F]+|\b[0-9a-fA-F]*[0-9][0-9a-fA-F]*\b`)
)

// diagnostics returns the warning and error lines a checker prints about
// path, with the path and all numbers normalised away.
func diagnostics(t testing.TB, path string, name string, args ...string) []string {
	t.Helper()
	out, _ := command(t, "", nil, name, append(args, path)...)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if name == "readelf" && !strings.Contains(l, "Warning") && !strings.Contains(l, "Error") {
			continue
		}
		if l = strings.TrimSpace(l); l == "" || l == "No errors" {
			continue
		}
		l = strings.ReplaceAll(l, path, "FILE")
		lines = append(lines, hexRE.ReplaceAllString(l, "N"))
	}
	return lines
}

// compareDiagnostics fails t for every diagnostic the checker reports on
// ours that it does not also report on ref (the binutils output).
func compareDiagnostics(t testing.TB, what, ours, ref string, name string, args ...string) {
	t.Helper()
	theirs := diagnostics(t, ref, name, args...)
	for _, l := range diagnostics(t, ours, name, args...) {
		if !slices.Contains(theirs, l) {
			t.Errorf("%s: %s %s reports on our output, not on binutils': %s", what, name, strings.Join(args, " "), l)
		}
	}
}

// checkWithTools splits in with mode and compares the result with what
// binutils makes of the same input: readelf and eu-elflint diagnostics,
// sizes, and the .gnu_debuglink CRC read back with binutils.
func checkWithTools(t testing.TB, tg target, in string, mode Mode) (stripped, debug string) {
	t.Helper()
	stripped, debug, _ = splitFile(t, in, mode)
	fi, err := stdelf.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer fi.Close()
	dir := filepath.Dir(stripped)
	refStripped := filepath.Join(dir, "ref-"+filepath.Base(in))
	refDebug := filepath.Join(dir, "ref-"+filepath.Base(in)+".debug")
	mustRun(t, "", nil, tg.binutils+"strip", append(stripArgs(mode, fi.Type), "-o", refStripped, in)...)
	mustRun(t, "", nil, tg.binutils+"objcopy", "--only-keep-debug", in, refDebug)

	// (2) readelf and eu-elflint.
	compareDiagnostics(t, "stripped", stripped, refStripped, "readelf", "-a", "-W")
	compareDiagnostics(t, "debug", debug, refDebug, "readelf", "-a", "-W")
	compareDiagnostics(t, "stripped", stripped, refStripped, "eu-elflint", "--gnu-ld")
	compareDiagnostics(t, "debug", debug, refDebug, "eu-elflint", "--gnu-ld", "-d")

	// (7) Size against strip's.
	ours, ref := fileSize(t, stripped), fileSize(t, refStripped)
	if limit := ref + max(ref/100, 4096); ours > limit {
		t.Errorf("stripped file is %d bytes, strip %s makes %d", ours, strings.Join(stripArgs(mode, fi.Type), " "), ref)
	}
	t.Logf("%s %v: input %d, ours %d, binutils %d; debug %d, objcopy %d", filepath.Base(in), mode,
		fileSize(t, in), ours, ref, fileSize(t, debug), fileSize(t, refDebug))

	// (5) The debuglink, read back with binutils.
	if out := mustRun(t, "", nil, "readelf", "--string-dump=.gnu_debuglink", stripped); !strings.Contains(out, filepath.Base(debug)) {
		t.Errorf("readelf --string-dump=.gnu_debuglink does not show %s:\n%s", filepath.Base(debug), out)
	}
	dump := filepath.Join(dir, "debuglink.bin")
	mustRun(t, "", nil, tg.binutils+"objcopy", "--dump-section", ".gnu_debuglink="+dump, stripped, filepath.Join(dir, "objcopy.out"))
	link, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	dbg, err := os.ReadFile(debug)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.ByteOrder.Uint32(link[len(link)-4:]), crc32.ChecksumIEEE(dbg); got != want {
		t.Errorf("objcopy --dump-section .gnu_debuglink: CRC %#08x, debug file %#08x", got, want)
	}
	return stripped, debug
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// buildC compiles src (a file in testdata, or C code) with tg's compiler.
func buildC(t testing.TB, tg target, dir, out string, args ...string) string {
	t.Helper()
	needTool(t, tg.cc)
	path := filepath.Join(dir, out)
	mustRun(t, dir, nil, tg.cc, append(args, "-o", path)...)
	return path
}

func writeFile(t testing.TB, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func testdataPath(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkProgram splits the program prog in every mode, checks the outputs
// with the tools and runs the stripped program.
func checkProgram(t *testing.T, tg target, prog string, env []string) {
	want := tg.runProgram(t, env, prog)
	for _, mode := range []Mode{Unneeded, Debug, All} {
		t.Run(mode.String(), func(t *testing.T) {
			stripped, _ := checkWithTools(t, tg, prog, mode)
			if got := tg.runProgram(t, env, stripped); got != want {
				t.Errorf("stripped program prints %q, the original %q", got, want)
			}
		})
	}
}

func TestNativeC(t *testing.T) {
	hello := testdataPath(t, "hello.c")
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"pie", []string{"-g", "-O1"}},
		{"nopie", []string{"-g", "-O1", "-no-pie"}},
		{"gz", []string{"-g", "-O1", "-gz=zlib"}},
		{"dwarf4-O2", []string{"-gdwarf-4", "-O2"}},
		{"static", []string{"-g", "-O1", "-static"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			prog := buildC(t, nativeTarget, dir, "hello", append(tc.flags, hello)...)
			checkProgram(t, nativeTarget, prog, nil)
		})
	}
}

func TestNativeSharedLibrary(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "greet.c"), "#include <stdio.h>\nint greet(const char *who) { return printf(\"hello, %s\\n\", who); }\n")
	writeFile(t, filepath.Join(dir, "main.c"), "int greet(const char *);\nint main(void) { greet(\"library\"); return 0; }\n")
	lib := buildC(t, nativeTarget, dir, "libgreet.so", "-g", "-O1", "-shared", "-fPIC", "-Wl,-soname,libgreet.so", "greet.c")
	prog := buildC(t, nativeTarget, dir, "main", "-g", "-O1", "main.c", "-L.", "-lgreet")
	env := []string{"LD_LIBRARY_PATH=" + dir}
	want := nativeTarget.runProgram(t, env, prog)
	for _, mode := range []Mode{Unneeded, Debug, All} {
		t.Run(mode.String(), func(t *testing.T) {
			stripped, _ := checkWithTools(t, nativeTarget, lib, mode)
			env := []string{"LD_LIBRARY_PATH=" + filepath.Dir(stripped)}
			if got := nativeTarget.runProgram(t, env, prog); got != want {
				t.Errorf("program with the stripped library prints %q, want %q", got, want)
			}
		})
	}
}

// TestNativeObject strips relocatable objects (C, and C++ with COMDAT
// groups and -g3 macro sections in groups) and links the results.
func TestNativeObject(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "tmpl.cc"), `#include <cstdio>
#include <vector>
template <typename T> T sum(const std::vector<T>& v) { T s{}; for (auto x : v) s += x; return s; }
inline int twice(int x) { return 2 * x; }
int main() { std::vector<int> v{1, 2, 3}; std::printf("sum %d twice %d\n", sum(v), twice(21)); }
`)
	for _, tc := range []struct {
		name, cc, src string
		flags         []string
	}{
		{"c", "gcc", testdataPath(t, "hello.c"), []string{"-g", "-O1"}},
		{"c-g3", "gcc", testdataPath(t, "hello.c"), []string{"-g3", "-O1"}},
		{"cxx-g3", "g++", "tmpl.cc", []string{"-g3", "-O1"}},
		{"cxx-ffunction-sections", "g++", "tmpl.cc", []string{"-g", "-O2", "-ffunction-sections"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := target{name: tc.name, cc: tc.cc}
			obj := buildC(t, tg, dir, tc.name+".o", append(tc.flags, "-c", tc.src)...)
			want := tg.runProgram(t, nil, buildC(t, tg, dir, tc.name+"-orig", obj))
			for _, mode := range []Mode{Unneeded, Debug, All} {
				t.Run(mode.String(), func(t *testing.T) {
					stripped, _ := checkWithTools(t, tg, obj, mode)
					prog := buildC(t, tg, filepath.Dir(stripped), "linked", stripped)
					if got := tg.runProgram(t, nil, prog); got != want {
						t.Errorf("program linked from the stripped object prints %q, want %q", got, want)
					}
				})
			}
		})
	}
}

// TestNativeArchive strips a static archive and links a program with it.
func TestNativeArchive(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "add.c"), "int add(int a, int b) { return a + b; }\n")
	writeFile(t, filepath.Join(dir, "mul.c"), "int mul(int a, int b) { return a * b; }\nconst char *mul_name = \"a long enough name to need more than sixteen characters\";\n")
	writeFile(t, filepath.Join(dir, "README.txt"), "not an object\n")
	writeFile(t, filepath.Join(dir, "main.c"), "#include <stdio.h>\nint add(int, int); int mul(int, int);\nint main(void) { printf(\"%d\\n\", add(2, mul(3, 4))); return 0; }\n")
	mustRun(t, dir, nil, "gcc", "-g", "-O1", "-c", "add.c", "mul.c")
	if err := os.Rename(filepath.Join(dir, "mul.o"), filepath.Join(dir, "multiplication-with-a-long-name.o")); err != nil {
		t.Fatal(err)
	}
	mustRun(t, dir, nil, "ar", "rcs", "libcalc.a", "add.o", "README.txt", "multiplication-with-a-long-name.o")
	lib := filepath.Join(dir, "libcalc.a")
	want := nativeTarget.runProgram(t, nil, buildC(t, nativeTarget, dir, "orig", "main.c", lib))

	in, err := os.ReadFile(lib)
	if err != nil {
		t.Fatal(err)
	}
	if !IsArchive(bytes.NewReader(in), int64(len(in))) {
		t.Fatal("IsArchive = false")
	}
	var out bytes.Buffer
	res, err := SplitArchive(bytes.NewReader(in), int64(len(in)), &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.StrippedSize != int64(out.Len()) || res.DebugSize != 0 || res.DebugBytes == 0 {
		t.Errorf("Result %+v for %d bytes written", res, out.Len())
	}
	sdir := filepath.Join(dir, "stripped")
	if err := os.Mkdir(sdir, 0o755); err != nil {
		t.Fatal(err)
	}
	slib := filepath.Join(sdir, "libcalc.a")
	if err := os.WriteFile(slib, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// (6) It still links, and the program runs.
	if got := nativeTarget.runProgram(t, nil, buildC(t, nativeTarget, sdir, "linked", filepath.Join(dir, "main.c"), slib)); got != want {
		t.Errorf("program linked with the stripped archive prints %q, want %q", got, want)
	}
	// The members and the symbol index agree with binutils' view.
	if got, want := mustRun(t, "", nil, "ar", "t", slib), mustRun(t, "", nil, "ar", "t", lib); got != want {
		t.Errorf("ar t: %q, want %q", got, want)
	}
	if got, want := mustRun(t, sdir, nil, "nm", "-s", "libcalc.a"), mustRun(t, dir, nil, "nm", "-s", "libcalc.a"); got != want {
		t.Errorf("nm -s differs:\n%s\nwant:\n%s", got, want)
	}
	// A symbol index that binutils regenerates is the same as ours.
	re := filepath.Join(sdir, "ranlib.a")
	if err := os.WriteFile(re, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "", nil, "ranlib", re)
	if b, _ := os.ReadFile(re); !bytes.Equal(b, out.Bytes()) {
		t.Error("ranlib changes our archive")
	}
	mustRun(t, sdir, nil, "ar", "x", "libcalc.a")
	for _, m := range []string{"add.o", "multiplication-with-a-long-name.o"} {
		compareDiagnostics(t, m, filepath.Join(sdir, m), filepath.Join(dir, m), "eu-elflint", "--gnu-ld")
	}
	if b, _ := os.ReadFile(filepath.Join(sdir, "README.txt")); string(b) != "not an object\n" {
		t.Errorf("non-ELF member changed: %q", b)
	}
	ref := filepath.Join(dir, "ref.a")
	mustRun(t, "", nil, "strip", "--strip-debug", "-o", ref, lib)
	if ours, theirs := int64(out.Len()), fileSize(t, ref); ours > theirs+max(theirs/100, 4096) {
		t.Errorf("stripped archive %d bytes, strip --strip-debug %d", ours, theirs)
	}
	// Stripping again finds nothing.
	if _, err := SplitArchive(bytes.NewReader(out.Bytes()), int64(out.Len()), &bytes.Buffer{}); !isUnchanged(err) {
		t.Errorf("second SplitArchive: %v, want ErrUnchanged", err)
	}
}

func isUnchanged(err error) bool { return err != nil && strings.Contains(err.Error(), "unchanged") }

func TestCrossC(t *testing.T) {
	hello := testdataPath(t, "hello.c")
	for _, tg := range crossTargets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			needTool(t, tg.run[0])
			dir := t.TempDir()
			prog := buildC(t, tg, dir, "hello", "-g", "-O1", hello)
			checkProgram(t, tg, prog, nil)
			obj := buildC(t, tg, dir, "hello.o", "-g", "-O1", "-c", hello)
			want := tg.runProgram(t, nil, prog)
			stripped, _ := checkWithTools(t, tg, obj, Unneeded)
			if got := tg.runProgram(t, nil, buildC(t, tg, filepath.Dir(stripped), "linked", stripped)); got != want {
				t.Errorf("program linked from the stripped object prints %q, want %q", got, want)
			}
		})
	}
}

// goTargets are the GOARCHes the Go tests build for, with binutils for
// the comparison and how to run the result.
var goTargets = []target{
	{"amd64", "", "", nil},
	{"arm64", "", "aarch64-linux-gnu-", []string{"qemu-aarch64-static"}},
	{"s390x", "", "s390x-linux-gnu-", []string{"qemu-s390x-static"}},
	{"arm", "", "arm-linux-gnueabihf-", []string{"qemu-arm-static"}},
	{"386", "", "i686-linux-gnu-", nil}, // qemu-i386 7.2 crashes on Go binaries; 386 runs natively
	{"ppc64le", "", "powerpc64le-linux-gnu-", []string{"qemu-ppc64le-static"}},
	{"riscv64", "", "riscv64-linux-gnu-", []string{"qemu-riscv64-static"}},
}

const goHello = `package main

// Only os and runtime, so that building it for seven GOARCHes on a
// fresh machine stays quick.
import (
	"os"
	"runtime"
)

func main() {
	os.Stdout.WriteString("hello from " + runtime.GOARCH + ", " + os.Args[0][len(os.Args[0])-1:] + "\n")
}
`

// buildGo builds goHello for goarch with extra go build flags.
func buildGo(t testing.TB, dir, goarch, out string, flags ...string) string {
	t.Helper()
	writeFile(t, filepath.Join(dir, "go.mod"), "module hello\n\ngo 1.22\n")
	writeFile(t, filepath.Join(dir, "main.go"), goHello)
	path := filepath.Join(dir, out)
	env := []string{"GOOS=linux", "GOARCH=" + goarch, "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=", "GO111MODULE=on"}
	mustRun(t, dir, env, "go", append(append([]string{"build"}, flags...), "-o", path, ".")...)
	return path
}

func TestGo(t *testing.T) {
	for _, tg := range goTargets {
		t.Run(tg.name, func(t *testing.T) {
			if testing.Short() && tg.name != "amd64" {
				t.Skip("-short: building the standard library for another GOARCH takes a minute")
			}
			dir := t.TempDir()
			prog := buildGo(t, dir, tg.name, "hello")
			f, err := stdelf.Open(prog)
			if err != nil {
				t.Fatal(err)
			}
			if s := f.Section(".debug_info"); s == nil || s.Flags&stdelf.SHF_COMPRESSED == 0 {
				t.Errorf("expected Go to write compressed DWARF")
			}
			f.Close()
			if tg.run != nil {
				needTool(t, tg.run[0])
			}
			checkProgram(t, tg, prog, nil)
			stripped, _, _ := splitFile(t, prog, Unneeded)
			if out := mustRun(t, "", nil, "go", "version", "-m", stripped); !strings.Contains(out, "path\thello") {
				t.Errorf("go version -m on the stripped binary:\n%s", out)
			}

			// Built with -s -w there is nothing to strip.
			bare := buildGo(t, dir, tg.name, "bare", "-ldflags=-s -w")
			b, err := os.ReadFile(bare)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := splitBytes(t, b, Unneeded, "x"); !isUnchanged(err) {
				t.Errorf("Split of a -s -w binary: %v, want ErrUnchanged", err)
			}
		})
	}
}

// TestGDB checks that gdb finds the debug file through the build-id
// directory and resolves `info line main` for a stripped program, and
// that it does not without the debug file.
func TestGDB(t *testing.T) {
	needTool(t, "gdb-multiarch")
	for _, tc := range []struct {
		name, fn, file string
		build          func(t *testing.T, dir string) string
	}{
		{"c", "main", "hello.c", func(t *testing.T, dir string) string {
			return buildC(t, nativeTarget, dir, "hello", "-g", "-O1", testdataPath(t, "hello.c"))
		}},
		{"go", "main.main", "main.go", func(t *testing.T, dir string) string {
			return buildGo(t, dir, "amd64", "hello")
		}},
		{"c-aarch64", "main", "hello.c", func(t *testing.T, dir string) string {
			return buildC(t, crossTargets[0], dir, "hello", "-g", "-O1", testdataPath(t, "hello.c"))
		}},
		{"c-s390x", "main", "hello.c", func(t *testing.T, dir string) string {
			return buildC(t, crossTargets[1], dir, "hello", "-g", "-O1", testdataPath(t, "hello.c"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			prog := tc.build(t, dir)
			stripped, debug, res := splitFile(t, prog, Unneeded)
			if len(res.BuildID) < 4 {
				t.Fatalf("no build-id: %+v", res.Info)
			}
			// Move the stripped program away from its debug file, so only
			// the build-id tree can lead gdb to it.
			alone := filepath.Join(dir, "alone")
			if err := os.Mkdir(alone, 0o755); err != nil {
				t.Fatal(err)
			}
			exe := filepath.Join(alone, "prog")
			if err := os.Rename(stripped, exe); err != nil {
				t.Fatal(err)
			}
			gdb := func(debugDir string) string {
				out, _ := command(t, "", nil, "gdb-multiarch", "-batch", "-nx",
					"-iex", "set debug-file-directory "+debugDir,
					"-ex", "info line "+tc.fn, exe)
				return out
			}
			if out := gdb(filepath.Join(dir, "empty")); strings.Contains(out, tc.file) {
				t.Errorf("gdb finds line information without the debug file:\n%s", out)
			}
			tree := filepath.Join(dir, "debug")
			p := filepath.Join(tree, ".build-id", res.BuildID[:2], res.BuildID[2:]+".debug")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(debug, p); err != nil {
				t.Fatal(err)
			}
			out := gdb(tree)
			if !regexp.MustCompile(`Line \d+ of "[^"]*` + regexp.QuoteMeta(tc.file) + `"`).MatchString(out) {
				t.Errorf("gdb does not resolve info line %s with the build-id tree:\n%s", tc.fn, out)
			}
			// And through .gnu_debuglink next to the program.
			if err := os.Rename(p, filepath.Join(alone, filepath.Base(debug))); err != nil {
				t.Fatal(err)
			}
			if out := gdb(filepath.Join(dir, "empty")); !strings.Contains(out, tc.file) {
				t.Errorf("gdb does not resolve info line %s through .gnu_debuglink:\n%s", tc.fn, out)
			}
		})
	}
}

func TestRust(t *testing.T) {
	rustc, err := exec.LookPath("rustc")
	if err != nil {
		if home, _ := os.UserHomeDir(); home != "" {
			rustc = filepath.Join(home, ".cargo", "bin", "rustc")
		}
		if _, err := os.Stat(rustc); err != nil {
			t.Skip("rustc is not installed (it is not a Debian package the CI installs)")
		}
	}
	dir := t.TempDir()
	src := writeFile(t, filepath.Join(dir, "hello.rs"), "fn main() { let v: Vec<u32> = (1..5).collect(); println!(\"hello rust {:?}\", v); }\n")
	prog := filepath.Join(dir, "hello")
	mustRun(t, dir, nil, rustc, "-g", "-o", prog, src)
	checkProgram(t, nativeTarget, prog, nil)
	f, err := stdelf.Open(filepath.Join(dir, "out-unneeded", "hello"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if s := f.Section(".debug_gdb_scripts"); s == nil || s.Flags&stdelf.SHF_ALLOC == 0 {
		t.Errorf("allocated .debug_gdb_scripts is gone: %v", s)
	}
}

// TestManySections strips an object with more than 0xff00 sections, which
// uses extended section numbering (e_shnum 0, SHN_XINDEX, .symtab_shndx).
func TestManySections(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	dir := t.TempDir()
	var src strings.Builder
	const n = 66000 // one section each with -fdata-sections
	for i := range n {
		fmt.Fprintf(&src, "int d%d = %d;\n", i, i)
	}
	fmt.Fprintf(&src, "#include <stdio.h>\nint main(void) { printf(\"%%d\\n\", d%d); return 0; }\n", n-1)
	writeFile(t, filepath.Join(dir, "many.c"), src.String())
	obj := buildC(t, nativeTarget, dir, "many.o", "-g", "-O1", "-fdata-sections", "-c", "many.c")
	f, err := stdelf.Open(obj)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Sections) < shnLoreserve {
		t.Fatalf("only %d sections", len(f.Sections))
	}
	f.Close()
	want := nativeTarget.runProgram(t, nil, buildC(t, nativeTarget, dir, "orig", obj))
	stripped, _ := checkWithTools(t, nativeTarget, obj, Debug)
	if got := nativeTarget.runProgram(t, nil, buildC(t, nativeTarget, filepath.Dir(stripped), "linked", stripped)); got != want {
		t.Errorf("linked program prints %q, want %q", got, want)
	}
}

// Static programs for these targets have allocated relocation sections
// (.rela.plt, .rela.dyn, .rel.plt of IRELATIVE entries) linked to .symtab:
// --strip debug keeps .symtab and points their sh_link at its new index,
// as binutils' strip --strip-debug does, and the program still runs.
func TestCrossStatic(t *testing.T) {
	hello := testdataPath(t, "hello.c")
	for _, tg := range crossTargets {
		switch tg.name {
		case "aarch64", "armhf", "s390x", "riscv64":
		default:
			continue
		}
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			needTool(t, tg.run[0])
			dir := t.TempDir()
			prog := buildC(t, tg, dir, "hello", "-g", "-O1", "-static", hello)
			want := tg.runProgram(t, nil, prog)
			for _, mode := range []Mode{Unneeded, All} {
				stripped, _ := checkWithTools(t, tg, prog, mode)
				if got := tg.runProgram(t, nil, stripped); got != want {
					t.Errorf("%v: stripped program prints %q, the original %q", mode, got, want)
				}
			}
			// strip --strip-debug also drops the FILE symbols, which
			// .symtab keeps here: not binutils' size, but its diagnostics.
			stripped, _, _ := splitFile(t, prog, Debug)
			ref := filepath.Join(dir, "ref-debug")
			mustRun(t, "", nil, tg.binutils+"strip", "--strip-debug", "-o", ref, prog)
			compareDiagnostics(t, "stripped", stripped, ref, "eu-elflint", "--gnu-ld")
			if got := tg.runProgram(t, nil, stripped); got != want {
				t.Errorf("debug: stripped program prints %q, the original %q", got, want)
			}
			f, err := stdelf.Open(stripped)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			symtab := -1
			for i, s := range f.Sections {
				if s.Type == stdelf.SHT_SYMTAB {
					symtab = i
				}
				if strings.HasPrefix(s.Name, ".debug_") {
					t.Errorf("%s is still there", s.Name)
				}
			}
			if symtab < 0 {
				t.Fatal("--strip debug removed .symtab")
			}
			linked := 0
			for _, s := range f.Sections {
				if (s.Type == stdelf.SHT_RELA || s.Type == stdelf.SHT_REL) && s.Flags&stdelf.SHF_ALLOC != 0 && s.Link != 0 {
					linked++
					if int(s.Link) != symtab {
						t.Errorf("%s links section %d, .symtab is %d", s.Name, s.Link, symtab)
					}
				}
			}
			if linked == 0 {
				t.Log("no allocated relocation section links .symtab on this target")
			}
		})
	}
}
