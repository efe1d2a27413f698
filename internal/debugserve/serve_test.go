package debugserve_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"hash/crc32"
	"os"
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
