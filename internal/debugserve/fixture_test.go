package debugserve_test

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/layerslim/layerslim/internal/cli"
	"github.com/layerslim/layerslim/internal/debugserve"
	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/testenv"
)

// program is a C program built with debug information.
type program struct {
	name    string // file name, and the word main prints
	path    string // in the image: usr/bin/NAME
	bin     []byte // as built, with debug information
	buildID string
	src     string // the source file, for gdb
}

// buildProgram compiles a small C program named name with gcc -g, with a
// GNU build-id (each name gives a different one).
func buildProgram(t *testing.T, name string) program {
	t.Helper()
	return buildProgramWith(t, "gcc", name)
}

// buildProgramWith is buildProgram with another compiler (a cross gcc).
func buildProgramWith(t *testing.T, gcc, name string) program {
	t.Helper()
	if _, err := exec.LookPath(gcc); err != nil {
		if testenv.InCI() {
			t.Fatalf("no %s", gcc)
		}
		t.Skipf("no %s", gcc)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, name+".c")
	code := "#include <stdio.h>\n#include <stdlib.h>\n\nstatic int twice(int x) { return 2 * x; }\n\nstatic void crash_" + name + "(void) { abort(); }\n\n" +
		"int main(int argc, char **argv) {\n\tif (argc > 1)\n\t\tcrash_" + name + "();\n\tprintf(\"" + name + " %d\\n\", twice(21));\n\treturn 0;\n}\n"
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	if msg, err := exec.Command(gcc, "-g", "-O0", "-Wl,--build-id=sha1", "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return program{name: name, path: "usr/bin/" + name, bin: b, buildID: elfBuildID(t, b), src: src}
}

// elfBuildID reads the GNU build-id of an ELF file with debug/elf.
func elfBuildID(t *testing.T, b []byte) string {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	s := f.Section(".note.gnu.build-id")
	if s == nil {
		t.Fatal("no .note.gnu.build-id")
	}
	d, err := s.Data()
	if err != nil {
		t.Fatal(err)
	}
	namesz := binary.LittleEndian.Uint32(d)
	off := 12 + (namesz+3)&^3
	return strings.ToLower(string(hexOf(d[off:])))
}

func hexOf(b []byte) []byte {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return out
}

// slimLayout writes an image holding progs to an OCI layout, rewrites it
// with layerslim into oci:DIR:TAG and oci:DIR:TAG-debug, and returns DIR.
func slimLayout(t *testing.T, dir, tag string, progs ...program) string {
	t.Helper()
	return slimLayoutArgs(t, dir, tag, nil, progs...)
}

// slimLayoutArgs is slimLayout with more arguments for rewrite.
func slimLayoutArgs(t *testing.T, dir, tag string, args []string, progs ...program) string {
	t.Helper()
	files := []testenv.File{testenv.Dir("usr/"), testenv.Dir("usr/bin/")}
	for _, p := range progs {
		files = append(files, testenv.File{Name: p.path, Mode: 0o755, Body: p.bin})
	}
	img := testenv.Image(t, testenv.ImageSpec{Layers: [][]byte{testenv.TarLayer(t, files)}, OCI: true})
	srcDir := filepath.Join(t.TempDir(), "src")
	lp, err := layout.Write(srcDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "src"})); err != nil {
		t.Fatal(err)
	}
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "out")
	}
	runCLI(t, append([]string{"rewrite", "oci:" + srcDir + ":src", "oci:" + dir + ":" + tag, "--progress", "none"}, args...)...)
	return dir
}

// pushSlim pushes an image holding progs to ref in the test registry and
// rewrites it to ref-slim (and ref-slim-debug); it returns the slim ref.
func pushSlim(t *testing.T, ref string, progs ...program) string {
	t.Helper()
	files := []testenv.File{testenv.Dir("usr/"), testenv.Dir("usr/bin/")}
	for _, p := range progs {
		files = append(files, testenv.File{Name: p.path, Mode: 0o755, Body: p.bin})
	}
	img := testenv.Image(t, testenv.ImageSpec{Layers: [][]byte{testenv.TarLayer(t, files)}, OCI: true})
	testenv.PushImage(t, img, ref)
	runCLI(t, "rewrite", ref, ref+"-slim", "--insecure", "--progress", "none")
	return ref + "-slim"
}

func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	cmd := cli.New()
	var out, errb bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("layerslim %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// layoutFile returns the file p of the image tagged tag in the OCI layout dir.
func layoutFile(t *testing.T, dir, tag, p string) []byte {
	t.Helper()
	ref, err := imageref.Parse("oci:"+dir+":"+tag, false)
	if err != nil {
		t.Fatal(err)
	}
	src, err := imageref.Open(t.Context(), ref, imageref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return imageFile(t, src.Image, p)
}

// imageFile returns the file p of img's merged layers.
func imageFile(t *testing.T, img v1.Image, p string) []byte {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	for _, f := range testenv.ReadTar(t, rc) {
		if f.Name == p {
			return f.Body
		}
	}
	t.Fatalf("no %s in the image", p)
	return nil
}

// server starts a debugserve.Server of refs with a fresh cache directory
// (or cacheDir), indexed once, behind an httptest server.
func server(t *testing.T, cacheDir string, o debugserve.Options, refs ...string) (*debugserve.Server, *httptest.Server) {
	t.Helper()
	var srcs []debugserve.Source
	for _, r := range refs {
		s, err := debugserve.ParseSource(r, true)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, s)
	}
	if cacheDir == "" {
		cacheDir = t.TempDir()
	}
	o.CacheDir = cacheDir
	o.Registry.Insecure = true
	srv, err := debugserve.New(srcs, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return srv, hs
}

// debuginfodFind runs elfutils' debuginfod-find against url with a private
// client cache and returns the path it prints.
func debuginfodFind(t *testing.T, url string, args ...string) (string, error) {
	t.Helper()
	bin := tool(t, "debuginfod-find")
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = append(os.Environ(), "DEBUGINFOD_URLS="+url, "DEBUGINFOD_CACHE_PATH="+t.TempDir(), "DEBUGINFOD_TIMEOUT=60")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", &exec.ExitError{ProcessState: cmd.ProcessState, Stderr: errb.Bytes()}
	}
	return strings.TrimSpace(out.String()), nil
}

// tool finds a program the tests need: missing in CI is a failure.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if testenv.InCI() {
			t.Fatalf("%s is not installed (debuginfod in testdata/debian-packages.txt)", name)
		}
		t.Skipf("no %s", name)
	}
	return p
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func regexpOf(s string) *regexp.Regexp { return regexp.MustCompile(s) }

// retrying are registry options that retry fast.
func retrying() imageref.Options {
	return imageref.Options{Retries: 3, RetryDelay: 10 * time.Millisecond}
}
