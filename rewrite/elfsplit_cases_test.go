package rewrite_test

import (
	"archive/tar"
	"bytes"
	"context"
	stdelf "debug/elf"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/rewrite"
)

// needTools skips the test when a tool it runs is missing (CI installs
// them: testdata/debian-packages.txt).
func needTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

func run(t testing.TB, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
	return string(b)
}

// fixtures are small programs built with gcc, each a case of issue 10.
type fixtures struct {
	dir                 string
	full, dwarfless     []byte // one build-id: gcc -g, and strip --strip-debug of it
	other, otherDebug   []byte // a program stripped of everything, and objcopy --only-keep-debug of it before
	obj, archive        []byte // gcc -g -c, and an ar archive of it
	poly                []byte // full + a zip payload
	fullID, otherID     string
	fullName, otherName string // their debug file names
}

func buildFixtures(t *testing.T) *fixtures {
	needTools(t, "gcc", "strip", "objcopy", "ar")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "m.c"), []byte("#include <stdio.h>\n\nint answer(int x) { return x * 2; }\n\nint main(void) {\n\tprintf(\"%d\\n\", answer(21));\n\treturn 0;\n}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "o.c"), []byte("#include <stdio.h>\n\nint main(void) {\n\tputs(\"other\");\n\treturn 0;\n}\n"), 0o644)
	run(t, dir, "gcc", "-g", "-O0", "m.c", "-o", "full")
	run(t, dir, "strip", "--strip-debug", "-o", "dwarfless", "full")
	run(t, dir, "gcc", "-g", "-O0", "o.c", "-o", "other-g")
	run(t, dir, "objcopy", "--only-keep-debug", "other-g", "other.debug")
	run(t, dir, "strip", "--strip-all", "-o", "other", "other-g")
	run(t, dir, "gcc", "-g", "-c", "m.c", "-o", "m.o")
	run(t, dir, "ar", "rcs", "libm.a", "m.o")
	f := &fixtures{dir: dir}
	read := func(n string) []byte { return readFile(t, filepath.Join(dir, n)) }
	f.full, f.dwarfless, f.other, f.otherDebug = read("full"), read("dwarfless"), read("other"), read("other.debug")
	f.obj, f.archive = read("m.o"), read("libm.a")
	f.poly = append(slices.Clone(f.full), []byte("PK\x03\x04 a zip payload, found from the end of the file ... PK\x05\x06\x00\x00")...)
	for _, c := range []struct {
		b    []byte
		id   *string
		name *string
	}{{f.full, &f.fullID, &f.fullName}, {f.other, &f.otherID, &f.otherName}} {
		info, err := elf.Inspect(bytes.NewReader(c.b), int64(len(c.b)), elf.Debug)
		if err != nil || info.BuildID == "" {
			t.Fatalf("no build-id: %v", err)
		}
		*c.id, *c.name = info.BuildID, rewrite.DebugPath("", info.BuildID)
	}
	return f
}

func debugSectionsOf(t testing.TB, b []byte) []string {
	t.Helper()
	f, err := stdelf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range f.Sections {
		if strings.HasPrefix(s.Name, ".debug_") && s.Type != stdelf.SHT_NOBITS {
			out = append(out, s.Name)
		}
	}
	return out
}

// debuglinkCRC is the CRC a stripped file's .gnu_debuglink carries.
func debuglinkCRC(t testing.TB, b []byte) (string, uint32) {
	t.Helper()
	f, err := stdelf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	s := f.Section(".gnu_debuglink")
	if s == nil {
		t.Fatal("no .gnu_debuglink")
	}
	d, _ := s.Data()
	return string(d[:bytes.IndexByte(d, 0)]), f.ByteOrder.Uint32(d[len(d)-4:])
}

func changesOf(res *rewrite.Result) map[string]rewrite.Change {
	out := map[string]rewrite.Change{}
	for _, ir := range res.Report.Images {
		for _, l := range ir.Layers {
			for _, c := range l.Changes {
				out[c.Path] = c
			}
		}
	}
	return out
}

// TestDebugSplitLosesNothing builds an image holding each case of issue
// 10 and checks what the slim and debug images hold, that verify accepts
// the slim image, and that gdb and eu-unstrip rebuild the programs.
func TestDebugSplitLosesNothing(t *testing.T) {
	fx := buildFixtures(t)
	mt := time.Unix(1700000000, 0)
	reg := func(name string, mode int64, body []byte) testenv.File {
		return testenv.File{Name: name, Mode: mode, ModTime: mt, Body: body}
	}
	// One build-id in two layers, the copy without DWARF first and in
	// both; the richer copy only in the second.
	layer1 := testenv.TarLayer(t, []testenv.File{
		reg("usr/bin/copy-a", 0o755, fx.dwarfless),
		reg("usr/bin/other", 0o755, fx.other),
		reg(fx.otherName, 0o644, fx.otherDebug),                 // from a dbgsym package
		reg("opt/app/.debug/other.debug", 0o644, fx.otherDebug), // shaped like a debug file
		{Name: "opt/app/.debug/again.debug", Typeflag: tar.TypeLink, Linkname: "opt/app/.debug/other.debug", ModTime: mt},
		reg("usr/lib/x86_64-linux-gnu/crt-like.o", 0o644, fx.obj),
		reg("usr/lib/x86_64-linux-gnu/libm-like.a", 0o644, fx.archive),
		reg("usr/share/go/src/debug/elf/testdata/prog", 0o644, fx.full),
		reg("opt/keep/prog", 0o755, fx.full),
		reg("usr/bin/poly", 0o755, fx.poly),
	})
	layer2 := testenv.TarLayer(t, []testenv.File{
		reg("usr/bin/full", 0o755, fx.full),
		reg("usr/bin/copy-b", 0o755, fx.dwarfless),
	})
	src := dockerImage(t, "amd64", gzipLayer(t, layer1), gzipLayer(t, layer2))
	opts := func(jobs int) []rewrite.Option {
		return []rewrite.Option{rewrite.WithTempDir(t.TempDir()), rewrite.WithJobs(jobs),
			rewrite.WithStrip(elf.Unneeded), rewrite.WithDebugImage(true), rewrite.WithStripSkip("opt/keep/**")}
	}
	res, err := rewrite.Image(context.Background(), src, opts(1)...)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	rewrite.CheckVerified(t, src, res, nil)

	slim, _ := res.Image.Layers()
	l1, l2 := readAll(t, layerBytes(t, slim[0])), readAll(t, layerBytes(t, slim[1]))
	dl, _ := res.DebugImage.Layers()
	dbg := readAll(t, layerBytes(t, dl[len(dl)-1]))
	changes := changesOf(res)

	// 1. One build-id, one debug file: the richest, which every stripped
	// copy's debuglink names with its CRC.
	d, ok := dbg[fx.fullName]
	if !ok {
		t.Fatalf("no %s in the debug layer: %v", fx.fullName, keys(dbg))
	}
	if got := debugSectionsOf(t, d.Body); !slices.Contains(got, ".debug_info") || !slices.Contains(got, ".debug_line") {
		t.Errorf("the debug file of %s holds %v, not the DWARF of the richest copy", fx.fullID, got)
	}
	for _, c := range []struct {
		name string
		body []byte
	}{{"usr/bin/copy-a", l1["usr/bin/copy-a"].Body}, {"usr/bin/full", l2["usr/bin/full"].Body}, {"usr/bin/copy-b", l2["usr/bin/copy-b"].Body}} {
		if changes[c.name].Action != rewrite.ActionStripped {
			t.Errorf("%s: %+v, want stripped", c.name, changes[c.name])
			continue
		}
		name, crc := debuglinkCRC(t, c.body)
		if name != filepath.Base(fx.fullName) || crc != crc32.ChecksumIEEE(d.Body) {
			t.Errorf("%s: debuglink %s %#x, the shipped debug file is %s %#x", c.name, name, crc, filepath.Base(fx.fullName), crc32.ChecksumIEEE(d.Body))
		}
	}
	// The report, the history and the layer agree on the count.
	var regular []string
	for n, f := range dbg {
		if f.Typeflag == tar.TypeReg {
			regular = append(regular, n)
		}
	}
	ir := res.Report.Images[0]
	if ir.Debug == nil || ir.Debug.Files != len(regular) {
		t.Errorf("report says %+v debug files, the layer holds %d: %v", ir.Debug, len(regular), regular)
	}
	cf, _ := res.DebugImage.ConfigFile()
	if h := cf.History[len(cf.History)-1].CreatedBy; !strings.Contains(h, " "+strconv.Itoa(len(regular))+" debug files") {
		t.Errorf("history %q, the layer holds %d files", h, len(regular))
	}

	// 2. Separate debug files move whole, at their own path.
	for _, p := range []string{fx.otherName, "opt/app/.debug/other.debug", "opt/app/.debug/again.debug"} {
		if _, ok := l1[p]; ok {
			t.Errorf("%s is still in the slim image", p)
		}
		if !bytes.Equal(dbg[p].Body, fx.otherDebug) {
			t.Errorf("%s is not in the debug image as it was", p)
		}
		if changes[p].Action != rewrite.ActionMovedDebug {
			t.Errorf("%s: %+v, want %s", p, changes[p], rewrite.ActionMovedDebug)
		}
	}
	// 3, 4, 7. Left byte-identical, and named with the reason.
	for _, p := range []string{"usr/lib/x86_64-linux-gnu/crt-like.o", "usr/lib/x86_64-linux-gnu/libm-like.a",
		"usr/share/go/src/debug/elf/testdata/prog", "opt/keep/prog", "usr/bin/poly"} {
		in := map[string][]byte{"usr/lib/x86_64-linux-gnu/crt-like.o": fx.obj, "usr/lib/x86_64-linux-gnu/libm-like.a": fx.archive,
			"usr/share/go/src/debug/elf/testdata/prog": fx.full, "opt/keep/prog": fx.full, "usr/bin/poly": fx.poly}[p]
		if !bytes.Equal(l1[p].Body, in) {
			t.Errorf("%s changed", p)
		}
		if c := changes[p]; c.Action != rewrite.ActionKeptDebug || c.Reason == "" {
			t.Errorf("%s: %+v, want %s with a reason", p, c, rewrite.ActionKeptDebug)
		}
	}
	// 8. Every parent directory of the debug files has an entry.
	for n := range dbg {
		for p := filepath.Dir(n); p != "."; p = filepath.Dir(p) {
			if e, ok := dbg[p]; !ok || e.Typeflag != tar.TypeDir {
				t.Errorf("no directory entry for %s", p)
			}
		}
	}

	// The same digests whatever the number of jobs.
	res4, err := rewrite.Image(context.Background(), src, opts(4)...)
	if err != nil {
		t.Fatal(err)
	}
	defer res4.Close()
	rewrite.CheckVerified(t, src, res4, nil)
	if res4.Report.OutputDigest != res.Report.OutputDigest || *res4.Report.DebugDigest != *res.Report.DebugDigest {
		t.Errorf("--jobs 4 gives %s/%s, --jobs 1 %s/%s", res4.Report.OutputDigest, res4.Report.DebugDigest, res.Report.OutputDigest, res.Report.DebugDigest)
	}

	// gdb finds the line of main through the debug image, for each copy.
	root := t.TempDir()
	for n, f := range dbg {
		if f.Typeflag == tar.TypeReg {
			p := filepath.Join(root, n)
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, f.Body, 0o644)
		}
	}
	for _, c := range []struct {
		name string
		body []byte
	}{{"full", l2["usr/bin/full"].Body}, {"copy-a", l1["usr/bin/copy-a"].Body}} {
		p := filepath.Join(fx.dir, c.name+".slim")
		os.WriteFile(p, c.body, 0o755)
		if _, err := exec.LookPath("gdb"); err == nil {
			out := run(t, fx.dir, "gdb", "-batch", "-nx", "-iex", "set debug-file-directory "+filepath.Join(root, "usr/lib/debug"), "-ex", "info line main", p)
			if !strings.Contains(out, `Line 5 of "m.c"`) {
				t.Errorf("gdb on %s: %s", c.name, out)
			}
			// A core dump's backtrace, read through the debug image.
			core := filepath.Join(fx.dir, c.name+".core")
			run(t, fx.dir, "gdb", "-batch", "-nx", "-iex", "set debug-file-directory "+filepath.Join(root, "usr/lib/debug"), "-ex", "break answer", "-ex", "run", "-ex", "generate-core-file "+core, "-ex", "kill", p)
			out = run(t, fx.dir, "gdb", "-batch", "-nx", "-iex", "set debug-file-directory "+filepath.Join(root, "usr/lib/debug"), "-ex", "bt", p, core)
			if !strings.Contains(out, "answer (x=21) at m.c:3") || !strings.Contains(out, "main () at m.c:6") {
				t.Errorf("gdb backtrace of a core of %s: %s", c.name, out)
			}
		}
	}
	// eu-unstrip rebuilds the program from its stripped file and debug
	// file, and eu-elfcmp finds it equal to the original.
	if _, err := exec.LookPath("eu-unstrip"); err == nil {
		run(t, fx.dir, "eu-unstrip", "-o", "full.rebuilt", "full.slim", filepath.Join(root, fx.fullName))
		run(t, fx.dir, "eu-elfcmp", "full", "full.rebuilt")
	}
}

// An image with nothing to split gets no debug layer: the debug image is
// the slim image, and so is an index's.
func TestNothingToSplitDebugIsSlim(t *testing.T) {
	src := dockerImage(t, "amd64", gzipLayer(t, tarOf(t, 1, 4)))
	res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()),
		rewrite.WithStrip(elf.Unneeded), rewrite.WithDebugImage(true))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	rewrite.CheckVerified(t, src, res, nil)
	a, _ := res.Image.Digest()
	b, _ := res.DebugImage.Digest()
	if a != b || res.Report.DebugDigest == nil || *res.Report.DebugDigest != a || !res.Report.Images[0].Debug.SameAsSlim {
		t.Errorf("debug image %s, slim %s, report %+v", b, a, res.Report.Images[0].Debug)
	}

	idx := dockerIndex(t, map[string]v1.Image{"amd64": src, "arm64": dockerImage(t, "arm64", gzipLayer(t, tarOf(t, 2, 3)))}, "amd64", "arm64")
	ires, err := rewrite.Index(context.Background(), idx, rewrite.WithTempDir(t.TempDir()),
		rewrite.WithStrip(elf.Unneeded), rewrite.WithDebugImage(true))
	if err != nil {
		t.Fatal(err)
	}
	defer ires.Close()
	rewrite.CheckVerified(t, idx, ires, nil)
	a, _ = ires.Index.Digest()
	b, _ = ires.DebugIndex.Digest()
	if a != b {
		t.Errorf("debug index %s, slim index %s", b, a)
	}
}

// verify accepts what rewrite writes, in every strip mode, squashed or
// not, on an image with every kind of ELF file: C and Go programs of
// several architectures (static ones whose allocated relocations link
// .symtab among them), objects of several byte orders (MIPS's renumbered
// relocations), archives, separate debug files and payloads.
func TestVerifyAcceptsEveryMode(t *testing.T) {
	fx := buildFixtures(t)
	mt := time.Unix(1700000000, 0)
	reg := func(name string, mode int64, body []byte) testenv.File {
		return testenv.File{Name: name, Mode: mode, ModTime: mt, Body: body}
	}
	files := []testenv.File{
		reg("usr/bin/full", 0o755, fx.full),
		reg("usr/bin/dwarfless", 0o755, fx.dwarfless),
		reg("usr/bin/other", 0o755, fx.other),
		reg(fx.otherName, 0o644, fx.otherDebug),
		reg("usr/lib/m.o", 0o644, fx.obj),
		reg("usr/lib/libm.a", 0o644, fx.archive),
		reg("usr/bin/poly", 0o755, fx.poly),
		reg("usr/local/go/src/debug/elf/testdata/prog", 0o644, fx.full),
		reg("usr/local/bin/hello-go", 0o755, helloBinary(t, "amd64")),
	}
	// A kernel module: ET_REL with .modinfo, which loses debug sections.
	os.WriteFile(filepath.Join(fx.dir, "modinfo"), []byte("license=GPL\x00"), 0o644)
	run(t, fx.dir, "objcopy", "--add-section", ".modinfo=modinfo", "m.o", "m.ko")
	files = append(files, reg("usr/lib/modules/6.1.0/extra/m.ko", 0o644, readFile(t, filepath.Join(fx.dir, "m.ko"))))
	for _, c := range []struct{ cc, name string }{
		{"mips-linux-gnu-gcc", "mips"}, {"aarch64-linux-gnu-gcc", "aarch64"}, {"s390x-linux-gnu-gcc", "s390x"},
	} {
		if _, err := exec.LookPath(c.cc); err != nil {
			t.Logf("%s not installed: no %s files", c.cc, c.name)
			continue
		}
		run(t, fx.dir, c.cc, "-g", "-c", "m.c", "-o", c.name+".o")
		run(t, fx.dir, c.cc, "-g", "-static", "m.c", "-o", c.name+"-static")
		files = append(files, reg("usr/lib/"+c.name+".o", 0o644, readFile(t, filepath.Join(fx.dir, c.name+".o"))),
			reg("usr/bin/"+c.name+"-static", 0o755, readFile(t, filepath.Join(fx.dir, c.name+"-static"))))
	}
	half := len(files) / 2
	src := dockerImage(t, "amd64", gzipLayer(t, testenv.TarLayer(t, files[:half])), gzipLayer(t, testenv.TarLayer(t, files[half:])))
	for _, mode := range []elf.Mode{elf.Unneeded, elf.Debug, elf.All} {
		for _, squash := range []rewrite.SquashMode{rewrite.SquashNone, rewrite.SquashAll} {
			t.Run(mode.String()+"-"+string(squash), func(t *testing.T) {
				res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()),
					rewrite.WithStrip(mode), rewrite.WithDebugImage(true), rewrite.WithSquash(squash))
				if err != nil {
					t.Fatal(err)
				}
				defer res.Close()
				rewrite.CheckVerified(t, src, res, nil)
				stripped := 0
				for _, c := range changesOf(res) {
					if c.Action == rewrite.ActionStripped {
						stripped++
					}
				}
				if changesOf(res)["usr/lib/modules/6.1.0/extra/m.ko"].Action != rewrite.ActionStripped {
					t.Errorf("the kernel module: %+v", changesOf(res)["usr/lib/modules/6.1.0/extra/m.ko"])
				}
				if stripped < 4 {
					t.Errorf("%d files stripped: %v", stripped, changesOf(res))
				}
			})
		}
	}
}
