package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/layerslim/layerslim/build/internal/buildenv"
)

func release(t *testing.T, args ...string) (dir, sums string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "dist")
	var out, errb bytes.Buffer
	if err := run(t.Context(), append([]string{"-out", dir}, args...), &out, &errb); err != nil {
		t.Fatalf("build/release: %v\n%s", err, errb.String())
	}
	return dir, out.String()
}

// Two release builds of one commit give the same files, named in
// SHA256SUMS; the archive holds a binary that knows its version and commit.
func TestReleaseReproducible(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("runs the linux/amd64 binary it builds")
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1764000000")
	args := []string{"-targets", "linux/amd64", "-version", "9.8.7", "-sbom=false"}
	d1, s1 := release(t, args...)
	_, s2 := release(t, args...)
	if s1 != s2 {
		t.Fatalf("two builds differ:\n%s\n%s", s1, s2)
	}
	if !strings.HasSuffix(s1, "  layerslim_9.8.7_linux_amd64.tar.gz\n") {
		t.Errorf("SHA256SUMS:\n%s", s1)
	}
	if b, _ := os.ReadFile(filepath.Join(d1, "SHA256SUMS")); string(b) != s1 {
		t.Errorf("SHA256SUMS file %q, printed %q", b, s1)
	}
	cmd := exec.Command("sha256sum", "--check", "--strict", "SHA256SUMS")
	cmd.Dir = d1
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum --check: %v\n%s", err, out)
	}

	f, err := os.Open(filepath.Join(d1, "layerslim_9.8.7_linux_amd64.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	bin := filepath.Join(t.TempDir(), "layerslim")
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if !h.ModTime.Equal(time.Unix(1764000000, 0)) {
			t.Errorf("%s: mtime %v", h.Name, h.ModTime)
		}
		if h.Name == "layerslim_9.8.7_linux_amd64/layerslim" {
			b, _ := io.ReadAll(tr)
			if h.Mode != 0o755 || os.WriteFile(bin, b, 0o755) != nil {
				t.Fatalf("binary mode %o", h.Mode)
			}
		}
	}
	if strings.Join(names, " ") != "layerslim_9.8.7_linux_amd64/layerslim layerslim_9.8.7_linux_amd64/README.md" {
		t.Errorf("archive holds %v", names)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	commit, err := buildenv.Output(t.Context(), "", "git", "rev-parse", "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"layerslim 9.8.7\n", "commit:      " + commit + "\n", "platform:    linux/amd64"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("version lacks %q:\n%s", want, out)
		}
	}
}

func TestZipReproducible(t *testing.T) {
	files := []member{{name: "a/layerslim.exe", mode: 0o755, body: []byte("MZ…")}, {name: "a/README.md", mode: 0o644, body: []byte("# x")}}
	mtime := time.Unix(1764000000, 0).UTC()
	dir := t.TempDir()
	var got [2][]byte
	for i := range got {
		p := filepath.Join(dir, "x.zip")
		if err := writeZip(p, files, mtime); err != nil {
			t.Fatal(err)
		}
		got[i], _ = os.ReadFile(p)
		time.Sleep(1100 * time.Millisecond) // a clock that leaked in would show
	}
	if !bytes.Equal(got[0], got[1]) {
		t.Fatal("two zips of the same files differ")
	}
	zr, err := zip.NewReader(bytes.NewReader(got[0]), int64(len(got[0])))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 2 || !zr.File[0].Modified.Equal(mtime) || zr.File[0].Mode()&0o111 == 0 {
		t.Errorf("zip: %+v", zr.File[0].FileHeader)
	}
}

func TestReleaseUsage(t *testing.T) {
	for _, args := range [][]string{{"x"}, {"-targets", "linux"}, {"-version", "a b"}, {"-nope"}} {
		var ue buildenv.UsageError
		if _, err := parse(args, io.Discard); !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}
