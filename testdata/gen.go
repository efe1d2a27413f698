//go:build ignore

// gen.go regenerates testdata/sample: a small two-platform OCI image layout
// tagged "sample", the shared end-to-end fixture. Run it from the repository
// root:
//
//	go run ./testdata/gen.go
//
// The output is deterministic byte for byte for a given Go toolchain and
// github.com/klauspost/compress version: every tar entry has a fixed mtime and
// owner, entries are sorted, gzip streams have a fixed (empty) header, and
// the app binaries are built with CGO_ENABLED=0 -trimpath -ldflags=-buildid=
// (the amd64 one also gets a fixed GNU build-id with -B).
// The binaries embed the Go version and its runtime, so regenerating with
// another Go toolchain (or another klauspost/compress) changes the app layer
// and therefore the digests. That is expected: commit the new layout.
// testdata/README.md describes what is in the image and what it is for.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

const (
	tag          = "sample"
	refNameKey   = "org.opencontainers.image.ref.name"
	appUID       = 1000
	appGID       = 1000
	helloProgram = `// hello is the app of the layerslim sample image.
package main

import "syscall"

func main() {
	syscall.Write(1, []byte("hello from the layerslim sample image\n"))
}
`
)

// Fixed times: the image was "built" at created; each layer's files carry
// their own fixed mtime, as a real build would.
var (
	created   = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	baseTime  = time.Date(2024, 1, 15, 8, 0, 0, 0, time.UTC)
	cacheTime = time.Date(2024, 3, 1, 11, 50, 0, 0, time.UTC)
	appTime   = time.Date(2024, 3, 1, 11, 55, 0, 0, time.UTC)
	fixTime   = time.Date(2024, 3, 1, 11, 58, 0, 0, time.UTC)
)

type platform struct {
	arch    string // GOARCH and OCI architecture
	variant string
	debArch string
	// buildID, if set, is the hex GNU build-id (.note.gnu.build-id) given to
	// the app binary; Go binaries have none unless asked, so one platform
	// covers each debug file naming scheme.
	buildID string
}

var platforms = []platform{
	{arch: "amd64", debArch: "amd64", buildID: "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"},
	{arch: "arm64", variant: "v8", debArch: "arm64"},
}

func main() {
	out := flag.String("o", filepath.Join("testdata", "sample"), "output directory (replaced)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("gen: ")
	if err := run(*out); err != nil {
		log.Fatal(err)
	}
}

func run(out string) error {
	if _, err := os.Stat("go.mod"); err != nil {
		return errors.New("run from the repository root: go run ./testdata/gen.go")
	}
	work, err := os.MkdirTemp("", "layerslim-gen-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	base, err := newLayer(baseFiles())
	if err != nil {
		return fmt.Errorf("base layer: %w", err)
	}
	fix, err := newLayer(fixFiles())
	if err != nil {
		return fmt.Errorf("fix layer: %w", err)
	}

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		bin, err := buildHello(work, p)
		if err != nil {
			return fmt.Errorf("building hello for %s: %w", p.arch, err)
		}
		cache, err := newLayer(cacheFiles(p))
		if err != nil {
			return fmt.Errorf("cache layer for %s: %w", p.arch, err)
		}
		app, err := newLayer(appFiles(bin))
		if err != nil {
			return fmt.Errorf("app layer for %s: %w", p.arch, err)
		}
		img, err := image(p, []v1.Layer{base, cache, app, fix})
		if err != nil {
			return fmt.Errorf("image for %s: %w", p.arch, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add: img,
			Descriptor: v1.Descriptor{
				Platform: &v1.Platform{OS: "linux", Architecture: p.arch, Variant: p.variant},
			},
		})
	}

	tmp := out + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	lp, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return err
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{refNameKey: tag})); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	// ggcr writes blobs 0600 and index.json 0777; git only keeps the x bit,
	// so make every file plain 0644.
	err = filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chmod(p, 0o644)
	})
	if err != nil {
		return err
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s: index %s tagged %q\n", out, d, tag)
	return nil
}

// image assembles one platform's image: layers with one history entry each,
// plus an empty_layer entry (ENV) after the base layer.
func image(p platform, layers []v1.Layer) (v1.Image, error) {
	history := []v1.History{
		{Created: v1.Time{Time: baseTime}, CreatedBy: "/bin/sh -c #(nop) ADD file:rootfs.tar in / "},
		{Created: v1.Time{Time: cacheTime}, CreatedBy: "RUN /bin/sh -c apt-get update && apt-get install -y samplepkg && pip install samplelib # buildkit", Comment: "buildkit.dockerfile.v0"},
		{Created: v1.Time{Time: appTime}, CreatedBy: "COPY hello /app/hello # buildkit", Comment: "buildkit.dockerfile.v0"},
		{Created: v1.Time{Time: fixTime}, CreatedBy: "RUN /bin/sh -c rm /etc/motd && rm -rf /srv/data/* && echo v2 > /srv/data/new.txt && cp /tmp/config.v2.yaml /app/config.yaml # buildkit", Comment: "buildkit.dockerfile.v0"},
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for i, l := range layers {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: history[i], MediaType: types.OCILayer})
		if err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	env := v1.History{Created: v1.Time{Time: cacheTime}, CreatedBy: "ENV APP_MODE=production", Comment: "buildkit.dockerfile.v0", EmptyLayer: true}
	cf.History = slices.Insert(cf.History, 1, env)
	cf.Created = v1.Time{Time: created}
	cf.OS = "linux"
	cf.Architecture = p.arch
	cf.Variant = p.variant
	cf.Config = v1.Config{
		Entrypoint: []string{"/app/hello"},
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "APP_MODE=production"},
		WorkingDir: "/app",
		User:       fmt.Sprintf("%d:%d", appUID, appGID),
		Labels:     map[string]string{"org.opencontainers.image.title": "layerslim sample"},
	}
	return mutate.ConfigFile(img, cf)
}

// buildHello builds the hello program for p in a throwaway module and
// returns the binary, not stripped (its DWARF and .symtab are what ELF debug
// splitting works on).
func buildHello(work string, p platform) ([]byte, error) {
	dir := filepath.Join(work, "hello")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.26\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(helloProgram), 0o644); err != nil {
		return nil, err
	}
	bin := filepath.Join(work, "hello-"+p.arch)
	ldflags := "-buildid="
	if p.buildID != "" {
		ldflags += " -B 0x" + p.buildID
	}
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags="+ldflags, "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH="+p.arch, "GOAMD64=v1", "GOARM64=v8.0",
		"GOFLAGS=", "GOEXPERIMENT=", "GOTOOLCHAIN=local", "GOWORK=off")
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, err
	}
	return os.ReadFile(bin)
}

// file is one tar entry. Paths are relative, without a leading "./";
// directories end in "/".
type file struct {
	name     string
	mode     int64
	body     []byte
	link     string // symlink target, or hardlink target (with hard)
	hard     bool
	uid, gid int
	xattrs   map[string]string
	mtime    time.Time
}

func dir(name string, mode int64, t time.Time) file {
	return file{name: strings.TrimSuffix(name, "/") + "/", mode: mode, mtime: t}
}

func reg(name string, mode int64, body string, t time.Time) file {
	return file{name: name, mode: mode, body: []byte(body), mtime: t}
}

func blob(name string, mode int64, body []byte, t time.Time) file {
	return file{name: name, mode: mode, body: body, mtime: t}
}

func owned(f file, uid, gid int) file { f.uid, f.gid = uid, gid; return f }

// newLayer writes files (sorted by name) as a tar stream, gzips it with a
// fixed header and returns it as an OCI gzip layer.
func newLayer(files []file) (v1.Layer, error) {
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.name, b.name) })
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for i, f := range files {
		if i > 0 && files[i-1].name == f.name {
			return nil, fmt.Errorf("duplicate entry %s", f.name)
		}
		h := &tar.Header{
			Name:    f.name,
			Mode:    f.mode,
			Uid:     f.uid,
			Gid:     f.gid,
			ModTime: f.mtime,
		}
		switch {
		case strings.HasSuffix(f.name, "/"):
			h.Typeflag = tar.TypeDir
		case f.hard:
			h.Typeflag, h.Linkname = tar.TypeLink, f.link
		case f.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
		}
		if len(f.xattrs) > 0 {
			h.Format = tar.FormatPAX
			h.PAXRecords = map[string]string{}
			for k, v := range f.xattrs {
				h.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	gz, err := gzipBytes(tb.Bytes())
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// gzipBytes compresses b at the default level with a zero header (no name,
// no mtime), so equal input gives equal output.
func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func mustGzip(s string) []byte {
	b, err := gzipBytes([]byte(s))
	if err != nil {
		panic(err)
	}
	return b
}

// noise returns n deterministic pseudo-random bytes: stands in for already
// compressed content (.deb files, wheels) that no codec shrinks.
func noise(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// lines returns n numbered lines built from format (one %d), for text files
// big enough to compress like real ones.
func lines(n int, format string) string {
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, format, i)
	}
	return sb.String()
}

// baseFiles is layer 1, the same for both platforms: a tiny distribution
// root with the entry kinds the guarantees talk about (symlinks, a hardlink,
// setuid, a file capability, non-root owners).
func baseFiles() []file {
	t := baseTime
	// vfs_cap_data revision 2, effective, permitted = CAP_NET_RAW (13).
	capNetRaw := string([]byte{0x01, 0, 0, 0x02, 0x00, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	return []file{
		{name: "bin", link: "usr/bin", mode: 0o777, mtime: t},
		{name: "lib", link: "usr/lib", mode: 0o777, mtime: t},
		{name: "sbin", link: "usr/sbin", mode: 0o777, mtime: t},
		dir("etc", 0o755, t),
		reg("etc/os-release", 0o644, `PRETTY_NAME="Sample Linux 1.0 (layerslim)"
NAME="Sample Linux"
VERSION_ID="1.0"
VERSION="1.0 (layerslim)"
ID=sample
HOME_URL="https://example.org/sample-linux"
`, t),
		reg("etc/passwd", 0o644, `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
app:x:1000:1000:app:/app:/usr/sbin/nologin
`, t),
		reg("etc/group", 0o644, `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
shadow:x:42:
nogroup:x:65534:
app:x:1000:
`, t),
		owned(reg("etc/shadow", 0o640, "root:*:19737:0:99999:7:::\napp:!:19737:0:99999:7:::\n", t), 0, 42),
		reg("etc/hostname", 0o644, "sample\n", t),
		reg("etc/motd", 0o644, "Welcome to Sample Linux. This file is deleted by a later layer.\n", t),
		reg("etc/profile", 0o644, "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\numask 022\n", t),
		dir("root", 0o700, t),
		dir("srv", 0o755, t),
		dir("srv/data", 0o755, t),
		reg("srv/data/old-1.txt", 0o644, "replaced by an opaque directory in a later layer\n", t),
		reg("srv/data/old-2.txt", 0o644, "replaced by an opaque directory in a later layer\n", t),
		dir("tmp", 0o1777, t),
		dir("usr", 0o755, t),
		dir("usr/bin", 0o755, t),
		reg("usr/bin/env-info", 0o755, "#!/bin/sh\n# prints the environment, sorted\nenv | sort\n", t),
		{name: "usr/bin/env-info2", mode: 0o755, link: "usr/bin/env-info", hard: true, mtime: t},
		{name: "usr/bin/ping-sample", mode: 0o755, body: []byte("#!/bin/sh\necho 'ping needs CAP_NET_RAW'\n"),
			xattrs: map[string]string{"security.capability": capNetRaw}, mtime: t},
		reg("usr/bin/su-sample", 0o4755, "#!/bin/sh\necho 'a setuid program'\n", t),
		dir("usr/lib", 0o755, t),
		reg("usr/lib/os-release", 0o644, "ID=sample\nVERSION_ID=\"1.0\"\n", t),
		dir("usr/sbin", 0o755, t),
		dir("usr/share", 0o755, t),
		dir("usr/share/common-licenses", 0o755, t),
		reg("usr/share/common-licenses/MIT", 0o644, mitLicense, t),
		dir("var", 0o755, t),
		dir("var/lib", 0o755, t),
		dir("var/lib/dpkg", 0o755, t),
		reg("var/lib/dpkg/status", 0o644, lines(40, "Package: base-%d\nStatus: install ok installed\nPriority: required\nArchitecture: all\nVersion: 1.0-1\nDescription: part of the sample base system\n\n"), t),
		dir("var/tmp", 0o1777, t),
	}
}

// cacheFiles is layer 2: a package install and a pip install without
// cleanup. Nearly everything in it is what `rewrite --drop` removes by
// default; the copyright file, the installed program and the Python package
// must stay.
func cacheFiles(p platform) []file {
	t := cacheTime
	a := p.debArch
	list := "var/lib/apt/lists/example.org_sample_dists_stable_main_binary-" + a + "_Packages"
	return []file{
		dir("root", 0o700, t),
		dir("root/.cache", 0o755, t),
		dir("root/.cache/go-build", 0o755, t),
		reg("root/.cache/go-build/README", 0o644, "This directory holds cached build artifacts from the Go build system.\n", t),
		dir("root/.cache/go-build/3f", 0o755, t),
		blob("root/.cache/go-build/3f/3f6a9b0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e-d", 0o644, noise(3, 4096), t),
		dir("root/.cache/pip", 0o755, t),
		dir("root/.cache/pip/http-v2", 0o755, t),
		dir("root/.cache/pip/http-v2/a", 0o755, t),
		dir("root/.cache/pip/http-v2/a/1", 0o755, t),
		blob("root/.cache/pip/http-v2/a/1/a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c.body", 0o600, noise(4, 6144), t),
		dir("root/.cache/pip/wheels", 0o755, t),
		blob("root/.cache/pip/wheels/samplelib-2.0-py3-none-any.whl", 0o644, noise(5, 3072), t),
		dir("srv", 0o755, t),
		dir("srv/data", 0o755, t),
		reg("srv/data/old-3.txt", 0o644, "replaced by an opaque directory in a later layer\n", t),
		dir("tmp", 0o1777, t),
		dir("tmp/pip-build-1234", 0o755, t),
		reg("tmp/pip-build-1234/build.log", 0o644, lines(50, "running build step %d\n"), t),
		dir("usr", 0o755, t),
		dir("usr/bin", 0o755, t),
		reg("usr/bin/samplepkg", 0o755, "#!/bin/sh\necho 'samplepkg 1.2'\n", t),
		dir("usr/local", 0o755, t),
		dir("usr/local/lib", 0o755, t),
		dir("usr/local/lib/python3.11", 0o755, t),
		dir("usr/local/lib/python3.11/dist-packages", 0o755, t),
		dir("usr/local/lib/python3.11/dist-packages/samplelib", 0o755, t),
		reg("usr/local/lib/python3.11/dist-packages/samplelib/__init__.py", 0o644, "\"\"\"samplelib: installed by pip, kept by layerslim.\"\"\"\n\nVERSION = \"2.0\"\n", t),
		dir("usr/local/lib/python3.11/dist-packages/samplelib-2.0.dist-info", 0o755, t),
		reg("usr/local/lib/python3.11/dist-packages/samplelib-2.0.dist-info/LICENSE", 0o644, mitLicense, t),
		reg("usr/local/lib/python3.11/dist-packages/samplelib-2.0.dist-info/METADATA", 0o644, "Metadata-Version: 2.1\nName: samplelib\nVersion: 2.0\n", t),
		dir("usr/share", 0o755, t),
		dir("usr/share/doc", 0o755, t),
		dir("usr/share/doc/samplepkg", 0o755, t),
		blob("usr/share/doc/samplepkg/changelog.Debian.gz", 0o644, mustGzip(lines(60, "samplepkg (1.%d-1) stable; urgency=medium\n\n  * Release.\n\n -- Sample Maintainer <maint@example.org>  Mon, 01 Jan 2024 00:00:00 +0000\n\n")), t),
		reg("usr/share/doc/samplepkg/copyright", 0o644, "Format: https://example.org/copyright-format/1.0/\nUpstream-Name: samplepkg\n\nFiles: *\nCopyright: 2024 Sample Authors\nLicense: MIT\n", t),
		reg("usr/share/doc/samplepkg/README", 0o644, lines(30, "samplepkg readme line %d\n"), t),
		dir("usr/share/info", 0o755, t),
		blob("usr/share/info/samplepkg.info.gz", 0o644, mustGzip(lines(40, "File: samplepkg.info, Node: Top %d\n")), t),
		dir("usr/share/man", 0o755, t),
		dir("usr/share/man/man1", 0o755, t),
		blob("usr/share/man/man1/samplepkg.1.gz", 0o644, mustGzip(".TH SAMPLEPKG 1\n.SH NAME\nsamplepkg \\- prints its version\n"), t),
		dir("var", 0o755, t),
		dir("var/cache", 0o755, t),
		dir("var/cache/apt", 0o755, t),
		dir("var/cache/apt/archives", 0o755, t),
		reg("var/cache/apt/archives/lock", 0o640, "", t),
		dir("var/cache/apt/archives/partial", 0o700, t),
		blob("var/cache/apt/archives/samplepkg_1.2-1_"+a+".deb", 0o644, noise(int64(len(a))+10, 16384), t),
		blob("var/cache/apt/pkgcache.bin", 0o644, []byte(lines(300, "pkgcache record %08d\x00\x00\x00\x00")), t),
		dir("var/lib", 0o755, t),
		dir("var/lib/apt", 0o755, t),
		dir("var/lib/apt/lists", 0o755, t),
		reg("var/lib/apt/lists/example.org_sample_dists_stable_InRelease", 0o644, "Origin: Sample\nSuite: stable\nArchitectures: amd64 arm64\n", t),
		reg(list, 0o644, lines(120, "Package: pkg-%d\nArchitecture: "+a+"\nVersion: 1.0-1\nSize: 12345\nDescription: a package in the sample archive\n\n"), t),
		reg("var/lib/apt/lists/lock", 0o640, "", t),
		dir("var/lib/apt/lists/partial", 0o700, t),
		dir("var/lib/dpkg", 0o755, t),
		reg("var/lib/dpkg/status", 0o644, lines(40, "Package: base-%d\nStatus: install ok installed\nPriority: required\nArchitecture: all\nVersion: 1.0-1\nDescription: part of the sample base system\n\n")+
			"Package: samplepkg\nStatus: install ok installed\nArchitecture: "+a+"\nVersion: 1.2-1\nDescription: the sample package\n\n", t),
		dir("var/tmp", 0o1777, t),
		reg("var/tmp/apt-dpkg-install-x1/.placeholder", 0o644, "", t),
		dir("var/tmp/apt-dpkg-install-x1", 0o755, t),
	}
}

// appFiles is layer 3: the app, owned by the app user.
func appFiles(hello []byte) []file {
	t := appTime
	return []file{
		owned(dir("app", 0o755, t), appUID, appGID),
		owned(reg("app/config.yaml", 0o644, "mode: development\nlisten: :8080\n", t), appUID, appGID),
		owned(blob("app/hello", 0o755, hello, t), appUID, appGID),
		owned(dir("app/static", 0o755, t), appUID, appGID),
		owned(reg("app/static/index.html", 0o644, "<!doctype html>\n<title>sample</title>\n<p>hello</p>\n", t), appUID, appGID),
		{name: "usr/local/bin/hello", link: "/app/hello", mode: 0o777, mtime: t},
		dir("usr", 0o755, t),
		dir("usr/local", 0o755, t),
		dir("usr/local/bin", 0o755, t),
	}
}

// fixFiles is layer 4, the same for both platforms: it overwrites a file,
// deletes one with a whiteout and replaces a directory with an opaque one.
func fixFiles() []file {
	t := fixTime
	return []file{
		owned(dir("app", 0o755, t), appUID, appGID),
		owned(reg("app/config.yaml", 0o644, "mode: production\nlisten: :8080\n", t), appUID, appGID),
		dir("etc", 0o755, t),
		reg("etc/.wh.motd", 0o644, "", t),
		dir("srv", 0o755, t),
		dir("srv/data", 0o755, t),
		reg("srv/data/.wh..wh..opq", 0o644, "", t),
		reg("srv/data/new.txt", 0o644, "v2\n", t),
	}
}

const mitLicense = `Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.
`
