package rewrite_test

// Hostile layers through the public paths: names that climb out of the
// root, duplicates, symlink loops, hardlinks to nothing, truncated
// entries, decompression bombs and zstd frames that ask for huge windows.
// Each gives a clear error or is handled safely, with bounded memory.

import (
	"archive/tar"
	"bytes"
	"context"
	stdelf "debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/layerslim/layerslim/analyze"
	"github.com/layerslim/layerslim/drop"
	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/internal/whiteout"
	"github.com/layerslim/layerslim/rewrite"
	"github.com/layerslim/layerslim/tarfilter"
	"github.com/layerslim/layerslim/verify"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Entry names with ".." or a leading "/" are taken as runtimes take them
// (containerd keeps them inside the root): the debug files made from them
// land under /usr/lib/debug and nowhere else, the drop rules see the clean
// path, and the output keeps the guarantee.
func TestHostileNamesStayInside(t *testing.T) {
	mt := time.Unix(1700000000, 0)
	obj := readFile(t, "../elf/testdata/hello-x86_64.o") // no build-id: a path-based debug file
	exe := readFile(t, "../elf/testdata/hello-x86_64")   // build-id 89767a99…
	layer := testenv.TarLayer(t, []testenv.File{
		{Name: "../../../usr/lib/hello.o", Mode: 0o644, ModTime: mt, Body: obj},
		{Name: "/usr/bin/hello", Mode: 0o755, ModTime: mt, Body: exe},
		{Name: "usr/../../../../usr/lib/debug/../../../etc/evil.o", Mode: 0o644, ModTime: mt, Body: obj},
		{Name: "/tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: mt},
		{Name: "../../tmp/junk", Mode: 0o644, ModTime: mt, Body: []byte("cache")},
		{Name: "./etc/../../etc/passwd", Mode: 0o644, ModTime: mt, Body: []byte("root:x:0:0::/root:/bin/sh\n")},
		{Name: "etc/passwd-", Typeflag: tar.TypeLink, Linkname: "../etc/passwd", ModTime: mt},
	})
	src := dockerImage(t, "amd64", gzipLayer(t, tarOf(t, 1, 3)), gzipLayer(t, layer))
	m, err := drop.New([]string{"none"}, []string{"tmp/**"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()),
		rewrite.WithStrip(elf.Unneeded), rewrite.WithDebugImage(true),
		rewrite.WithFilter(func(rec rewrite.Recorder) tarfilter.Filter { return rewrite.Drop(m, rec) }))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()

	layers, err := res.DebugImage.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var debugNames []string
	for name, f := range readAll(t, layerBytes(t, layers[len(layers)-1])) {
		if name != path.Clean(name) || strings.HasPrefix(name, "/") || (!strings.HasPrefix(name, "usr/lib/debug") && name != "usr" && name != "usr/lib") {
			t.Errorf("debug layer entry %q is not a clean path under usr/lib/debug", name)
		}
		if f.Typeflag == tar.TypeReg {
			debugNames = append(debugNames, name)
		}
	}
	// The relocatable objects stay as they are (inputs to later links).
	want := []string{
		"usr/lib/debug/.build-id/89/767a99b67313a64b656bd813efa9694ad1456f.debug",
	}
	if diff := cmp.Diff(want, sorted(debugNames)); diff != "" {
		t.Errorf("debug files (-want +got):\n%s", diff)
	}
	// Names that climb out are written clean, and the report says so;
	// the drop rules see the clean name.
	var dropped, renamed []string
	for _, c := range res.Report.Images[0].Layers[1].Changes {
		switch c.Action {
		case "dropped":
			dropped = append(dropped, c.Path)
		case "renamed":
			renamed = append(renamed, c.Path+" > "+c.To)
		}
	}
	if diff := cmp.Diff([]string{"tmp/junk"}, dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
	wantRenamed := []string{
		"../../../usr/lib/hello.o > usr/lib/hello.o", "/usr/bin/hello > usr/bin/hello",
		"usr/../../../../usr/lib/debug/../../../etc/evil.o > etc/evil.o", "/tmp/ > tmp/",
		"../../tmp/junk > tmp/junk", "./etc/../../etc/passwd > etc/passwd", "etc/passwd- > etc/passwd-",
	}
	if diff := cmp.Diff(wantRenamed, renamed); diff != "" {
		t.Errorf("renamed (-want +got):\n%s", diff)
	}
	ls, _ := res.Image.Layers()
	for _, f := range readAll(t, layerBytes(t, ls[1])) {
		if whiteout.Unclean(f.Name) || (f.Typeflag == tar.TypeLink && whiteout.Unclean(f.Linkname)) {
			t.Errorf("output entry %q (link %q) climbs out of the root", f.Name, f.Linkname)
		}
	}
	rewrite.CheckVerified(t, src, res, m)
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

// squashImage merges every layer above the first and returns the source
// image, the layers' tar streams and the result.
func squashImage(t *testing.T, layers [][]string, opts ...rewrite.Option) (v1.Image, [][]byte, *rewrite.Result, error) {
	t.Helper()
	var tars [][]byte
	var ls []v1.Layer
	for _, l := range layers {
		b := layerTar(t, l...)
		tars = append(tars, b)
		ls = append(ls, gzipLayer(t, b))
	}
	src := dockerImage(t, "amd64", ls...)
	baseID, _ := ls[0].DiffID()
	finder := func(context.Context, v1.Platform, *v1.Manifest, *v1.ConfigFile) ([]v1.Hash, string, error) {
		return []v1.Hash{baseID}, "test base", nil
	}
	opts = append([]rewrite.Option{rewrite.WithTempDir(t.TempDir()),
		rewrite.WithSquash(rewrite.SquashAuto), rewrite.WithBaseFinder(finder),
		rewrite.WithFilter(func(rewrite.Recorder) tarfilter.Filter { return tarfilter.Keep() })}, opts...)
	res, err := rewrite.Image(context.Background(), src, opts...)
	return src, tars, res, err
}

// The squash agrees with the runtimes (mergeFS) and with verify on names
// with "..", whiteouts with "..", duplicate entries (the last wins, and a
// hardlink made before the duplicate keeps the old content) and symlink
// loops (never followed).
func TestSquashHostileLayers(t *testing.T) {
	tests := []struct {
		name   string
		layers [][]string
	}{
		{
			name:   "names that climb out of the root",
			layers: [][]string{{"f:base=1", "f:etc/x=base"}, {"f:../../etc/y=lower", "f:/abs=1"}, {"f:../etc/y=upper", "f:../../../abs=2"}},
		},
		{
			name:   "whiteouts that climb out of the root",
			layers: [][]string{{"f:base=1", "f:gone=1"}, {"f:a=1", "f:b=1"}, {"f:../.wh.a=", "f:../../.wh.gone="}},
		},
		{
			name:   "duplicate entries: the last wins",
			layers: [][]string{{"f:base=1"}, {"f:a=1", "f:a=2", "d:d", "f:d=file now"}, {"f:b=1", "f:b=2", "f:b=3"}},
		},
		{
			name:   "a hardlink made before a duplicate keeps the old content",
			layers: [][]string{{"f:base=1"}, {"f:x=1"}, {"f:a=old", "h:b>a", "h:c>a", "f:a=new", "h:d>a"}},
		},
		{
			name:   "a hardlink made before a duplicate, across layers",
			layers: [][]string{{"f:base=1"}, {"f:a=old", "h:b>a", "f:a=mid"}, {"f:a=new"}},
		},
		{
			// The layer is read again up to the link, past a file larger
			// than any header: its body is skipped, not kept.
			name:   "a hardlink re-read past a large file",
			layers: [][]string{{"f:base=1"}, {"f:big=" + strings.Repeat("x", 5<<20), "f:t=old", "h:l>t"}, {"f:t=new"}},
		},
		{
			name:   "the root directory's entry, by any name",
			layers: [][]string{{"d:.", "f:base=1"}, {"d:.@700", "f:a=1"}, {"d:..@750", "f:b=1"}},
		},
		{
			name:   "an opaque marker on the root",
			layers: [][]string{{"f:base=1"}, {"f:a=1", "d:d", "f:d/x=1"}, {"o:.", "f:b=1"}},
		},
		{
			name:   "symlink loops",
			layers: [][]string{{"f:base=1", "l:loop>loop"}, {"l:a>b", "l:b>a", "d:d", "l:d/self>../d/self", "l:up>../../../../.."}, {"l:c>a", "f:x=1"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, tars, res, err := squashImage(t, tc.layers)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Close()
			layers, _ := res.Image.Layers()
			var out [][]byte
			for _, l := range layers {
				out = append(out, layerBytes(t, l))
			}
			checkAppliers(t, tars, out)
			rewrite.CheckVerified(t, src, res, nil)
			if _, err := analyze.Image(context.Background(), src, analyze.Options{TempDir: t.TempDir()}); err != nil {
				t.Errorf("analyze: %v", err)
			}
		})
	}
}

// A whiteout of ".", ".." or of no name at all deletes nothing a runtime
// agrees on (containerd's naive applier removes the directory it stands
// in, or the whole root): squash, analyze and verify refuse it by name.
func TestWhiteoutOfNoFile(t *testing.T) {
	for _, name := range []string{"a/.wh..", ".wh...", "c/.wh."} {
		t.Run(name, func(t *testing.T) {
			src, _, res, err := squashImage(t, [][]string{{"f:base=1"}, {"d:a", "f:a/x=1", "f:c=1"}, {"f:" + name + "="}})
			if err == nil {
				res.Close()
				t.Fatal("squash took the whiteout")
			}
			want := name + ": whiteout of no file"
			if !errors.Is(err, whiteout.ErrNoFile) || !strings.Contains(err.Error(), want) {
				t.Errorf("squash: error %v, want one saying %q", err, want)
			}
			if _, err := analyze.Image(context.Background(), src, analyze.Options{TempDir: t.TempDir()}); !errors.Is(err, whiteout.ErrNoFile) || !strings.Contains(err.Error(), want) {
				t.Errorf("analyze: error %v, want one saying %q", err, want)
			}
			if _, err := verify.Image(context.Background(), src, src, verify.Options{TempDir: t.TempDir()}); !errors.Is(err, whiteout.ErrNoFile) || !strings.Contains(err.Error(), want) {
				t.Errorf("verify: error %v, want one saying %q", err, want)
			}
		})
	}
}

// A hardlink to a path that holds nothing: runtimes refuse such a layer.
// A rewrite keeps the link as it is (it extracts nothing), a squash that
// must resolve it and verify, which models the filesystem, fail with an
// error naming the layer and the entry.
func TestHardlinkToMissingTarget(t *testing.T) {
	// Kept as it is: the layer goes through byte for byte.
	layer := layerTar(t, "f:x=1", "h:dangling>nowhere")
	src := dockerImage(t, "amd64", gzipLayer(t, layer))
	res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()),
		rewrite.WithCompression("gzip", 0), rewrite.WithStrip(elf.Unneeded),
		rewrite.WithFilter(func(rewrite.Recorder) tarfilter.Filter { return tarfilter.Keep() }))
	if err != nil {
		t.Fatal(err)
	}
	if a := res.Report.Images[0].Layers[0].Action; a != rewrite.Reused {
		t.Errorf("layer with a dangling hardlink: %s, want it reused as it is", a)
	}
	// verify refuses the output, naming the layer and the entry.
	_, err = verify.Image(context.Background(), src, res.Image, verify.Options{TempDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "layer 1 (sha256:") || !strings.Contains(err.Error(), "dangling: hardlink to nowhere, which does not exist") {
		t.Errorf("verify error = %v, want one naming layer 1 and the link", err)
	}
	res.Close()

	// A squash whose link points at a path a later layer makes: the link
	// must keep what its target held when it was made, which is nothing.
	_, _, res, err = squashImage(t, [][]string{{"f:base=1"}, {"h:l>gone"}, {"f:gone=new"}})
	if err == nil {
		res.Close()
		t.Fatal("squash resolved a hardlink to nothing")
	}
	for _, want := range []string{"layer sha256:", "l: resolving hardlink to gone", "does not exist"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// verify names the layer and the entry.
	_, err = verify.Image(context.Background(), src, src, verify.Options{TempDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "layer 1 (sha256:") || !strings.Contains(err.Error(), "dangling: hardlink to nowhere, which does not exist") {
		t.Errorf("verify error = %v, want one naming layer 1 and the link", err)
	}
}

// A tar header that gives more bytes than the layer holds.
func TestTruncatedEntry(t *testing.T) {
	full := layerTar(t, "f:etc/hostname=box", "f:usr/bin/tool="+strings.Repeat("x", 1000))
	// Cut in the body of the second entry: 1024 bytes of the first, its
	// header, then 300 bytes of its 1000.
	cut := full[:1024+512+300]
	l := gzipLayer(t, cut)
	digest, _ := l.Digest()
	src := dockerImage(t, "amd64", l)
	for _, tc := range []struct {
		name string
		opts []rewrite.Option
	}{
		{"keep", []rewrite.Option{rewrite.WithFilter(func(rewrite.Recorder) tarfilter.Filter { return tarfilter.Keep() })}},
		{"strip", []rewrite.Option{rewrite.WithStrip(elf.Unneeded)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := rewrite.Image(context.Background(), src, append(tc.opts, rewrite.WithTempDir(t.TempDir()))...)
			if err == nil {
				res.Close()
				t.Fatal("no error for a truncated entry")
			}
			want := fmt.Sprintf("layer %s: usr/bin/tool: unexpected EOF (tar header says 1000 bytes, 300 present)", digest)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error:\n  %v\nwant it to contain\n  %s", err, want)
			}
		})
	}
	// A gzip stream cut inside the body: the decompressor's error, with
	// the sizes, and not called a malformed tar.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(testenv.TarLayer(t, []testenv.File{{Name: "usr/bin/tool", Mode: 0o755, Body: random(1 << 20)}}))
	zw.Close()
	cutBlob := testenv.BlobLayer(gz.Bytes()[:gz.Len()/2], types.DockerLayer)
	res, err := rewrite.Image(context.Background(), dockerImage(t, "amd64", cutBlob), rewrite.WithTempDir(t.TempDir()), rewrite.WithStrip(elf.Unneeded))
	if err == nil {
		res.Close()
		t.Fatal("no error for a cut gzip stream")
	}
	if !strings.Contains(err.Error(), "usr/bin/tool: decompressing gzip: unexpected EOF (tar header says 1048576 bytes, ") || strings.Contains(err.Error(), "malformed tar") {
		t.Errorf("cut gzip stream: error %v", err)
	}

	want := fmt.Sprintf("(%s): usr/bin/tool: unexpected EOF (tar header says 1000 bytes, 300 present)", digest)
	if _, err := analyze.Image(context.Background(), src, analyze.Options{TempDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("analyze: error %v, want it to say %s", err, want)
	}
	if _, err := verify.Image(context.Background(), src, src, verify.Options{TempDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("verify: error %v, want it to say %s", err, want)
	}
}

// random is n bytes that do not compress.
func random(n int) []byte {
	b := make([]byte, n)
	x := uint64(88172645463325252)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

// A gzip bomb (1 GiB of zeros in about 1 MiB) stops at the layer limit,
// with flat memory, in rewrite, recompress, analyze and verify alike.
func TestDecompressionBombHitsLayerLimit(t *testing.T) {
	bomb := testenv.BlobLayer(testenv.GzipBomb(t, 1<<30), types.DockerLayer)
	digest, _ := bomb.Digest()
	src := dockerImage(t, "amd64", bomb)
	const max = 32 << 20
	check := func(t *testing.T, err error) {
		t.Helper()
		if err == nil {
			t.Fatal("a 1 GiB layer went past a 32 MiB limit")
		}
		if !errors.Is(err, rewrite.ErrLimitExceeded) {
			t.Errorf("error %v does not wrap ErrLimitExceeded", err)
		}
		for _, want := range []string{digest.String(), "uncompressed layer exceeds the limit of 32 MiB (--max-layer-size)"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	}
	for _, tc := range []struct {
		name string
		opts []rewrite.Option
	}{
		{"recompress", nil},
		{"rewrite", []rewrite.Option{rewrite.WithStrip(elf.Unneeded)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			peak := testenv.PeakHeap(func() {
				var res *rewrite.Result
				res, err = rewrite.Image(context.Background(), src, append(tc.opts, rewrite.WithTempDir(t.TempDir()), rewrite.WithJobs(1),
					rewrite.WithMaxLayerSize(max))...)
				if err == nil {
					res.Close()
				}
			})
			check(t, err)
			// Issue 15's budget for one encoder: its frames (two 16 MiB
			// buffers) and history (16 MiB) are most of it.
			if peak > 120<<20 {
				t.Errorf("peak heap %d MiB, want under 120 MiB", peak>>20)
			}
		})
	}
	t.Run("squash", func(t *testing.T) {
		src := dockerImage(t, "amd64", gzipLayer(t, layerTar(t, "f:base=1")), gzipLayer(t, layerTar(t, "f:a=1")), bomb)
		base, _ := src.Layers()
		baseID, _ := base[0].DiffID()
		finder := func(context.Context, v1.Platform, *v1.Manifest, *v1.ConfigFile) ([]v1.Hash, string, error) {
			return []v1.Hash{baseID}, "test base", nil
		}
		res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()),
			rewrite.WithSquash(rewrite.SquashAuto), rewrite.WithBaseFinder(finder),
			rewrite.WithMaxLayerSize(max))
		if err == nil {
			res.Close()
		}
		check(t, err)
	})
	t.Run("analyze", func(t *testing.T) {
		_, err := analyze.Image(context.Background(), src, analyze.Options{TempDir: t.TempDir(), MaxLayerSize: max})
		check(t, err)
	})
	t.Run("verify", func(t *testing.T) {
		_, err := verify.Image(context.Background(), src, src, verify.Options{TempDir: t.TempDir(), MaxLayerSize: max})
		check(t, err)
	})
}

// An ELF file larger than the spool limit is an error naming the file and
// the flag, before it is read.
func TestSpoolLimit(t *testing.T) {
	exe := readFile(t, "../elf/testdata/hello-x86_64")
	layer := testenv.TarLayer(t, []testenv.File{{Name: "usr/bin/hello", Mode: 0o755, ModTime: time.Unix(1700000000, 0), Body: exe}})
	src := dockerImage(t, "amd64", gzipLayer(t, layer))
	res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()),
		rewrite.WithStrip(elf.Unneeded), rewrite.WithMaxSpool(4096))
	if err == nil {
		res.Close()
		t.Fatal("a 17 KiB ELF file went past a 4 KiB spool limit")
	}
	want := fmt.Sprintf("usr/bin/hello: file of %.1f KiB exceeds the limit of 4 KiB (--max-spool)", float64(len(exe))/1024)
	if !errors.Is(err, rewrite.ErrLimitExceeded) || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want ErrLimitExceeded saying %q", err, want)
	}
	// The same file with no limit, and analyze and verify with one.
	res, err = rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()),
		rewrite.WithStrip(elf.Unneeded), rewrite.WithMaxSpool(-1))
	if err != nil {
		t.Fatalf("no spool limit: %v", err)
	}
	rewrite.CheckVerified(t, src, res, nil)
	res.Close()
	if _, err := analyze.Image(context.Background(), src, analyze.Options{Strip: elf.Unneeded, TempDir: t.TempDir(), MaxSpool: 4096}); !errors.Is(err, rewrite.ErrLimitExceeded) {
		t.Errorf("analyze: error %v, want ErrLimitExceeded", err)
	}
	if _, err := verify.Image(context.Background(), src, src, verify.Options{TempDir: t.TempDir(), MaxSpool: 4096}); !errors.Is(err, rewrite.ErrLimitExceeded) {
		t.Errorf("verify: error %v, want ErrLimitExceeded", err)
	}

	// A squash re-reads a hardlink's old content into a temporary file.
	_, _, res, err = squashImage(t, [][]string{{"f:base=1"}, {"f:big=" + strings.Repeat("x", 8192), "h:link>big"}, {"f:big=new"}},
		rewrite.WithMaxSpool(4096))
	if err == nil {
		res.Close()
		t.Fatal("a squash spooled 8 KiB past a 4 KiB limit")
	}
	if !errors.Is(err, rewrite.ErrLimitExceeded) || !strings.Contains(err.Error(), "file of 8 KiB exceeds the limit of 4 KiB (--max-spool)") {
		t.Errorf("squash: error %v, want ErrLimitExceeded naming the sizes", err)
	}
}

// A zstd frame that declares a 2 GiB window fails at once, before the
// decoder allocates anything like it.
func TestZstdHugeWindow(t *testing.T) {
	frame := []byte{
		0x28, 0xb5, 0x2f, 0xfd, // magic
		0x04,             // frame header descriptor: checksum, no content size
		21<<3 | 0,        // window descriptor: 1<<(10+21) = 2 GiB
		0x31, 0x00, 0x00, // last raw block, 6 bytes
		'h', 'e', 'l', 'l', 'o', '\n',
		0x53, 0x88, 0xbd, 0x91,
	}
	l := testenv.BlobLayer(frame, types.OCILayerZStd)
	digest, _ := l.Digest()
	src := dockerImage(t, "amd64", l)
	var err error
	start := time.Now()
	peak := testenv.PeakHeap(func() {
		var res *rewrite.Result
		res, err = rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()), rewrite.WithStrip(elf.Unneeded))
		if err == nil {
			res.Close()
		}
	})
	if err == nil {
		t.Fatal("a frame with a 2 GiB window was decoded")
	}
	for _, want := range []string{digest.String(), "decompressing zstd: a frame asks for a window larger than the 128 MiB allowed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if peak > 64<<20 {
		t.Errorf("peak heap %d MiB, want under 64 MiB", peak>>20)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v to refuse the frame", d)
	}
	if _, err := analyze.Image(context.Background(), src, analyze.Options{TempDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "window") {
		t.Errorf("analyze: error %v, want one about the window", err)
	}
}

// A sparse file is a bomb of its own: 3 KiB of tar whose file reads as
// 1 TiB of zeros. Its expanded content counts against the layer limit in
// rewrite, analyze and verify; a small sparse file goes through (written
// dense: archive/tar writes no sparse files) and verifies.
func TestSparseBomb(t *testing.T) {
	const max = 32 << 20
	bomb := gzipLayer(t, testenv.SparseBomb(1<<40))
	digest, _ := bomb.Digest()
	src := dockerImage(t, "amd64", bomb)
	check := func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, rewrite.ErrLimitExceeded) {
			t.Fatalf("error %v, want ErrLimitExceeded", err)
		}
		for _, want := range []string{digest.String(), "content of the layer's files (sparse files expanded) exceeds the limit of 32 MiB (--max-layer-size)"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	}
	for _, tc := range []struct {
		name string
		opts []rewrite.Option
	}{
		{"keep", []rewrite.Option{rewrite.WithFilter(func(rewrite.Recorder) tarfilter.Filter { return tarfilter.Keep() })}},
		{"strip", []rewrite.Option{rewrite.WithStrip(elf.Unneeded)}},
		{"drop", []rewrite.Option{rewrite.WithFilter(func(rec rewrite.Recorder) tarfilter.Filter {
			m, _ := drop.New([]string{"none"}, []string{"holes"}, nil)
			return rewrite.Drop(m, rec)
		})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := rewrite.Image(context.Background(), src, append(tc.opts, rewrite.WithTempDir(t.TempDir()),
				rewrite.WithMaxLayerSize(max))...)
			if err == nil {
				res.Close()
			}
			check(t, err)
		})
	}
	t.Run("analyze", func(t *testing.T) {
		_, err := analyze.Image(context.Background(), src, analyze.Options{TempDir: t.TempDir(), MaxLayerSize: max})
		check(t, err)
	})
	t.Run("verify", func(t *testing.T) {
		_, err := verify.Image(context.Background(), src, src, verify.Options{TempDir: t.TempDir(), MaxLayerSize: max})
		check(t, err)
	})
	t.Run("small sparse file", func(t *testing.T) {
		src := dockerImage(t, "amd64", gzipLayer(t, testenv.SparseBomb(1<<20)))
		res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()), rewrite.WithStrip(elf.Unneeded),
			rewrite.WithMaxLayerSize(max))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Close()
		rewrite.CheckVerified(t, src, res, nil)
	})
}

// Two ELF files without a build-id at one path (a duplicate entry): the
// last one is what the image holds, so its debug file is the one the debug
// layer keeps, and the debuglink CRC of the stripped file matches it.
func TestDuplicateELFDebugFileLastWins(t *testing.T) {
	first := withoutBuildID(t, readFile(t, "../elf/testdata/hello-x86_64"))
	second := bytes.Clone(first)
	// A byte of .debug_str: the same layout, another debug file.
	ef, err := stdelf.NewFile(bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	second[ef.Section(".debug_str").Offset+0x10] ^= 0x20
	mt := time.Unix(1700000000, 0)
	layer := testenv.TarLayer(t, []testenv.File{
		{Name: "usr/lib/x", Mode: 0o755, ModTime: mt, Body: first},
		{Name: "usr/lib/x", Mode: 0o755, ModTime: mt, Body: second},
	})
	src := dockerImage(t, "amd64", gzipLayer(t, layer))
	res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()),
		rewrite.WithStrip(elf.Unneeded), rewrite.WithDebugImage(true))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	rewrite.CheckVerified(t, src, res, nil)
	layers, _ := res.Image.Layers()
	stripped := readAll(t, layerBytes(t, layers[0]))["usr/lib/x"].Body // the last entry of the path
	dl, _ := res.DebugImage.Layers()
	dbg := readAll(t, layerBytes(t, dl[len(dl)-1]))["usr/lib/debug/usr/lib/x.debug"].Body
	f, err := stdelf.NewFile(bytes.NewReader(stripped))
	if err != nil {
		t.Fatal(err)
	}
	sec := f.Section(".gnu_debuglink")
	if sec == nil {
		t.Fatal("no .gnu_debuglink")
	}
	link, _ := sec.Data()
	if crc := binary.LittleEndian.Uint32(link[len(link)-4:]); crc != crc32.ChecksumIEEE(dbg) {
		t.Errorf("the debug layer keeps the first file's debug file: debuglink CRC %#x, debug file's %#x", crc, crc32.ChecksumIEEE(dbg))
	}
}

// withoutBuildID returns b with its NT_GNU_BUILD_ID note retyped, so that
// it has no build-id and gets a path-based debug file.
func withoutBuildID(t testing.TB, b []byte) []byte {
	t.Helper()
	b = bytes.Clone(b)
	f, err := stdelf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	s := f.Section(".note.gnu.build-id")
	if s == nil {
		t.Fatal("no .note.gnu.build-id")
	}
	f.ByteOrder.PutUint32(b[s.Offset+8:], 0x4242)
	return b
}
