package testenv

import (
	"archive/tar"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// HelloOutput is the first line RunnableImage's /app prints.
const HelloOutput = "hello from layerslim test"

// helloSource is /app: it greets, then lists "/" one entry a line, then its
// arguments; then, for each argument that is an absolute path, the entries
// of that directory (or the path itself for a file), failing when it is
// missing.
const helloSource = `package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("` + HelloOutput + `")
	entries, err := os.ReadDir("/")
	if err != nil {
		fmt.Fprintln(os.Stderr, "listing /:", err)
		os.Exit(1)
	}
	for _, e := range entries {
		fmt.Println("/" + e.Name())
	}
	if len(os.Args) > 1 {
		fmt.Println("args:", os.Args[1:])
	}
	for _, a := range os.Args[1:] {
		if len(a) == 0 || a[0] != '/' {
			continue
		}
		fi, err := os.Stat(a)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if !fi.IsDir() {
			fmt.Println(a)
			continue
		}
		entries, err := os.ReadDir(a)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, e := range entries {
			fmt.Println(a + "/" + e.Name())
		}
	}
}
`

var helloBins struct {
	sync.Mutex
	m map[string][]byte
}

// HelloBinary returns a static linux/arch Go executable (CGO_ENABLED=0,
// -trimpath, empty build id: the same toolchain gives the same bytes) that
// prints HelloOutput and lists "/". It keeps its symbol table and DWARF, so
// strip passes have something to remove. Built once per test binary and arch.
func HelloBinary(t testing.TB, arch string) []byte {
	t.Helper()
	helloBins.Lock()
	defer helloBins.Unlock()
	if b, ok := helloBins.m[arch]; ok {
		return b
	}
	goBin := goTool(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module layerslimtesthello\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(helloSource), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "app")
	cmd := exec.CommandContext(t.Context(), goBin, "build", "-trimpath", "-ldflags=-buildid=", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch,
		"GOFLAGS=-buildvcs=false", "GOWORK=off", "GO111MODULE=on", "GOTOOLCHAIN=local", "GOPROXY=off")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testenv.HelloBinary: go build for linux/%s: %v\n%s", arch, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if helloBins.m == nil {
		helloBins.m = map[string][]byte{}
	}
	helloBins.m[arch] = b
	return b
}

// goTool finds the go command: on PATH (go test puts its own GOROOT/bin
// first), else under GOROOT, else /usr/local/go.
func goTool(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	for _, root := range []string{os.Getenv("GOROOT"), "/usr/local/go"} {
		if root == "" {
			continue
		}
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	unavailable(t, "no go command found to build the test program")
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// RunnableImage is a Docker schema 2 gzip image for linux/arch whose rootfs
// runs: Entrypoint ["/app"] (HelloBinary), no Cmd. Its three layers are
//  0. real files of this machine: /usr/share/common-licenses (base-files, on
//     every Debian) under usr/share/common-licenses;
//  1. a typical "apt-get install" layer: a copyright file that must be kept
//     and files the default drop presets remove (apt lists and archives,
//     man and doc pages, /tmp);
//  2. /app, 0755.
//
// Running it prints HelloOutput, then "/app", "/usr", … one entry a line.
func RunnableImage(t testing.TB, arch string) v1.Image {
	t.Helper()
	return Image(t, RunnableImageSpec(t, arch))
}

// RunnableImageSpec is RunnableImage's spec, to change compression, media
// types or config before building it.
func RunnableImageSpec(t testing.TB, arch string) ImageSpec {
	t.Helper()
	base := RealContentLayer(t, "/usr/share/common-licenses", "", 4<<20)
	pkg := TarLayer(t, []File{
		Dir("etc"),
		Reg("etc/hostname", "layerslim-test\n"),
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
		Reg("tmp/build.log", "compiling…\n"),
		Dir("usr/share/doc/app"),
		Reg("usr/share/doc/app/copyright", "Copyright 2024 layerslim test. MIT License.\n"),
		Reg("usr/share/doc/app/changelog.Debian", "app (1.0) unstable; urgency=low\n"),
		Dir("usr/share/man/man1"),
		Reg("usr/share/man/man1/app.1", ".TH APP 1\n.SH NAME\napp \\- test program\n"),
		Dir("var/cache/apt/archives"),
		Reg("var/cache/apt/archives/app_1.0_"+arch+".deb", "!<arch>\ndebian-binary\n"),
		Dir("var/lib/apt/lists"),
		Reg("var/lib/apt/lists/deb_dists_bookworm_InRelease", "Origin: Debian\n"),
	})
	app := TarLayer(t, []File{
		{Name: "app", Mode: 0o755, Body: HelloBinary(t, arch)},
	})
	cfg := v1.Config{
		Entrypoint: []string{"/app"},
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		WorkingDir: "/",
	}
	return ImageSpec{
		Platform: platformFor(arch),
		Layers:   [][]byte{base, pkg, app},
		Config:   &cfg,
	}
}

// PyFatImage is the shape of the Python image of issue 11, runnable: a
// base layer with /app (HelloBinary) and usr/lib, then three layers each
// making new directories that the snapshotter marked opaque (the package
// directory usr/lib/python3 itself, then numpy, yaml, requests, jinja2),
// with n files each. Its history has a day's pause after the base, so
// --squash=auto merges the three. Its Cmd makes /app list the packages:
// the run fails when one is missing.
func PyFatImage(t testing.TB, arch string, n int) v1.Image {
	t.Helper()
	pkg := func(name string) []File {
		d := "usr/lib/python3/" + name
		out := []File{Dir(d), Opaque(d)}
		for i := range n {
			out = append(out, Reg(fmt.Sprintf("%s/m%03d.py", d, i), fmt.Sprintf("# %s module %d\n", name, i)))
		}
		return out
	}
	base := TarLayer(t, []File{{Name: "app", Mode: 0o755, Body: HelloBinary(t, arch)}, Dir("usr"), Dir("usr/lib"), Reg("usr/lib/os-release", "ID=test\n")})
	l2 := TarLayer(t, append([]File{Dir("usr/lib/python3"), Opaque("usr/lib/python3")}, pkg("numpy")...))
	l3 := TarLayer(t, append([]File{Dir("usr/lib/python3")}, pkg("yaml")...))
	l4 := TarLayer(t, append(append([]File{Dir("usr/lib/python3")}, pkg("requests")...), pkg("jinja2")...))
	day := DefaultCreated
	hist := []v1.History{
		{Created: v1.Time{Time: day}, CreatedBy: "/bin/sh -c #(nop) ADD file:base in /"},
		{Created: v1.Time{Time: day.Add(24 * time.Hour)}, CreatedBy: "RUN pip install numpy"},
		{Created: v1.Time{Time: day.Add(24*time.Hour + time.Minute)}, CreatedBy: "RUN pip install pyyaml"},
		{Created: v1.Time{Time: day.Add(24*time.Hour + 2*time.Minute)}, CreatedBy: "RUN pip install requests jinja2"},
	}
	var cmd []string
	for _, p := range []string{"numpy", "yaml", "requests", "jinja2"} {
		cmd = append(cmd, "/usr/lib/python3/"+p)
	}
	return Image(t, ImageSpec{
		Platform: platformFor(arch),
		Layers:   [][]byte{base, l2, l3, l4},
		Config:   &v1.Config{Entrypoint: []string{"/app"}, Cmd: cmd, WorkingDir: "/"},
		History:  hist,
		Created:  day.Add(24*time.Hour + 2*time.Minute),
	})
}

// platformFor is linux/arch with the variant registries and containerd expect.
func platformFor(arch string) v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: arch}
	switch arch {
	case "arm64":
		p.Variant = "v8"
	case "arm":
		p.Variant = "v7"
	}
	return p
}

// Platform parses "os/arch[/variant]" (as in --platform), failing t if malformed.
func Platform(t testing.TB, s string) v1.Platform {
	t.Helper()
	p, err := v1.ParsePlatform(s)
	if err != nil {
		t.Fatalf("testenv.Platform(%q): %v", s, err)
	}
	if p.OS == "" || p.Architecture == "" {
		t.Fatalf("testenv.Platform(%q): want os/arch[/variant]", s)
	}
	return *p
}
