package testenv

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var (
	linuxAmd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	linuxArm64 = v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
)

func sampleFiles() []File {
	mtime := time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)
	return []File{
		Dir("usr"),
		Dir("usr/bin"),
		{Name: "usr/bin/ping", Mode: 0o755, Body: []byte("\x7fELF fake"), Xattrs: map[string]string{"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00"}},
		{Name: "usr/bin/su", Mode: 0o4755, Body: []byte("su"), Uid: 0, Gid: 0},
		Hardlink("usr/bin/su2", "usr/bin/su"),
		Symlink("usr/bin/sh", "dash"),
		{Name: "home/user/notes.txt", Body: []byte("hi\n"), Uid: 1000, Gid: 1000, Uname: "user", Gname: "user", ModTime: mtime},
		{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Name: "etc/meta", Body: []byte("x"), PAXRecords: map[string]string{"LAYERSLIM.test": "1"}},
		Whiteout("etc/old.conf"),
		Opaque("var/cache"),
	}
}

func TestTarLayerRoundTrip(t *testing.T) {
	files := sampleFiles()
	layer := TarLayer(t, files)
	if again := TarLayer(t, files); !bytes.Equal(layer, again) {
		t.Fatal("TarLayer is not deterministic")
	}

	d := DefaultModTime
	want := []File{
		{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: d},
		{Name: "usr/bin/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: d},
		{Name: "usr/bin/ping", Typeflag: tar.TypeReg, Mode: 0o755, Body: []byte("\x7fELF fake"), ModTime: d,
			Xattrs: map[string]string{"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00"}},
		{Name: "usr/bin/su", Typeflag: tar.TypeReg, Mode: 0o4755, Body: []byte("su"), ModTime: d},
		{Name: "usr/bin/su2", Typeflag: tar.TypeLink, Mode: 0o644, Linkname: "usr/bin/su", ModTime: d},
		{Name: "usr/bin/sh", Typeflag: tar.TypeSymlink, Mode: 0o777, Linkname: "dash", ModTime: d},
		{Name: "home/user/notes.txt", Typeflag: tar.TypeReg, Mode: 0o644, Body: []byte("hi\n"), Uid: 1000, Gid: 1000,
			Uname: "user", Gname: "user", ModTime: time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)},
		{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: d},
		{Name: "etc/meta", Typeflag: tar.TypeReg, Mode: 0o644, Body: []byte("x"), ModTime: d,
			PAXRecords: map[string]string{"LAYERSLIM.test": "1"}},
		{Name: "etc/.wh.old.conf", Typeflag: tar.TypeReg, Mode: 0o644, Body: []byte{}, ModTime: d},
		{Name: "var/cache/.wh..wh..opq", Typeflag: tar.TypeReg, Mode: 0o644, Body: []byte{}, ModTime: d},
	}
	got := ReadTar(t, bytes.NewReader(layer))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadTar(TarLayer(files)) mismatch (-want +got):\n%s", diff)
	}
	// What ReadTar returns builds the same layer again.
	if again := TarLayer(t, got); !bytes.Equal(layer, again) {
		t.Error("TarLayer(ReadTar(layer)) differs from layer")
	}
}

func TestImage(t *testing.T) {
	layers := [][]byte{
		TarLayer(t, sampleFiles()),
		TarLayer(t, []File{Reg("app", strings.Repeat("layerslim ", 1000))}),
	}
	tests := []struct {
		name         string
		spec         ImageSpec
		manifestType types.MediaType
		layerType    types.MediaType
		codec        codec
	}{
		{"docker gzip", ImageSpec{Layers: layers}, types.DockerManifestSchema2, types.DockerLayer, codecGzip},
		{"oci gzip", ImageSpec{Layers: layers, OCI: true}, types.OCIManifestSchema1, types.OCILayer, codecGzip},
		{"zstd", ImageSpec{Layers: layers, Compression: Zstd}, types.OCIManifestSchema1, types.OCILayerZStd, codecZstd},
		{"zstd level 19", ImageSpec{Layers: layers, Compression: Zstd, Level: 19}, types.OCIManifestSchema1, types.OCILayerZStd, codecZstd},
		{"docker uncompressed", ImageSpec{Layers: layers, Compression: Uncompressed}, types.DockerManifestSchema2, types.DockerUncompressedLayer, codecNone},
		{"oci uncompressed", ImageSpec{Layers: layers, Compression: Uncompressed, OCI: true}, types.OCIManifestSchema1, types.OCIUncompressedLayer, codecNone},
		{"arm64 with annotations", ImageSpec{Layers: layers, Platform: linuxArm64, OCI: true,
			Annotations: map[string]string{"org.opencontainers.image.base.name": "debian:12"}}, types.OCIManifestSchema1, types.OCILayer, codecGzip},
		{"no layers", ImageSpec{}, types.DockerManifestSchema2, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := Image(t, tc.spec)
			CheckImageBlobs(t, img)
			d1, _ := img.Digest()
			d2, _ := Image(t, tc.spec).Digest()
			if d1 != d2 {
				t.Errorf("not deterministic: %s then %s", d1, d2)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if m.MediaType != tc.manifestType {
				t.Errorf("manifest media type %q, want %q", m.MediaType, tc.manifestType)
			}
			if len(m.Layers) != len(tc.spec.Layers) {
				t.Fatalf("%d layers, want %d", len(m.Layers), len(tc.spec.Layers))
			}
			ls, _ := img.Layers()
			for i, l := range ls {
				if mt, _ := l.MediaType(); mt != tc.layerType {
					t.Errorf("layer %d media type %q, want %q", i, mt, tc.layerType)
				}
				got, err := readLayer(l)
				if err != nil {
					t.Fatal(err)
				}
				if got.codec != tc.codec {
					t.Errorf("layer %d is %s, want %s", i, got.codec, tc.codec)
				}
				if got.diffID != sha256Hash(tc.spec.Layers[i]) {
					t.Errorf("layer %d diffID %s, want sha256 of the tar", i, got.diffID)
				}
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			wantPlatform := tc.spec.Platform
			if wantPlatform.OS == "" {
				wantPlatform = linuxAmd64
			}
			if got := (v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}); !got.Equals(wantPlatform) {
				t.Errorf("config platform %v, want %v", got, wantPlatform)
			}
			if diff := cmp.Diff(DefaultConfig.Entrypoint, cf.Config.Entrypoint); diff != "" {
				t.Errorf("entrypoint (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.spec.Annotations, m.Annotations); diff != "" {
				t.Errorf("annotations (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGzipImageIsDockerSchema2(t *testing.T) {
	img := GzipImage(t, linuxArm64, TarLayer(t, []File{Reg("a", "a")}))
	CheckImageBlobs(t, img)
	raw, _ := img.RawManifest()
	for _, want := range []string{string(types.DockerManifestSchema2), string(types.DockerConfigJSON), string(types.DockerLayer)} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("manifest lacks %q:\n%s", want, raw)
		}
	}
	cf, _ := img.ConfigFile()
	if len(cf.History) != 3 || cf.History[0].EmptyLayer || !cf.History[1].EmptyLayer || !cf.History[2].EmptyLayer {
		t.Errorf("history: %+v", cf.History)
	}
	if cf.Architecture != "arm64" || cf.Variant != "v8" {
		t.Errorf("config platform %s/%s", cf.Architecture, cf.Variant)
	}
}

// damaged builds a one-layer image and lets damage change it.
func damaged(t *testing.T, spec ImageSpec, damage func(img *memImage)) []error {
	t.Helper()
	if spec.Layers == nil {
		spec.Layers = [][]byte{TarLayer(t, sampleFiles())}
	}
	img, err := buildImage(spec)
	if err != nil {
		t.Fatal(err)
	}
	damage(img)
	return imageProblems(img)
}

func TestCheckImageBlobsFindsDamage(t *testing.T) {
	tests := []struct {
		name   string
		spec   ImageSpec
		damage func(img *memImage)
		want   string
	}{
		{"flipped byte", ImageSpec{}, func(img *memImage) {
			b := bytes.Clone(img.layers[0].blob)
			b[len(b)/2] ^= 0xff
			img.layers[0].blob = b
		}, "compressed bytes hash to"},
		{"truncated", ImageSpec{}, func(img *memImage) {
			img.layers[0].blob = img.layers[0].blob[:len(img.layers[0].blob)/2]
		}, "compressed bytes"},
		{"zstd under a gzip media type", ImageSpec{Compression: Zstd}, func(img *memImage) {
			img.layers[0].mediaType = types.OCILayer
			img.rawManifest = bytes.ReplaceAll(img.rawManifest, []byte(types.OCILayerZStd), []byte(types.OCILayer))
		}, "bytes are zstd"},
		{"OCI layer in a Docker manifest", ImageSpec{}, func(img *memImage) {
			img.layers[0].mediaType = types.OCILayer
			img.rawManifest = bytes.ReplaceAll(img.rawManifest, []byte(types.DockerLayer), []byte(types.OCILayer))
		}, "OCI layer media type"},
		{"wrong diff ID", ImageSpec{}, func(img *memImage) {
			img.layers[0].tar = append(bytes.Clone(img.layers[0].tar), 0)
			img.layers[0].diffID = sha256Hash(img.layers[0].tar)
		}, "DiffID()"},
		{"config edited", ImageSpec{}, func(img *memImage) {
			img.rawConfig = bytes.Replace(img.rawConfig, []byte(`"amd64"`), []byte(`"arm64"`), 1)
		}, "config hashes to"},
		{"not a tar", ImageSpec{Layers: [][]byte{[]byte("this is not a tar stream, just text that is long enough to be read as a header block")}}, func(*memImage) {}, "not a well-formed tar"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := damaged(t, tc.spec, tc.damage)
			if len(errs) == 0 {
				t.Fatalf("no problem found; want one with %q", tc.want)
			}
			all := fmt.Sprint(errs)
			if !strings.Contains(all, tc.want) {
				t.Errorf("problems %v; want one with %q", errs, tc.want)
			}
		})
	}
}

func TestMultiArchIndex(t *testing.T) {
	amd := GzipImage(t, linuxAmd64, TarLayer(t, []File{Reg("arch", "amd64")}))
	arm := GzipImage(t, linuxArm64, TarLayer(t, []File{Reg("arch", "arm64")}))
	for _, tc := range []struct {
		name string
		idx  v1.ImageIndex
		want types.MediaType
	}{
		{"docker", MultiArchIndex(t, amd, arm), types.DockerManifestList},
		{"oci", OCIMultiArchIndex(t, amd, arm), types.OCIImageIndex},
	} {
		t.Run(tc.name, func(t *testing.T) {
			CheckIndexBlobs(t, tc.idx)
			im, err := tc.idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if im.MediaType != tc.want {
				t.Errorf("media type %q, want %q", im.MediaType, tc.want)
			}
			var got []string
			for _, d := range im.Manifests {
				got = append(got, d.Platform.String())
			}
			if diff := cmp.Diff([]string{"linux/amd64", "linux/arm64/v8"}, got); diff != "" {
				t.Errorf("platforms (-want +got):\n%s", diff)
			}
		})
	}
	// Order is kept, so swapping gives another digest.
	d1, _ := MultiArchIndex(t, amd, arm).Digest()
	d2, _ := MultiArchIndex(t, arm, amd).Digest()
	d3, _ := MultiArchIndex(t, amd, arm).Digest()
	if d1 == d2 || d1 != d3 {
		t.Errorf("digests %s %s %s: want order to matter and builds to repeat", d1, d2, d3)
	}
}

func TestRealContentLayer(t *testing.T) {
	const dir = "/usr/share/common-licenses"
	const limit = 64 << 10
	layer := RealContentLayer(t, dir, "", limit)
	if again := RealContentLayer(t, dir, "", limit); !bytes.Equal(layer, again) {
		t.Fatal("RealContentLayer is not deterministic")
	}
	files := ReadTar(t, bytes.NewReader(layer))
	if len(files) < 4 {
		t.Fatalf("only %d entries", len(files))
	}
	if files[0].Name != "usr/" || files[1].Name != "usr/share/" || files[2].Name != "usr/share/common-licenses/" {
		t.Errorf("first entries %q %q %q, want the parents then the dir", files[0].Name, files[1].Name, files[2].Name)
	}
	var total int64
	var regs int
	for _, f := range files {
		if !strings.HasPrefix(f.Name, "usr/") {
			t.Errorf("entry %q outside usr/", f.Name)
		}
		if f.Uid != 0 || f.Gid != 0 || f.Uname != "" || f.Gname != "" {
			t.Errorf("%s: owner %d:%d %q:%q, want 0:0", f.Name, f.Uid, f.Gid, f.Uname, f.Gname)
		}
		if f.Typeflag == tar.TypeReg {
			total += int64(len(f.Body))
			regs++
		}
	}
	if total > limit || regs == 0 {
		t.Errorf("%d bytes in %d files, want 1..%d bytes", total, regs, limit)
	}

	moved := ReadTar(t, bytes.NewReader(RealContentLayer(t, dir, "opt/licenses/", limit)))
	if moved[0].Name != "opt/" || moved[1].Name != "opt/licenses/" || !strings.HasPrefix(moved[2].Name, "opt/licenses/") {
		t.Errorf("with a prefix: %q %q %q", moved[0].Name, moved[1].Name, moved[2].Name)
	}
}

func TestHelloBinary(t *testing.T) {
	for _, arch := range []struct {
		goarch  string
		machine elf.Machine
	}{{"amd64", elf.EM_X86_64}, {"arm64", elf.EM_AARCH64}} {
		t.Run(arch.goarch, func(t *testing.T) {
			b := HelloBinary(t, arch.goarch)
			f, err := elf.NewFile(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if f.Machine != arch.machine || f.Type != elf.ET_EXEC {
				t.Errorf("machine %v type %v", f.Machine, f.Type)
			}
			if f.Section(".symtab") == nil {
				t.Error("no .symtab: strip tests need one")
			}
			if again := HelloBinary(t, arch.goarch); !bytes.Equal(b, again) {
				t.Error("second call returned other bytes")
			}
		})
	}
}

func TestRunnableImage(t *testing.T) {
	img := RunnableImage(t, runtime.GOARCH)
	CheckImageBlobs(t, img)
	ls, _ := img.Layers()
	if len(ls) != 3 {
		t.Fatalf("%d layers, want 3", len(ls))
	}
	rc, _ := ls[2].Uncompressed()
	defer rc.Close()
	files := ReadTar(t, rc)
	if len(files) != 1 || files[0].Name != "app" || files[0].Mode != 0o755 {
		t.Fatalf("top layer: %+v", files)
	}
	if runtime.GOOS != "linux" {
		return
	}
	// The binary itself runs here (the rootfs does in the integration test).
	bin := t.TempDir() + "/app"
	if err := writeExec(bin, files[0].Body); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "x").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), HelloOutput+"\n") || !strings.Contains(string(out), "args: [x]") {
		t.Errorf("output:\n%s", out)
	}
}

// fakeTB records how a helper ended the test; Skipf and Fatalf end the goroutine.
type fakeTB struct {
	testing.TB
	skipped, fatal string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func callWith(t *testing.T, fn func(testing.TB)) *fakeTB {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f
}

func TestMissingServiceSkipsOrFailsInCI(t *testing.T) {
	t.Setenv(EnvRegistry, "")
	t.Setenv("CI", "")
	if f := callWith(t, func(tb testing.TB) { Registry(tb) }); f.skipped == "" || f.fatal != "" {
		t.Errorf("outside CI: skipped %q, fatal %q; want a skip", f.skipped, f.fatal)
	}
	t.Setenv("CI", "true")
	if f := callWith(t, func(tb testing.TB) { Registry(tb) }); f.fatal == "" || f.skipped != "" {
		t.Errorf("in CI: skipped %q, fatal %q; want a failure", f.skipped, f.fatal)
	}
	t.Setenv(EnvRegistry, "127.0.0.1:1")
	var got string
	if f := callWith(t, func(tb testing.TB) { got = Registry(tb) }); f.fatal != "" || f.skipped != "" || got != "127.0.0.1:1" {
		t.Errorf("set: got %q, skipped %q, fatal %q", got, f.skipped, f.fatal)
	}
}

func writeExec(path string, body []byte) error {
	return os.WriteFile(path, body, 0o755)
}
