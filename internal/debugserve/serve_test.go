package debugserve_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/layerslim/layerslim/internal/debugserve"
)

// debuglink returns the file name and CRC of an ELF file's .gnu_debuglink.
func debuglink(t *testing.T, b []byte) (string, uint32) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	s := f.Section(".gnu_debuglink")
	if s == nil {
		t.Fatal("no .gnu_debuglink in the stripped program")
	}
	d, _ := s.Data()
	n := bytes.IndexByte(d, 0)
	return string(d[:n]), binary.LittleEndian.Uint32(d[len(d)-4:])
}

// elfutils' client gets the debug file of a stripped program of a slim
// image (its CRC is the one in the program's .gnu_debuglink) and the
// stripped program itself, byte for byte.
func TestDebuginfodFind(t *testing.T) {
	hello := buildProgram(t, "hello")
	dir := slimLayout(t, "", "app", hello)
	stripped := layoutFile(t, dir, "app", hello.path)
	if bytes.Equal(stripped, hello.bin) {
		t.Fatal("rewrite did not strip the program")
	}
	_, hs := server(t, "", debugserve.Options{}, "oci:"+dir)

	path, err := debuginfodFind(t, hs.URL, "debuginfo", hello.buildID)
	if err != nil {
		t.Fatalf("debuginfod-find debuginfo: %v", err)
	}
	dbg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, crc := debuglink(t, stripped); crc32.ChecksumIEEE(dbg) != crc {
		t.Errorf("the debug file's CRC is %08x, the program's .gnu_debuglink says %08x", crc32.ChecksumIEEE(dbg), crc)
	}
	want := layoutFile(t, dir, "app-debug", "usr/lib/debug/.build-id/"+hello.buildID[:2]+"/"+hello.buildID[2:]+".debug")
	if !bytes.Equal(dbg, want) {
		t.Error("debuginfo differs from the debug image's file")
	}

	path, err = debuginfodFind(t, hs.URL, "executable", hello.buildID)
	if err != nil {
		t.Fatalf("debuginfod-find executable: %v", err)
	}
	exe, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(exe, stripped) {
		t.Error("executable is not the slim image's stripped program")
	}
}

// gdb, told of the server by DEBUGINFOD_URLS only, finds the source line of
// main in the stripped program, and names the functions and lines of a core
// file's backtrace.
func TestGDB(t *testing.T) {
	gdb := tool(t, "gdb")
	hello := buildProgram(t, "hello")
	dir := slimLayout(t, "", "app", hello)
	_, hs := server(t, "", debugserve.Options{}, "oci:"+dir)

	work := t.TempDir()
	exe := filepath.Join(work, "hello")
	if err := os.WriteFile(exe, layoutFile(t, dir, "app", hello.path), 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "DEBUGINFOD_URLS="+hs.URL, "DEBUGINFOD_CACHE_PATH="+t.TempDir(), "DEBUGINFOD_TIMEOUT=60", "HOME="+work)
	rungdb := func(args ...string) string {
		t.Helper()
		// No local debug files: only the server can help.
		args = append([]string{"-nx", "-batch", "-iex", "set debuginfod enabled on", "-iex", "set debug-file-directory " + work}, args...)
		cmd := exec.CommandContext(t.Context(), gdb, args...)
		cmd.Env = env
		cmd.Dir = work
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("gdb %v: %v\n%s", args, err, out)
		}
		return string(out)
	}

	// Without the server, gdb has no line table for the stripped program.
	cmd := exec.CommandContext(t.Context(), gdb, "-nx", "-batch", "-iex", "set debug-file-directory "+work, "-ex", "info line main", exe)
	cmd.Env = append(os.Environ(), "DEBUGINFOD_URLS=", "HOME="+work)
	if out, _ := cmd.CombinedOutput(); strings.Contains(string(out), "hello.c") {
		t.Fatalf("gdb finds lines without the server:\n%s", out)
	}

	out := rungdb("-ex", "info line main", exe)
	if !strings.Contains(out, `Line 8 of "`+hello.src+`"`) {
		t.Errorf("info line main did not find hello.c:8:\n%s", out)
	}

	// A core file of the stripped program, dumped by gdb at its abort().
	core := filepath.Join(work, "core")
	cmd = exec.CommandContext(t.Context(), gdb, "-nx", "-batch", "-ex", "run", "-ex", "generate-core-file "+core, "--args", exe, "crash")
	cmd.Env = append(os.Environ(), "DEBUGINFOD_URLS=", "HOME="+work)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dumping a core: %v\n%s", err, out)
	}
	out = rungdb("-ex", "bt", exe, core)
	for _, want := range []string{"crash_hello () at " + hello.src + ":6", "main (argc=2, argv="} {
		if !strings.Contains(out, want) {
			t.Errorf("the backtrace lacks %q:\n%s", want, out)
		}
	}
}
