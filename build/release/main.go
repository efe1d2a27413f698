// Command release builds layerslim's release files, reproducibly:
//
//	go run ./build/release [flags]
//
// For each target (default linux, darwin and windows × amd64 and arm64) it
// compiles layerslim as build/image does (CGO off, -trimpath, no build id,
// version and commit by -X), packs it with README.md into
// layerslim_VERSION_OS_ARCH.tar.gz (.zip for windows) with every file time
// set to SOURCE_DATE_EPOCH (or else the commit's time), writes a CycloneDX
// SBOM of the binary, layerslim_VERSION_OS_ARCH.cdx.json (cyclonedx-gomod
// bin, without serial number or timestamp), and lists the SHA-256 of every
// file in SHA256SUMS. Two runs on one commit with one Go version give the
// same files.
package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/layerslim/layerslim/build/internal/buildenv"
	"github.com/layerslim/layerslim/internal/cli"
)

// SBOMTool is the SBOM generator, run with `go run` at this exact version.
const SBOMTool = "github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0"

// DefaultTargets are the platforms of a release.
var DefaultTargets = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"}

func main() { buildenv.Main("build/release", run) }

type options struct {
	version, commit, out string
	targets              []string
	sbom                 bool
	src                  *buildenv.Source
}

func parse(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("build/release", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	targets := fs.String("targets", strings.Join(DefaultTargets, ","), "os/arch,… to build")
	fs.StringVar(&o.version, "version", cli.Version, "the version the binaries carry and the files are named by")
	fs.StringVar(&o.commit, "commit", "", "the commit (default: git rev-parse HEAD)")
	fs.StringVar(&o.out, "out", "dist", "the directory to write to (emptied first)")
	fs.BoolVar(&o.sbom, "sbom", true, "write a CycloneDX SBOM per binary (go run "+SBOMTool+")")
	if err := fs.Parse(args); err != nil {
		return nil, buildenv.UsageError{Err: err}
	}
	if fs.NArg() != 0 {
		return nil, buildenv.UsageError{Err: fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	for _, t := range strings.Split(*targets, ",") {
		goos, goarch, ok := strings.Cut(strings.TrimSpace(t), "/")
		if !ok || goos == "" || goarch == "" || strings.Contains(goarch, "/") {
			return nil, buildenv.UsageError{Err: fmt.Errorf("--targets %q: want os/arch", t)}
		}
		o.targets = append(o.targets, goos+"/"+goarch)
	}
	if o.version == "" || strings.ContainsAny(o.version, "/ \t") {
		return nil, buildenv.UsageError{Err: fmt.Errorf("--version %q: want a version like 0.2.0", o.version)}
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	if o.src, err = buildenv.Find(ctx, o.commit); err != nil {
		return err
	}
	if err := os.RemoveAll(o.out); err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "layerslim-release-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	readme, err := os.ReadFile(filepath.Join(o.src.Root, "README.md"))
	if err != nil {
		return err
	}
	for _, t := range o.targets {
		goos, goarch, _ := strings.Cut(t, "/")
		base := fmt.Sprintf("layerslim_%s_%s_%s", o.version, goos, goarch)
		exe := "layerslim"
		if goos == "windows" {
			exe += ".exe"
		}
		fmt.Fprintf(stderr, "building %s\n", base)
		bin := filepath.Join(tmp, base, exe)
		if err := o.src.Compile(ctx, goos, goarch, "", o.version, bin); err != nil {
			return err
		}
		bb, err := os.ReadFile(bin)
		if err != nil {
			return err
		}
		files := []member{{name: base + "/" + exe, mode: 0o755, body: bb}, {name: base + "/README.md", mode: 0o644, body: readme}}
		if goos == "windows" {
			err = writeZip(filepath.Join(o.out, base+".zip"), files, o.src.Time)
		} else {
			err = writeTarGz(filepath.Join(o.out, base+".tar.gz"), files, o.src.Time)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", base, err)
		}
		if o.sbom {
			if err := sbom(ctx, o, bin, filepath.Join(o.out, base+".cdx.json")); err != nil {
				return fmt.Errorf("%s: SBOM: %w", base, err)
			}
		}
	}
	sums, err := checksums(o.out)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "SHA256SUMS"), sums, 0o644); err != nil {
		return err
	}
	_, err = stdout.Write(sums)
	return err
}

type member struct {
	name string
	mode int64
	body []byte
}

// writeTarGz writes a gzip'd tar with fixed times and owners and no name
// or time in the gzip header.
func writeTarGz(file string, files []member, mtime time.Time) error {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), ModTime: mtime, Typeflag: tar.TypeReg,
			Uname: "root", Gname: "root", Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(f.body); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(file, buf.Bytes(), 0o644)
}

// writeZip writes a zip with fixed times.
func writeZip(file string, files []member, mtime time.Time) error {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: mtime}
		h.SetMode(os.FileMode(f.mode))
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if _, err := w.Write(f.body); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(file, buf.Bytes(), 0o644)
}

// sbom writes a CycloneDX SBOM of the modules built into bin.
func sbom(ctx context.Context, o *options, bin, out string) error {
	cmd := exec.CommandContext(ctx, "go", "run", "-trimpath", SBOMTool, "bin", "-json", "-noserial", "-notimestamp",
		"-version", "v"+strings.TrimPrefix(o.version, "v"), "-output", out, bin)
	cmd.Dir = o.src.Root
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w\n%s", err, msg)
	}
	return nil
}

// checksums lists the SHA-256 of every file in dir, as sha256sum does.
func checksums(dir string) ([]byte, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && e.Name() != "SHA256SUMS" {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	var out bytes.Buffer
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&out, "%x  %s\n", h.Sum(nil), n)
	}
	return out.Bytes(), nil
}
