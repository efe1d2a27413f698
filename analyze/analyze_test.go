package analyze_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/analyze"
	"github.com/layerslim/layerslim/drop"
	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/testenv"
)

func TestShadowed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layers [][]testenv.File
		want   []int64 // shadowed bytes per layer, bottom first
		// wantWhy, when set, is the reason of the largest item.
		wantWhy string
	}{
		{
			name:    "overwrite",
			layers:  [][]testenv.File{{testenv.Dir("etc"), file("etc/conf", 100), file("etc/keep", 7)}, {file("etc/conf", 50)}},
			want:    []int64{100, 0},
			wantWhy: "shadowed by layer 2",
		},
		{
			name:    "whiteout",
			layers:  [][]testenv.File{{file("a/f", 100), file("a/g", 30)}, {testenv.Whiteout("a/f")}},
			want:    []int64{100, 0},
			wantWhy: "shadowed by layer 2",
		},
		{
			name:   "whiteout of a directory",
			layers: [][]testenv.File{{testenv.Dir("d"), file("d/a", 1), file("d/b/c", 2), file("e", 4)}, {testenv.Whiteout("d")}},
			want:   []int64{3, 0},
		},
		{
			name: "opaque directory",
			layers: [][]testenv.File{
				{testenv.Dir("d"), file("d/x", 10), file("d/y", 20), file("e/z", 5)},
				{testenv.Dir("d"), testenv.Opaque("d"), file("d/new", 7)},
			},
			want:    []int64{30, 0},
			wantWhy: "shadowed by layer 2",
		},
		{
			name:   "opaque directory hides the layers below, not its own",
			layers: [][]testenv.File{{file("d/x", 10)}, {file("d/y", 20)}, {testenv.Opaque("d"), file("d/z", 1)}},
			want:   []int64{10, 20, 0},
		},
		{
			name:    "directory replaced by a file",
			layers:  [][]testenv.File{{testenv.Dir("d"), file("d/x", 10), file("d/sub/y", 20)}, {file("d", 3)}},
			want:    []int64{30, 0},
			wantWhy: "shadowed by layer 2",
		},
		{
			name:   "file replaced by a directory",
			layers: [][]testenv.File{{file("f", 40)}, {testenv.Dir("f"), file("f/x", 1)}},
			want:   []int64{40, 0},
		},
		{
			name:    "duplicates in one layer: the earlier ones",
			layers:  [][]testenv.File{{file("a", 10), testenv.Reg("a", strings.Repeat("x", 20)), file("b", 5), testenv.Reg("a", strings.Repeat("y", 30))}},
			want:    []int64{30},
			wantWhy: "shadowed by layer 1 (a later entry of the same path)",
		},
		{
			name:    "the nearest layer above is named",
			layers:  [][]testenv.File{{file("x", 100)}, {file("x", 20)}, {file("x", 30)}},
			want:    []int64{100, 20, 0},
			wantWhy: "shadowed by layer 2",
		},
		{
			name:   "deleted, then made again above",
			layers: [][]testenv.File{{file("a/f", 100)}, {testenv.Whiteout("a/f")}, {file("a/f", 5)}},
			want:   []int64{100, 0, 0},
		},
		{
			name:   "a hardlink keeps a shadowed target's content",
			layers: [][]testenv.File{{file("a", 100), testenv.Hardlink("b", "a")}, {file("a", 10)}},
			want:   []int64{0, 0},
		},
		{
			name:   "symlinks and directories weigh nothing",
			layers: [][]testenv.File{{testenv.Dir("d"), testenv.Symlink("l", "d")}, {file("d", 1), file("l", 2)}},
			want:   []int64{0, 0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tars [][]byte
			for _, l := range tc.layers {
				tars = append(tars, testenv.TarLayer(t, l))
			}
			rep := analyzeImage(t, imageOfTars(t, tars...), analyze.Options{})
			var got []int64
			var total int64
			for _, l := range rep.Layers {
				got = append(got, l.ShadowedBytes)
				total += l.ShadowedBytes
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("shadowed bytes per layer (-want +got):\n%s", diff)
			}
			if rep.Totals.ShadowedBytes != total || rep.WasteBytes != total {
				t.Errorf("totals: shadowed %d, waste %d, want %d", rep.Totals.ShadowedBytes, rep.WasteBytes, total)
			}
			if tc.wantWhy != "" && (len(rep.Top) == 0 || rep.Top[0].Why != tc.wantWhy) {
				t.Errorf("top items %+v, want the first shadowed %q", rep.Top, tc.wantWhy)
			}
		})
	}
}

func TestDropByPreset(t *testing.T) {
	layer := testenv.TarLayer(t, []testenv.File{
		testenv.Dir("var/lib/apt/lists"), testenv.Dir("var/lib/apt/lists/partial"),
		file("var/lib/apt/lists/deb.debian.org_dists_bookworm_main_binary-amd64_Packages", 1000),
		file("var/lib/apt/lists/lock", 0),
		file("var/lib/apt/lists/partial/x", 24),
		testenv.Dir("usr/share/doc/pkg"),
		file("usr/share/doc/pkg/README", 200),
		file("usr/share/doc/pkg/copyright", 300), // kept by default
		file("usr/bin/tool", 50),
		file("opt/big/blob", 77),
	})
	for _, tc := range []struct {
		name                     string
		presets, dropPaths, keep []string
		want                     map[string]int64
	}{
		{name: "defaults", want: map[string]int64{"apt": 1024, "docs": 200}},
		{name: "drop-path and keep", dropPaths: []string{"opt/big/**"}, keep: []string{"usr/share/doc/pkg/README"},
			want: map[string]int64{"apt": 1024, drop.ReasonDropPath: 77}},
		{name: "one preset", presets: []string{"docs"}, want: map[string]int64{"docs": 200}},
		{name: "none", presets: []string{"none"}, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := drop.New(tc.presets, tc.dropPaths, tc.keep)
			if err != nil {
				t.Fatal(err)
			}
			rep := analyzeImage(t, imageOfTars(t, layer), analyze.Options{Drop: m})
			l := rep.Layers[0]
			if diff := cmp.Diff(tc.want, l.DropByPreset); diff != "" {
				t.Errorf("drop by preset (-want +got):\n%s", diff)
			}
			var sum int64
			for _, v := range tc.want {
				sum += v
			}
			if l.DropBytes != sum || rep.WasteBytes != sum || l.ShadowedBytes != 0 {
				t.Errorf("drop %d waste %d shadowed %d, want drop and waste %d", l.DropBytes, rep.WasteBytes, l.ShadowedBytes, sum)
			}
			if l.Files != 7 {
				t.Errorf("files = %d, want 7", l.Files)
			}
		})
	}
}

// A file that a drop preset matches but a later layer shadows is counted
// once, as shadowed: the rewrite would not have it to drop.
func TestDroppedAndShadowedCountedOnce(t *testing.T) {
	m, err := drop.New(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	img := imageOfTars(t,
		testenv.TarLayer(t, []testenv.File{file("usr/share/doc/pkg/README", 200), file("var/cache/apt/pkgcache.bin", 500), file("tmp/x", 9)}),
		testenv.TarLayer(t, []testenv.File{file("usr/share/doc/pkg/README", 150), testenv.Whiteout("var/cache/apt/pkgcache.bin")}),
	)
	rep := analyzeImage(t, img, analyze.Options{Drop: m})
	l1, l2 := rep.Layers[0], rep.Layers[1]
	if l1.ShadowedBytes != 700 || l1.DropBytes != 9 {
		t.Errorf("layer 1: shadowed %d drop %d, want 700 and 9", l1.ShadowedBytes, l1.DropBytes)
	}
	if l2.ShadowedBytes != 0 || l2.DropBytes != 150 || l2.DropByPreset["docs"] != 150 {
		t.Errorf("layer 2: shadowed %d drop %d (%v), want 0 and docs 150", l2.ShadowedBytes, l2.DropBytes, l2.DropByPreset)
	}
	if rep.WasteBytes != 859 {
		t.Errorf("waste = %d, want 859", rep.WasteBytes)
	}
}

func TestDebugBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Go programs")
	}
	unstripped := goHello(t)
	stripped := goHello(t, "-ldflags=-s -w")
	info, err := elf.Inspect(bytes.NewReader(unstripped), int64(len(unstripped)), elf.Unneeded)
	if err != nil {
		t.Fatal(err)
	}
	if info.DebugBytes <= 0 {
		t.Fatalf("elf.Inspect finds %d debug bytes in an unstripped build", info.DebugBytes)
	}
	bin := func(name string, b []byte) testenv.File { return testenv.File{Name: name, Body: b} }

	t.Run("unstripped", func(t *testing.T) {
		tmp := t.TempDir()
		rep := analyzeImage(t, imageOfTars(t, testenv.TarLayer(t, []testenv.File{bin("app/hello", unstripped), file("app/readme", 10)})), analyze.Options{Strip: elf.Unneeded, TempDir: tmp})
		l := rep.Layers[0]
		if l.DebugBytes != info.DebugBytes || l.ELFFiles != 1 {
			t.Errorf("debug bytes %d in %d ELF files, want %d (elf.Inspect) in 1", l.DebugBytes, l.ELFFiles, info.DebugBytes)
		}
		if want := (analyze.Item{Path: "app/hello", Layer: 1, Bytes: info.DebugBytes, Why: "debug sections"}); len(rep.Top) != 1 || rep.Top[0] != want {
			t.Errorf("top = %+v, want %+v", rep.Top, want)
		}
		// Larger than memSpool: it went through a temporary file.
		emptyDir(t, tmp)
	})
	t.Run("zero options strip nothing", func(t *testing.T) {
		// The zero Options mean elf.None, as a rewrite without WithStrip
		// (rewrite's TestNoOptionStripsNothing).
		rep := analyzeImage(t, imageOfTars(t, testenv.TarLayer(t, []testenv.File{bin("app/hello", unstripped)})), analyze.Options{})
		if l := rep.Layers[0]; l.DebugBytes != 0 || l.ELFFiles != 1 {
			t.Errorf("debug bytes %d in %d ELF files, want 0 in 1", l.DebugBytes, l.ELFFiles)
		}
	})
	t.Run("stripped", func(t *testing.T) {
		rep := analyzeImage(t, imageOfTars(t, testenv.TarLayer(t, []testenv.File{bin("app/hello", stripped)})), analyze.Options{Strip: elf.Unneeded})
		if l := rep.Layers[0]; l.DebugBytes != 0 || l.ELFFiles != 1 {
			t.Errorf("debug bytes %d in %d ELF files, want 0 in 1", l.DebugBytes, l.ELFFiles)
		}
	})
	t.Run("modes", func(t *testing.T) {
		img := imageOfTars(t, testenv.TarLayer(t, []testenv.File{bin("app/hello", unstripped)}))
		var est []int64
		for _, mode := range []elf.Mode{elf.Unneeded, elf.Debug, elf.All, elf.None} {
			want := int64(0)
			if mode != elf.None {
				i, err := elf.Inspect(bytes.NewReader(unstripped), int64(len(unstripped)), mode)
				if err != nil {
					t.Fatal(err)
				}
				want = i.DebugBytes
			}
			l := analyzeImage(t, img, analyze.Options{Strip: mode}).Layers[0]
			if l.DebugBytes != want {
				t.Errorf("--strip=%s: %d debug bytes, want %d", mode, l.DebugBytes, want)
			}
			est = append(est, l.EstimatedZstd)
		}
		// Stripping shrinks the estimate; with none it is the file as is.
		if est[0] >= est[3] || est[1] >= est[3] {
			t.Errorf("estimates unneeded %d, debug %d, none %d: stripping should shrink them", est[0], est[1], est[3])
		}
	})
	t.Run("only visible files count", func(t *testing.T) {
		m, _ := drop.New(nil, []string{"opt/dropped"}, nil)
		img := imageOfTars(t,
			testenv.TarLayer(t, []testenv.File{bin("app/hello", unstripped), bin("opt/dropped", unstripped), bin("app/deleted", unstripped)}),
			testenv.TarLayer(t, []testenv.File{file("app/hello", 3), testenv.Whiteout("app/deleted")}),
		)
		rep := analyzeImage(t, img, analyze.Options{Drop: m})
		l := rep.Layers[0]
		n := int64(len(unstripped))
		if l.DebugBytes != 0 || l.ELFFiles != 0 || l.ShadowedBytes != 2*n || l.DropBytes != n {
			t.Errorf("debug %d in %d ELF files, shadowed %d, drop %d; want 0, 0, %d, %d", l.DebugBytes, l.ELFFiles, l.ShadowedBytes, l.DropBytes, 2*n, n)
		}
	})
	t.Run("as a rewrite splits", func(t *testing.T) {
		// Test data stays as it is; a separate debug file moves whole.
		img := imageOfTars(t, testenv.TarLayer(t, []testenv.File{bin("usr/src/x/testdata/hello", unstripped), bin("usr/lib/debug/x.debug", unstripped)}))
		l := analyzeImage(t, img, analyze.Options{Strip: elf.Unneeded}).Layers[0]
		if l.DebugBytes != int64(len(unstripped)) || l.ELFFiles != 2 {
			t.Errorf("debug bytes %d in %d ELF files, want %d (the debug file) in 2", l.DebugBytes, l.ELFFiles, len(unstripped))
		}
	})
}

// randomText is compressible but not trivially so.
func randomText(seed uint64, n int) string {
	rng := rand.New(rand.NewPCG(seed, 7))
	words := []string{"alpha", "beta", "gamma", "delta", "layer", "image", "zstd", "\n"}
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(words[rng.IntN(len(words))])
		b.WriteByte(' ')
	}
	return b.String()[:n]
}

func TestEstimate(t *testing.T) {
	var kept []testenv.File
	for i := range 20 {
		kept = append(kept, testenv.Reg(fmt.Sprintf("srv/f%02d.txt", i), randomText(uint64(i), 3000+i*100)))
	}
	dropped := testenv.Reg("usr/share/doc/pkg/README", randomText(99, 5000))
	all := append(append([]testenv.File{}, kept[:10]...), dropped)
	all = append(all, kept[10:]...)
	m, err := drop.New(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	img := imageOfTars(t, testenv.TarLayer(t, all))

	rep := analyzeImage(t, img, analyze.Options{Drop: m})
	l := rep.Layers[0]
	if l.EstimatedZstd <= 0 || l.EstimatedZstd >= l.UncompressedSize {
		t.Fatalf("estimate %d, uncompressed %d", l.EstimatedZstd, l.UncompressedSize)
	}
	// What stays is the layer without the dropped file: the estimate is
	// exactly its zstd size (archive/tar wrote both, so headers agree).
	if want := zstdSize(t, testenv.TarLayer(t, kept)); l.EstimatedZstd != want {
		t.Errorf("estimate %d, want %d: the kept records compressed", l.EstimatedZstd, want)
	}
	if want := int64(len(testenv.TarLayer(t, all))); l.UncompressedSize != want {
		t.Errorf("uncompressed %d, want %d", l.UncompressedSize, want)
	}
	if again := analyzeImage(t, img, analyze.Options{Drop: m}); !cmp.Equal(rep, again) {
		t.Errorf("not deterministic:\n%s", cmp.Diff(rep, again))
	}
	// Without drop presets, everything stays.
	none := analyzeImage(t, img, analyze.Options{})
	if want := zstdSize(t, testenv.TarLayer(t, all)); none.Layers[0].EstimatedZstd != want {
		t.Errorf("estimate without drops %d, want %d", none.Layers[0].EstimatedZstd, want)
	}
	// A higher level compresses better, or at least no worse.
	if l19 := analyzeImage(t, img, analyze.Options{Drop: m, Level: 19}).Layers[0].EstimatedZstd; l19 > l.EstimatedZstd {
		t.Errorf("level 19 estimate %d > level 3 estimate %d", l19, l.EstimatedZstd)
	}
}

// Shadowed layers above and below, read with downloads ahead or not, give
// the same report, and leave nothing in TempDir.
func TestJobs(t *testing.T) {
	var tars [][]byte
	for i := range 6 {
		tars = append(tars, testenv.TarLayer(t, []testenv.File{
			testenv.Reg("shared/file", randomText(uint64(i), 4000)),
			testenv.Reg(fmt.Sprintf("own/%d", i), randomText(uint64(10+i), 2000)),
		}))
	}
	img := imageOfTars(t, tars...)
	var want *analyze.ImageReport
	for _, jobs := range []int{1, 2, 3, 16} {
		tmp := t.TempDir()
		rep := analyzeImage(t, img, analyze.Options{Jobs: jobs, TempDir: tmp})
		emptyDir(t, tmp)
		if want == nil {
			want = rep
			if rep.Totals.ShadowedBytes != 5*4000 {
				t.Fatalf("shadowed %d, want %d", rep.Totals.ShadowedBytes, 5*4000)
			}
			continue
		}
		if diff := cmp.Diff(want, rep); diff != "" {
			t.Errorf("jobs %d (-jobs 1 +got):\n%s", jobs, diff)
		}
	}
}

// corruptLayer serves other bytes than its digest names: with flip, a
// damaged blob; without, the right blob under another digest.
type corruptLayer struct {
	v1.Layer
	flip bool
}

func (l corruptLayer) Digest() (v1.Hash, error) {
	if l.flip {
		return l.Layer.Digest()
	}
	return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}, nil
}

func (l corruptLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil || !l.flip {
		return rc, err
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	b[len(b)/2] ^= 0xff
	return io.NopCloser(bytes.NewReader(b)), nil
}

func TestCorruptLayer(t *testing.T) {
	for _, jobs := range []int{1, 3} {
		for _, flip := range []bool{false, true} {
			for _, bad := range []int{0, 1} {
				ls := []v1.Layer{layerOf(t, testenv.TarLayer(t, []testenv.File{file("a", 10)})), layerOf(t, testenv.TarLayer(t, []testenv.File{file("b", 20)}))}
				ls[bad] = corruptLayer{Layer: ls[bad], flip: flip}
				tmp := t.TempDir()
				_, err := analyze.Image(context.Background(), imageOf(t, ls...), analyze.Options{Jobs: jobs, TempDir: tmp})
				if err == nil {
					t.Fatalf("jobs %d, layer %d corrupt: no error", jobs, bad+1)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("layer %d (sha256:", bad+1)) {
					t.Errorf("jobs %d: error %q does not name layer %d", jobs, err, bad+1)
				}
				if !flip && !errors.Is(err, analyze.ErrDigestMismatch) {
					t.Errorf("jobs %d: error %q, want a digest mismatch", jobs, err)
				}
				emptyDir(t, tmp)
			}
		}
	}
	// A layer whose bytes match its digest but not the config's diff_id.
	img := imageOf(t, layerOf(t, testenv.TarLayer(t, []testenv.File{file("a", 10)})))
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs[0].Hex = strings.Repeat("0", 64)
	img, _ = mutate.ConfigFile(img, cf)
	if _, err := analyze.Image(context.Background(), img, analyze.Options{}); !errors.Is(err, analyze.ErrDigestMismatch) {
		t.Errorf("wrong diff_id: error %v, want ErrDigestMismatch", err)
	}
}

func TestCreatedByAndSkipped(t *testing.T) {
	foreign := layerOf(t, testenv.TarLayer(t, []testenv.File{file("windows/base", 10)}), tarball.WithMediaType(types.DockerForeignLayer))
	img := mutate.MediaType(empty.Image, types.DockerManifestSchema2)
	var err error
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: foreign, History: v1.History{CreatedBy: "base"}, MediaType: types.DockerForeignLayer},
		mutate.Addendum{Layer: layerOf(t, testenv.TarLayer(t, []testenv.File{file("windows/base", 5)})), History: v1.History{CreatedBy: "RUN x"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Append(img, mutate.Addendum{Layer: layerOf(t, testenv.TarLayer(t, []testenv.File{file("c", 1)})), History: v1.History{CreatedBy: "COPY c"}})
	if err != nil {
		t.Fatal(err)
	}
	rep := analyzeImage(t, img, analyze.Options{})
	var got []string
	for _, l := range rep.Layers {
		got = append(got, l.CreatedBy)
	}
	if diff := cmp.Diff([]string{"base", "RUN x", "COPY c"}, got); diff != "" {
		t.Errorf("created by (-want +got):\n%s", diff)
	}
	l := rep.Layers[0]
	if l.Skipped == "" || l.EstimatedZstd != l.CompressedSize || l.UncompressedSize != 0 || l.ShadowedBytes != 0 {
		t.Errorf("foreign layer: %+v, want it skipped and passed through", l)
	}
}

func TestIndex(t *testing.T) {
	img := func(arch string, n int) v1.Image {
		i := imageOfTars(t, testenv.TarLayer(t, []testenv.File{file("x", n)}), testenv.TarLayer(t, []testenv.File{file("x", 1)}))
		cf, _ := i.ConfigFile()
		cf = cf.DeepCopy()
		cf.Architecture = arch
		i, _ = mutate.ConfigFile(i, cf)
		return i
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: img("amd64", 100), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: img("amd64", 7), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest"}}},
		mutate.IndexAddendum{Add: img("arm64", 200), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	reps, err := analyze.Index(context.Background(), idx, analyze.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range reps {
		got = append(got, fmt.Sprintf("%s %d", r.Platform, r.WasteBytes))
	}
	if diff := cmp.Diff([]string{"linux/amd64 100", "linux/arm64/v8 200"}, got); diff != "" {
		t.Errorf("platforms (-want +got):\n%s", diff)
	}
	reps, err = analyze.Index(context.Background(), idx, analyze.Options{Platforms: []v1.Platform{{OS: "linux", Architecture: "arm64"}}})
	if err != nil || len(reps) != 1 || reps[0].Platform != "linux/arm64/v8" {
		t.Errorf("--platform linux/arm64: %v, %v", reps, err)
	}
	if _, err := analyze.Index(context.Background(), idx, analyze.Options{Platforms: []v1.Platform{{OS: "linux", Architecture: "s390x"}}}); err == nil {
		t.Error("no platform selected: no error")
	}
}

func TestTopItems(t *testing.T) {
	var lower, upper []testenv.File
	for i := range 30 {
		name := fmt.Sprintf("f%02d", i)
		lower = append(lower, file(name, 100+i))
		upper = append(upper, file(name, 1))
	}
	rep := analyzeImage(t, imageOfTars(t, testenv.TarLayer(t, lower), testenv.TarLayer(t, upper)), analyze.Options{})
	if len(rep.Top) != analyze.TopItems {
		t.Fatalf("%d items, want %d", len(rep.Top), analyze.TopItems)
	}
	for i, it := range rep.Top {
		want := analyze.Item{Path: fmt.Sprintf("f%02d", 29-i), Layer: 1, Bytes: int64(129 - i), Why: "shadowed by layer 2"}
		if it != want {
			t.Errorf("item %d = %+v, want %+v", i, it, want)
		}
	}
}

func TestOptions(t *testing.T) {
	img := imageOfTars(t, testenv.TarLayer(t, []testenv.File{file("a", 1)}))
	for _, o := range []analyze.Options{{Level: 23}, {Level: -1}, {Strip: elf.Mode(9)}} {
		if _, err := analyze.Image(context.Background(), img, o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	if _, err := analyze.Image(context.Background(), img, analyze.Options{Platforms: []v1.Platform{{OS: "linux", Architecture: "arm64"}}}); err == nil {
		t.Error("an amd64 image with --platform linux/arm64: no error")
	}
}
