package rewrite_test

import (
	"archive/tar"
	"bytes"
	"context"
	stdelf "debug/elf"
	"encoding/binary"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/rewrite"
)

// helloBinary builds an unstripped static Go program for GOARCH arch.
func helloBinary(t testing.TB, arch string) []byte {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	os.WriteFile(src, []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello from a split binary\") }\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.22\n"), 0o644)
	out := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readAll is the entries of a tar by name (a directory's without its
// trailing slash).
func readAll(t testing.TB, tarball []byte) map[string]testenv.File {
	t.Helper()
	out := map[string]testenv.File{}
	for _, f := range testenv.ReadTar(t, bytes.NewReader(tarball)) {
		out[strings.TrimSuffix(f.Name, "/")] = f
	}
	return out
}

func loads(t testing.TB, b []byte) [][]byte {
	t.Helper()
	f, err := stdelf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, p := range f.Progs {
		if p.Type == stdelf.PT_LOAD {
			seg := make([]byte, p.Filesz)
			if _, err := p.ReadAt(seg, 0); err != nil {
				t.Fatal(err)
			}
			out = append(out, seg)
		}
	}
	return out
}

func TestSplitELFAndDebugImage(t *testing.T) {
	bin := helloBinary(t, "amd64")
	cap := "\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	mt := time.Unix(1700000000, 0)
	layer := testenv.TarLayer(t, []testenv.File{
		{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt},
		{Name: "app/hello", Mode: 0o4750, Uid: 1000, Gid: 1000, ModTime: mt,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": cap}, Body: bin},
		{Name: "app/hello-link", Typeflag: tar.TypeLink, Linkname: "app/hello", ModTime: mt},
		{Name: "app/fake.so", Mode: 0o644, ModTime: mt, Body: []byte("\x7fELF but then just text, as a linker script might be")},
		{Name: "app/readme", Mode: 0o644, ModTime: mt, Body: []byte("hello")},
	})
	src := dockerImage(t, "amd64", gzipLayer(t, tarOf(t, 1, 5)), gzipLayer(t, layer))
	res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()),
		rewrite.WithStrip(elf.Unneeded), rewrite.WithDebugImage(true))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	checkImage(t, res.Image, compress.Zstd)
	checkImage(t, res.DebugImage, compress.Zstd)
	rewrite.CheckVerified(t, src, res, nil)

	slim, _ := res.Image.Layers()
	got := readAll(t, layerBytes(t, slim[1]))
	hello := got["app/hello"]
	if len(hello.Body) >= len(bin) {
		t.Fatalf("stripped binary is %d bytes, the original %d", len(hello.Body), len(bin))
	}
	h := hello
	if h.Mode != 0o4750 || h.Uid != 1000 || h.Gid != 1000 || !h.ModTime.Equal(mt) || h.Xattrs["security.capability"] != cap {
		t.Errorf("stripped entry lost metadata: mode %o uid %d gid %d mtime %v xattr %q", h.Mode, h.Uid, h.Gid, h.ModTime, h.Xattrs["security.capability"])
	}
	if l := got["app/hello-link"]; l.Typeflag != tar.TypeLink || l.Linkname != "app/hello" {
		t.Errorf("hardlink became %c %q", l.Typeflag, l.Linkname)
	}
	if string(got["app/fake.so"].Body) != "\x7fELF but then just text, as a linker script might be" {
		t.Error("a file that only looks like ELF changed")
	}
	want, gotLoads := loads(t, bin), loads(t, hello.Body)
	if len(want) != len(gotLoads) {
		t.Fatalf("%d PT_LOAD, want %d", len(gotLoads), len(want))
	}
	for i := range want {
		a, b := want[i], gotLoads[i]
		if i == 0 {
			// e_shoff, e_shnum, e_shstrndx may differ, nothing else.
			a, b = bytes.Clone(a), bytes.Clone(b)
			for _, r := range [][2]int{{0x28, 8}, {0x3c, 2}, {0x3e, 2}} {
				copy(a[r[0]:r[0]+r[1]], make([]byte, r[1]))
				copy(b[r[0]:r[0]+r[1]], make([]byte, r[1]))
			}
		}
		if !bytes.Equal(a, b) {
			t.Errorf("PT_LOAD %d differs", i)
		}
	}
	// The stripped program still runs.
	exe := filepath.Join(t.TempDir(), "hello")
	os.WriteFile(exe, hello.Body, 0o755)
	if out, err := exec.Command(exe).CombinedOutput(); err != nil || string(out) != "hello from a split binary\n" {
		t.Errorf("stripped program: %v %q", err, out)
	}

	// The debug image is the slim image plus one layer of debug files.
	dl, _ := res.DebugImage.Layers()
	if len(dl) != len(slim)+1 {
		t.Fatalf("debug image has %d layers, slim %d", len(dl), len(slim))
	}
	for i := range slim {
		a, _ := slim[i].Digest()
		b, _ := dl[i].Digest()
		if a != b {
			t.Errorf("debug image layer %d is not the slim image's", i)
		}
	}
	info, err := elf.Inspect(bytes.NewReader(bin), int64(len(bin)), elf.Unneeded)
	if err != nil || info.BuildID == "" {
		t.Fatalf("no build-id in the test binary: %v", err)
	}
	debugFiles := readAll(t, layerBytes(t, dl[len(dl)-1]))
	name := "usr/lib/debug/.build-id/" + info.BuildID[:2] + "/" + info.BuildID[2:] + ".debug"
	dbg, ok := debugFiles[name]
	if !ok {
		t.Fatalf("no %s in the debug layer (has %v)", name, keys(debugFiles))
	}
	// Every parent directory has an entry, with fixed metadata: a runtime
	// would otherwise make them with the time of the pull.
	for _, d := range []string{"usr", "usr/lib", "usr/lib/debug", "usr/lib/debug/.build-id", "usr/lib/debug/.build-id/" + info.BuildID[:2]} {
		e, ok := debugFiles[d]
		if !ok || e.Typeflag != tar.TypeDir || e.Mode != 0o755 || e.Uid != 0 || !e.ModTime.Equal(dbg.ModTime) {
			t.Errorf("debug layer entry for %s: %v %+v", d, ok, e)
		}
	}
	// The debuglink names the file and carries the CRC of the whole of it.
	f, err := stdelf.NewFile(bytes.NewReader(hello.Body))
	if err != nil {
		t.Fatal(err)
	}
	s := f.Section(".gnu_debuglink")
	if s == nil {
		t.Fatal("no .gnu_debuglink")
	}
	link, _ := s.Data()
	base := info.BuildID[2:] + ".debug"
	if !bytes.HasPrefix(link, []byte(base+"\x00")) {
		t.Errorf("debuglink names %q, want %q", link, base)
	}
	if crc := binary.LittleEndian.Uint32(link[len(link)-4:]); crc != crc32.ChecksumIEEE(dbg.Body) {
		t.Errorf("debuglink CRC %#x, debug file's %#x", crc, crc32.ChecksumIEEE(dbg.Body))
	}
	var stripped int
	for _, l := range res.Report.Images[0].Layers {
		for _, c := range l.Changes {
			if c.Action == "stripped" && c.Path == "app/hello" && c.Bytes == int64(len(bin)-len(hello.Body)) {
				stripped++
			}
		}
	}
	if stripped != 1 {
		t.Errorf("report lists the strip of app/hello %d times, want once with its bytes", stripped)
	}
	if res.Report.Images[0].Debug == nil || res.Report.Images[0].Debug.Files != 1 {
		t.Errorf("debug report %+v", res.Report.Images[0].Debug)
	}
}

func TestDebugIndex(t *testing.T) {
	layerFor := func(arch string) v1.Layer {
		return gzipLayer(t, testenv.TarLayer(t, []testenv.File{{Name: "app", Mode: 0o755, Body: helloBinary(t, arch)}}))
	}
	base := gzipLayer(t, tarOf(t, 2, 3))
	src := dockerIndex(t, map[string]v1.Image{
		"amd64": dockerImage(t, "amd64", base, layerFor("amd64")),
		"arm64": dockerImage(t, "arm64", base, layerFor("arm64")),
	}, "arm64", "amd64")
	res, err := rewrite.Index(context.Background(), src, rewrite.WithTempDir(t.TempDir()),
		rewrite.WithStrip(elf.Unneeded), rewrite.WithDebugImage(true))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if res.DebugIndex == nil {
		t.Fatal("no debug index")
	}
	rewrite.CheckVerified(t, src, res, nil)
	im, _ := res.Index.IndexManifest()
	dm, _ := res.DebugIndex.IndexManifest()
	if len(dm.Manifests) != len(im.Manifests) {
		t.Fatalf("debug index has %d entries, slim %d", len(dm.Manifests), len(im.Manifests))
	}
	for i := range im.Manifests {
		if dm.Manifests[i].Platform.String() != im.Manifests[i].Platform.String() {
			t.Errorf("entry %d: debug %s, slim %s", i, dm.Manifests[i].Platform, im.Manifests[i].Platform)
		}
		img, err := res.DebugIndex.Image(dm.Manifests[i].Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, img, compress.Zstd)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// No WithStrip means elf.None, the zero Mode, as analyze.Options{} (analyze's
// "zero options strip nothing"): the ELF file comes out as it went in, and
// the options text says nothing of strip.
func TestNoOptionStripsNothing(t *testing.T) {
	bin := helloBinary(t, "amd64")
	mt := time.Unix(1700000000, 0)
	layer := testenv.TarLayer(t, []testenv.File{{Name: "app/hello", Mode: 0o755, ModTime: mt, Body: bin}})
	src := dockerImage(t, "amd64", gzipLayer(t, layer))
	res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()), rewrite.WithDebugImage(true))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	slim, _ := res.Image.Layers()
	var got []byte
	for _, f := range testenv.ReadTar(t, bytes.NewReader(layerBytes(t, slim[0]))) {
		if f.Name == "app/hello" {
			got = f.Body
		}
	}
	if !bytes.Equal(got, bin) {
		t.Errorf("app/hello changed (%d bytes, was %d) with no WithStrip", len(got), len(bin))
	}
	if res.DebugImage != nil {
		t.Error("a debug image with no WithStrip")
	}
	none, _ := rewrite.Describe(rewrite.WithStrip(elf.None))
	if got, _ := rewrite.Describe(); got != none || strings.Contains(got, "strip") {
		t.Errorf("Describe() = %q, want %q (that of WithStrip(elf.None))", got, none)
	}
	var zero elf.Mode
	if zero != elf.None {
		t.Errorf("the zero elf.Mode is %s, want none", zero)
	}
}
