package rewrite_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/internal/whiteout"
	"github.com/layerslim/layerslim/rewrite"
	"github.com/layerslim/layerslim/tarfilter"
)

// ent describes a tar entry: "f:name=content", "d:name", "l:name>target"
// (symlink), "h:name>target" (hardlink), "w:name" (whiteout of name),
// "o:dir" (opaque marker), with an optional "@mode" suffix (octal).
func layerTar(t testing.TB, ents ...string) []byte {
	t.Helper()
	mt := time.Unix(1700000000, 0)
	var files []testenv.File
	for _, e := range ents {
		mode := int64(0)
		if i := strings.LastIndex(e, "@"); i > 0 {
			fmt.Sscanf(e[i+1:], "%o", &mode)
			e = e[:i]
		}
		kind, rest, _ := strings.Cut(e, ":")
		f := testenv.File{ModTime: mt, Mode: 0o644, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		switch kind {
		case "f":
			name, body, _ := strings.Cut(rest, "=")
			f.Name, f.Body = name, []byte(body)
		case "d":
			f.Name, f.Typeflag, f.Mode = rest+"/", tar.TypeDir, 0o755
		case "l":
			f.Typeflag = tar.TypeSymlink
			f.Name, f.Linkname, _ = strings.Cut(rest, ">")
		case "h":
			f.Typeflag = tar.TypeLink
			f.Name, f.Linkname, _ = strings.Cut(rest, ">")
		case "w":
			f.Name = path.Join(path.Dir(rest), ".wh."+path.Base(rest))
		case "o":
			f.Name = path.Join(rest, ".wh..wh..opq")
		default:
			t.Fatalf("bad entry %q", e)
		}
		if mode != 0 {
			f.Mode = mode
		}
		files = append(files, f)
	}
	return testenv.TarLayer(t, files)
}

// node is a path of a merged filesystem, as a test sees it.
type node = testenv.Node

// mergeFS applies tar layers bottom-up the way the image-spec says (and
// containerd, podman and umoci do).
func mergeFS(t testing.TB, layers [][]byte) map[string]node {
	t.Helper()
	return testenv.SpecApply(t, layers...)
}

// checkAppliers asserts that the output layers read as the source's do,
// under the spec's applier, and the same under an applier that works in
// tar order: each layer's whiteouts come before the entries beside them.
func checkAppliers(t testing.TB, src, out [][]byte) {
	t.Helper()
	want := testenv.SpecApply(t, src...)
	if diff := cmp.Diff(want, testenv.SpecApply(t, out...)); diff != "" {
		t.Errorf("merged filesystem differs (-source +output):\n%s", diff)
	}
	if diff := cmp.Diff(want, testenv.NaiveApply(t, out...)); diff != "" {
		t.Errorf("an in-order applier reads the output differently (-source +output):\n%s", diff)
	}
	for i, l := range out {
		if n, late := lateWhiteouts(t, l); late != "" {
			t.Errorf("output layer %d: whiteout %s (entry %d) comes after entries of its directory", i+1, late, n)
		}
	}
}

// lateWhiteouts returns the first whiteout of a tar stream that comes
// after an entry under its directory, and its entry number.
func lateWhiteouts(t testing.TB, tarball []byte) (int, string) {
	t.Helper()
	var c whiteout.OrderCheck
	for i, n := range names(t, tarball) {
		if c.Add(whiteout.Clean(n)) {
			return i + 1, n
		}
	}
	return 0, ""
}

func layerBytes(t testing.TB, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	c, r, err := compress.Detect(rc)
	if err != nil {
		t.Fatal(err)
	}
	dr, err := compress.NewReader(c, r)
	if err != nil {
		t.Fatal(err)
	}
	defer dr.Close()
	b, err := io.ReadAll(dr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func names(t testing.TB, tarball []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(tarball))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSuffix(h.Name, "/"))
	}
}

func TestSquash(t *testing.T) {
	tests := []struct {
		name   string
		layers [][]string // bottom to top; the first is the base
		// wantNames are the entries of the merged layer, sorted.
		wantNames []string
		// wantLayers is the number of layers of the output.
		wantLayers int
	}{
		{
			name:       "overwrite keeps the last version only",
			layers:     [][]string{{"f:base=1"}, {"f:a=v1", "f:b=b"}, {"f:a=v2"}},
			wantNames:  []string{"a", "b"},
			wantLayers: 2,
		},
		{
			name:       "a whiteout of merged content is consumed, and an empty result disappears",
			layers:     [][]string{{"f:base=1"}, {"f:a=1"}, {"w:a"}},
			wantNames:  nil,
			wantLayers: 1,
		},
		{
			name:       "a whiteout aimed at the base is kept",
			layers:     [][]string{{"f:b=1", "f:keep=1"}, {"f:c=1"}, {"w:b"}},
			wantNames:  []string{".wh.b", "c"},
			wantLayers: 2,
		},
		{
			name:       "an opaque directory hides base and lower merged children",
			layers:     [][]string{{"d:d", "f:d/x=1", "f:d/y=1"}, {"f:d/w=1"}, {"d:d", "o:d", "f:d/z=1"}},
			wantNames:  []string{"d", "d/.wh..wh..opq", "d/z"},
			wantLayers: 2,
		},
		{
			name:       "a directory replaced by a file",
			layers:     [][]string{{"f:base=1"}, {"d:p", "f:p/q=1"}, {"f:p=file"}},
			wantNames:  []string{"p"},
			wantLayers: 2,
		},
		{
			name:       "a file replaced by a symlink, a symlink by a directory",
			layers:     [][]string{{"f:base=1"}, {"f:s=1", "l:t>base"}, {"l:s>base", "d:t", "f:t/in=1"}},
			wantNames:  []string{"s", "t", "t/in"},
			wantLayers: 2,
		},
		{
			name:       "deleted then made again as a directory gets an opaque marker",
			layers:     [][]string{{"d:t", "f:t/old=1"}, {"w:t"}, {"d:t", "f:t/new=1"}},
			wantNames:  []string{"t", "t/.wh..wh..opq", "t/new"},
			wantLayers: 2,
		},
		{
			name:       "a hardlink to a file of a lower merged layer",
			layers:     [][]string{{"f:base=1"}, {"f:f=content"}, {"h:g>f"}},
			wantNames:  []string{"f", "g"},
			wantLayers: 2,
		},
		{
			name:       "a hardlink whose target is replaced later keeps the old content",
			layers:     [][]string{{"f:base=1"}, {"f:f=old", "h:g>f", "h:g2>f"}, {"f:f=new"}},
			wantNames:  []string{"f", "g", "g2"},
			wantLayers: 2,
		},
		{
			name:       "a hardlink into the base stays a link",
			layers:     [][]string{{"f:lib=so"}, {"f:x=1"}, {"h:lib2>lib"}},
			wantNames:  []string{"lib2", "x"},
			wantLayers: 2,
		},
		{
			name:       "a directory takes its last metadata",
			layers:     [][]string{{"f:base=1"}, {"d:d@755", "f:d/a=1"}, {"d:d@700"}},
			wantNames:  []string{"d", "d/a"},
			wantLayers: 2,
		},
		{
			name:       "duplicate entries in one layer: the last wins",
			layers:     [][]string{{"f:base=1"}, {"f:a=1"}, {"f:b=first", "f:b=second"}},
			wantNames:  []string{"a", "b", "b"},
			wantLayers: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tars [][]byte
			var ls []v1.Layer
			for _, l := range tc.layers {
				b := layerTar(t, l...)
				tars = append(tars, b)
				ls = append(ls, gzipLayer(t, b))
			}
			src := dockerImage(t, "amd64", ls...)
			baseID, _ := ls[0].DiffID()
			finder := func(context.Context, v1.Platform, *v1.Manifest, *v1.ConfigFile) ([]v1.Hash, string, error) {
				return []v1.Hash{baseID}, "test base", nil
			}
			res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()),
				rewrite.WithSquash(rewrite.SquashAuto), rewrite.WithBaseFinder(finder),
				rewrite.WithFilter(func(rewrite.Recorder) tarfilter.Filter { return tarfilter.Keep() }))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Close()
			checkImage(t, res.Image, compress.Zstd)
			rewrite.CheckVerified(t, src, res, nil)
			layers, _ := res.Image.Layers()
			if len(layers) != tc.wantLayers {
				t.Fatalf("%d layers, want %d", len(layers), tc.wantLayers)
			}
			var out [][]byte
			for _, l := range layers {
				out = append(out, layerBytes(t, l))
			}
			checkAppliers(t, tars, out)
			if !bytes.Equal(out[0], tars[0]) {
				t.Error("the base layer changed")
			}
			if tc.wantLayers == 2 {
				got := names(t, out[1])
				sort.Strings(got)
				if diff := cmp.Diff(tc.wantNames, got); diff != "" {
					t.Errorf("merged layer entries (-want +got):\n%s", diff)
				}
			}
			// History stays consistent with the layers.
			cf, _ := res.Image.ConfigFile()
			nonEmpty := 0
			for _, h := range cf.History {
				if !h.EmptyLayer {
					nonEmpty++
				}
			}
			if nonEmpty != len(cf.RootFS.DiffIDs) {
				t.Errorf("%d non-empty history entries for %d layers", nonEmpty, len(cf.RootFS.DiffIDs))
			}
			ir := res.Report.Images[0]
			if ir.Base == nil || ir.Base.Layers != 1 || ir.Base.Reason != "test base" {
				t.Errorf("report base = %+v", ir.Base)
			}
		})
	}
}

func TestSquashAllAndDeterminism(t *testing.T) {
	l1 := gzipLayer(t, layerTar(t, "d:etc", "f:etc/a=1", "f:etc/b=2"))
	l2 := gzipLayer(t, layerTar(t, "f:etc/a=changed", "w:etc/b", "f:app=bin"))
	src := dockerImage(t, "amd64", l1, l2)
	var digests []v1.Hash
	for _, jobs := range []int{1, 3} {
		res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(t.TempDir()), rewrite.WithJobs(jobs),
			rewrite.WithSquash(rewrite.SquashAll), rewrite.WithFilter(func(rewrite.Recorder) tarfilter.Filter { return tarfilter.Keep() }))
		if err != nil {
			t.Fatal(err)
		}
		rewrite.CheckVerified(t, src, res, nil)
		layers, _ := res.Image.Layers()
		if len(layers) != 1 {
			t.Fatalf("--squash=all gave %d layers", len(layers))
		}
		got := names(t, layerBytes(t, layers[0]))
		sort.Strings(got)
		if diff := cmp.Diff([]string{"app", "etc", "etc/a"}, got); diff != "" {
			t.Errorf("entries (-want +got):\n%s", diff)
		}
		d, _ := res.Image.Digest()
		digests = append(digests, d)
		res.Close()
	}
	if digests[0] != digests[1] {
		t.Errorf("squash output differs with --jobs: %v", digests)
	}
}

func TestBaseFromHistory(t *testing.T) {
	day := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ls := []v1.Layer{
		gzipLayer(t, layerTar(t, "f:root=1")),
		gzipLayer(t, layerTar(t, "f:base2=1")),
		gzipLayer(t, layerTar(t, "f:app1=1")),
		gzipLayer(t, layerTar(t, "f:app2=1")),
	}
	img := dockerImage(t, "amd64")
	hist := []v1.History{
		{Created: v1.Time{Time: day}, CreatedBy: "/bin/sh -c #(nop) ADD file:abc in /"},
		{Created: v1.Time{Time: day.Add(time.Minute)}, CreatedBy: "RUN base setup"},
		{Created: v1.Time{Time: day.Add(30 * 24 * time.Hour)}, CreatedBy: "ENV X=1", EmptyLayer: true},
		{Created: v1.Time{Time: day.Add(30*24*time.Hour + time.Minute)}, CreatedBy: "RUN build 1"},
		{Created: v1.Time{Time: day.Add(30*24*time.Hour + 2*time.Minute)}, CreatedBy: "RUN build 2"},
	}
	li := 0
	for _, h := range hist {
		add := mutate.Addendum{History: h}
		if !h.EmptyLayer {
			add.Layer = ls[li]
			li++
		}
		var err error
		if add.Layer == nil {
			cf, _ := img.ConfigFile()
			cf = cf.DeepCopy()
			cf.History = append(cf.History, h)
			img, err = mutate.ConfigFile(img, cf)
		} else {
			img, err = mutate.Append(img, add)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	res, err := rewrite.Image(context.Background(), img, rewrite.WithTempDir(t.TempDir()),
		rewrite.WithSquash(rewrite.SquashAuto), rewrite.WithFilter(func(rewrite.Recorder) tarfilter.Filter { return tarfilter.Keep() }))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	rewrite.CheckVerified(t, img, res, nil)
	b := res.Report.Images[0].Base
	if b == nil || b.Layers != 2 || !strings.Contains(b.Reason, "history") {
		t.Fatalf("base = %+v, want the 2 layers before the month-long pause", b)
	}
	layers, _ := res.Image.Layers()
	if len(layers) != 3 {
		t.Errorf("%d layers, want 2 base + 1 merged", len(layers))
	}
	cf, _ := res.Image.ConfigFile()
	// The merged layer's entry is its own, created when the newest merged
	// step was; the merged steps stay as empty_layer entries.
	last := cf.History[len(cf.History)-1]
	newest := day.Add(30*24*time.Hour + 2*time.Minute)
	if last.EmptyLayer || last.Comment != "layerslim" || !last.Created.Equal(newest) {
		t.Errorf("added history entry %+v, want a layer's, comment layerslim, created %s", last, newest)
	}
	for _, h := range cf.History[3:5] {
		if !h.EmptyLayer {
			t.Errorf("merged step %q is not empty_layer", h.CreatedBy)
		}
	}
}

// readAheadLayer is a layer whose blob is read from open.
type readAheadLayer struct {
	v1.Layer
	open func() (io.ReadCloser, error)
}

func (l readAheadLayer) Compressed() (io.ReadCloser, error) { return l.open() }

type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }

// The squash reads the blobs of the layers below the one it walks ahead:
// in place when they are local files, else into temporary files. Both give
// the same layer, and a blob longer than its descriptor fails without
// filling the disk or leaving files behind.
func TestSquashReadAhead(t *testing.T) {
	layers := [][]string{{"f:base=1", "f:gone=1"}, {"f:a=lower", "f:b=1", "d:d", "f:d/x=1"}, {"f:a=upper", "w:b", "f:c=1"}}
	var ls []v1.Layer
	for _, l := range layers {
		ls = append(ls, gzipLayer(t, layerTar(t, l...)))
	}
	rc, err := ls[1].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	lower, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	baseID, _ := ls[0].DiffID()
	finder := func(context.Context, v1.Platform, *v1.Manifest, *v1.ConfigFile) ([]v1.Hash, string, error) {
		return []v1.Hash{baseID}, "test base", nil
	}
	squash := func(open func() (io.ReadCloser, error)) ([]byte, string, error) {
		dir := t.TempDir()
		src := dockerImage(t, "amd64", ls[0], readAheadLayer{ls[1], open}, ls[2])
		res, err := rewrite.Image(context.Background(), src, rewrite.WithTempDir(dir), rewrite.WithJobs(2),
			rewrite.WithSquash(rewrite.SquashAuto), rewrite.WithBaseFinder(finder),
			rewrite.WithFilter(func(rewrite.Recorder) tarfilter.Filter { return tarfilter.Keep() }))
		if err != nil {
			return nil, dir, err
		}
		defer res.Close()
		out, _ := res.Image.Layers()
		if len(out) != 2 {
			t.Fatalf("%d layers out, want the base and the merged one", len(out))
		}
		return layerBytes(t, out[1]), dir, nil
	}

	inMemory, _, err := squash(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(lower)), nil })
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, lower, 0o644); err != nil {
		t.Fatal(err)
	}
	local, _, err := squash(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(inMemory, local) {
		t.Error("the merged layer differs when the lower blob is a local file")
	}

	_, dir, err := squash(func() (io.ReadCloser, error) {
		return io.NopCloser(io.MultiReader(bytes.NewReader(lower), zeros{})), nil
	})
	if !errors.Is(err, rewrite.ErrDigestMismatch) {
		t.Errorf("a blob that never ends: %v, want ErrDigestMismatch", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("files left in the temporary directory: %v", left)
	}
}
