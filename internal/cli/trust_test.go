package cli_test

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/internal/testenv"
)

// handLayout is an OCI layout of one image tagged v1, edited by hand.
type handLayout struct {
	t   *testing.T
	dir string
}

func newHandLayout(t *testing.T) *handLayout {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img := testenv.Image(t, testenv.ImageSpec{OCI: true, Layers: [][]byte{
		testenv.TarLayer(t, []testenv.File{testenv.Dir("app"), testenv.Reg("app/a", strings.Repeat("a", 5000))}),
		testenv.TarLayer(t, []testenv.File{testenv.Reg("app/b", strings.Repeat("b", 5000))}),
	}})
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	return &handLayout{t, dir}
}

func (l *handLayout) read(p string, v any) {
	l.t.Helper()
	b, err := os.ReadFile(filepath.Join(l.dir, p))
	if err != nil {
		l.t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		l.t.Fatal(err)
	}
}

func (l *handLayout) blobFile(h v1.Hash) string {
	return filepath.Join(l.dir, "blobs", h.Algorithm, h.Hex)
}

func (l *handLayout) index() *v1.IndexManifest {
	var im v1.IndexManifest
	l.read("index.json", &im)
	return &im
}

func (l *handLayout) manifest() *v1.Manifest {
	var m v1.Manifest
	l.read(filepath.Join("blobs", "sha256", l.index().Manifests[0].Digest.Hex), &m)
	return &m
}

func (l *handLayout) writeJSON(p string, v any) []byte {
	l.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.dir, p), b, 0o644); err != nil {
		l.t.Fatal(err)
	}
	return b
}

// setManifest stores m as a new blob and points index.json at it.
func (l *handLayout) setManifest(m *v1.Manifest) {
	l.t.Helper()
	b, _ := json.Marshal(m)
	sum := sha256.Sum256(b)
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	l.writeJSON(filepath.Join("blobs", "sha256", h.Hex), m)
	im := l.index()
	im.Manifests[0].Digest, im.Manifests[0].Size = h, int64(len(b))
	l.writeJSON("index.json", im)
}

// toSHA512 renames the first layer's blob to its sha512 digest.
func (l *handLayout) toSHA512() v1.Hash {
	l.t.Helper()
	m := l.manifest()
	old := m.Layers[0].Digest
	b, err := os.ReadFile(l.blobFile(old))
	if err != nil {
		l.t.Fatal(err)
	}
	sum := sha512.Sum512(b)
	h := v1.Hash{Algorithm: "sha512", Hex: hex.EncodeToString(sum[:])}
	os.MkdirAll(filepath.Dir(l.blobFile(h)), 0o755)
	if err := os.WriteFile(l.blobFile(h), b, 0o644); err != nil {
		l.t.Fatal(err)
	}
	os.Remove(l.blobFile(old))
	m.Layers[0].Digest = h
	l.setManifest(m)
	return h
}

// retime changes the gzip header's MTIME of blob h in place: the blob
// still decompresses to the same tar (same diff_id, same size), only its
// digest tells.
func (l *handLayout) retime(h v1.Hash) {
	l.t.Helper()
	f, err := os.OpenFile(l.blobFile(h), os.O_RDWR, 0)
	if err != nil {
		l.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{1, 2, 3, 4}, 4); err != nil {
		l.t.Fatal(err)
	}
}

// Nothing is used that was not verified: a layer under sha512 whose bytes do
// not match, a manifest or a config edited in place, are refused by every
// command that reads them, as the same tampering under sha256 is.
func TestTamperedBlobsRefused(t *testing.T) {
	commands := map[string]func(src string) []string{
		"rewrite":    func(src string) []string { return []string{"rewrite", src, "oci:" + t.TempDir() + ":out"} },
		"recompress": func(src string) []string { return []string{"recompress", src, "oci:" + t.TempDir() + ":out"} },
		"recompress gzip": func(src string) []string {
			return []string{"recompress", src, "oci:" + t.TempDir() + ":out", "--compression", "gzip"}
		},
		"analyze": func(src string) []string { return []string{"analyze", src} },
		"verify":  func(src string) []string { return []string{"verify", src, src} },
	}
	for _, tc := range []struct {
		name   string
		tamper func(l *handLayout)
		want   string
	}{
		{"sha512 layer", func(l *handLayout) { l.retime(l.toSHA512()) }, "digest mismatch"},
		{"sha256 layer", func(l *handLayout) { l.retime(l.manifest().Layers[0].Digest) }, "digest mismatch"},
		{"manifest edited in place", func(l *handLayout) {
			im := l.index()
			m := l.manifest()
			m.Annotations = map[string]string{"edited": "yes"}
			b := l.writeJSON(filepath.Join("blobs", "sha256", im.Manifests[0].Digest.Hex), m)
			im.Manifests[0].Size = int64(len(b))
			l.writeJSON("index.json", im)
		}, "digest mismatch"},
		{"config edited in place", func(l *handLayout) {
			m := l.manifest()
			var cf map[string]any
			l.read(filepath.Join("blobs", "sha256", m.Config.Digest.Hex), &cf)
			cf["author"] = "someone else"
			b := l.writeJSON(filepath.Join("blobs", "sha256", m.Config.Digest.Hex), cf)
			m.Config.Size = int64(len(b))
			l.setManifest(m)
		}, "digest mismatch"},
		{"unknown algorithm", func(l *handLayout) {
			m := l.manifest()
			m.Layers[0].Digest = v1.Hash{Algorithm: "sha384", Hex: strings.Repeat("ab", 48)}
			l.setManifest(m)
		}, "sha384"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newHandLayout(t)
			// Untouched, every command accepts the layout.
			if _, stderr, code := run(t, "analyze", "oci:"+l.dir+":v1"); code != 0 {
				t.Fatalf("analyze of the untouched layout: exit %d\n%s", code, stderr)
			}
			tc.tamper(l)
			for name, args := range commands {
				_, stderr, code := run(t, args("oci:"+l.dir+":v1")...)
				if code != 1 || !strings.Contains(stderr, tc.want) {
					t.Errorf("%s: exit %d, want 1 with %q:\n%s", name, code, tc.want, stderr)
				}
			}
		})
	}
}

// The same image under two spellings is caught before any work, with exit
// 2, and nothing is written: a registry by IP and by name, a layout read
// without the tag its only entry has, --debug-to naming DST, one
// docker-archive file for DST and its debug image.
func TestSameImageTwoSpellings(t *testing.T) {
	host := memRegistryHost(t) // 127.0.0.1:PORT
	_, port, _ := strings.Cut(host, ":")
	pushTo(t, host+"/app:v1", testenv.Reg("app", "app"))
	before := remoteDigest(t, host+"/app:v1")
	l := newHandLayout(t)
	layoutBefore := testenv.HashTree(t, l.dir)
	out := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"registry by IP and by name", []string{"rewrite", host + "/app:v1", "localhost:" + port + "/app:v1"}, "names the same image as SRC"},
		{"recompress, registry by IP and by name", []string{"recompress", host + "/app:v1", "localhost:" + port + "/app:v1"}, "names the same image as SRC"},
		{"layout without the tag of its only entry", []string{"rewrite", "oci:" + l.dir, "oci:" + l.dir + ":v1"}, "names the same image as SRC"},
		{"debug image under the same tag", []string{"rewrite", "oci:" + l.dir, "oci:" + l.dir + ":v1-slim", "--debug-suffix", ""}, "--debug-suffix"},
		{"--debug-to naming DST", []string{"rewrite", "oci:" + l.dir + ":v1", "oci:" + out + ":slim", "--debug-to", "oci:" + out + ":slim"}, "would be replaced by DST"},
		{"--debug-to naming DST in a registry", []string{"rewrite", host + "/app:v1", host + "/app:slim", "--debug-to", "localhost:" + port + "/app:slim"}, "would be replaced by DST"},
		{"one docker-archive for both", []string{"rewrite", "oci:" + l.dir + ":v1", "docker-archive:" + out + "/x.tar", "--debug-to", "docker-archive:" + out + "/./x.tar:dbg:1"}, "would be replaced by DST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := run(t, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want 2 with %q:\n%s", code, tc.want, stderr)
			}
		})
	}
	if after := remoteDigest(t, host+"/app:v1"); after != before {
		t.Errorf("the source tag moved from %s to %s", before, after)
	}
	if d := cmp.Diff(layoutBefore, testenv.HashTree(t, l.dir)); d != "" {
		t.Errorf("the source layout changed (-before +after):\n%s", d)
	}
	if des, _ := os.ReadDir(out); len(des) != 0 {
		t.Errorf("something was written to %s: %v", out, des)
	}
	// --overwrite lets the layout's entry be replaced.
	if _, stderr, code := run(t, "rewrite", "oci:"+l.dir, "oci:"+l.dir+":v1", "--overwrite"); code != 0 {
		t.Errorf("--overwrite: exit %d\n%s", code, stderr)
	}
}

func remoteDigest(t *testing.T, ref string) v1.Hash {
	t.Helper()
	desc, err := remote.Get(testenv.ParseRef(t, ref))
	if err != nil {
		t.Fatal(err)
	}
	return desc.Digest
}

// Every DST mistake that is already there is found before the work starts:
// nothing is rewritten, nothing written (not even DST when only the report
// or the debug image is wrong).
func TestDestinationCheckedFirst(t *testing.T) {
	l := newHandLayout(t)
	src := "oci:" + l.dir + ":v1"
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	dangling := filepath.Join(tmp, "dangling")
	os.Symlink(filepath.Join(tmp, "nowhere"), dangling)
	corrupt := filepath.Join(tmp, "corrupt")
	os.MkdirAll(filepath.Join(corrupt, "blobs"), 0o755)
	os.WriteFile(filepath.Join(corrupt, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	os.WriteFile(filepath.Join(corrupt, "index.json"), []byte(`{"schemaVersion":2,"manifests":[`), 0o644)
	v2 := filepath.Join(tmp, "v2")
	os.MkdirAll(filepath.Join(v2, "blobs"), 0o755)
	os.WriteFile(filepath.Join(v2, "oci-layout"), []byte(`{"imageLayoutVersion":"2.0.0"}`), 0o644)
	os.WriteFile(filepath.Join(v2, "index.json"), []byte(`{"schemaVersion":2,"manifests":[]}`), 0o644)
	fresh := filepath.Join(tmp, "fresh") // must stay absent
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"DST is a file", []string{"rewrite", src, "oci:" + file + ":x"}, 1, file + " is not a directory"},
		{"DST is a dangling symlink", []string{"rewrite", src, "oci:" + dangling + ":x"}, 1, "is a symbolic link to " + filepath.Join(tmp, "nowhere") + ", which does not exist"},
		{"DST index.json is corrupt", []string{"recompress", src, "oci:" + corrupt + ":x"}, 1, "parsing " + filepath.Join(corrupt, "index.json")},
		{"DST layout version 2.0.0", []string{"rewrite", src, "oci:" + v2 + ":x"}, 1, `imageLayoutVersion "2.0.0" is not supported`},
		{"DST archive in a missing directory", []string{"rewrite", src, "docker-archive:" + filepath.Join(tmp, "missing", "x.tar")}, 1, "cannot write in " + filepath.Join(tmp, "missing")},
		{"debug image into a file", []string{"rewrite", src, "oci:" + fresh + ":x", "--debug-to", "oci:" + file + ":dbg"}, 1, file + " is not a directory"},
		{"debug suffix makes a bad tag", []string{"rewrite", src, "oci:" + fresh + ":x", "--debug-suffix", " x"}, 2, `--debug-suffix " x"`},
		{"report in a missing directory", []string{"rewrite", src, "oci:" + fresh + ":x", "--report", filepath.Join(tmp, "missing", "r.json")}, 1, "--report: cannot write in " + filepath.Join(tmp, "missing")},
		{"report is a directory", []string{"recompress", src, "oci:" + fresh + ":x", "--report", tmp}, 1, "--report: " + tmp + " is not a regular file (a directory)"},
		{"batch report in a missing directory", []string{"batch", "-", "--report", filepath.Join(tmp, "missing", "r.json"), "--cache-dir", t.TempDir()}, 1, "--report: cannot write in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args[0] != "batch" {
				args = append(args, "--progress", "plain") // a line per layer started
			}
			_, stderr, code := runStdin(t, src+" oci:"+fresh+":x\n", args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, tc.code, tc.want, stderr)
			}
			if strings.Contains(stderr, "started (") || strings.Contains(stderr, "[1/1]") {
				t.Errorf("the work was done before the mistake was found:\n%s", stderr)
			}
			if _, err := os.Lstat(fresh); err == nil {
				t.Errorf("%s was written", fresh)
			}
		})
	}
}

// An index that lists an index is refused by every command with one
// message, before any work; the inner index, named by its digest, is
// processed on its own.
func TestNestedIndexRefused(t *testing.T) {
	plat := func(s string) []byte {
		return testenv.TarLayer(t, []testenv.File{testenv.Dir("app"), testenv.Reg("app/"+strings.ReplaceAll(s, "/", "-"), s)})
	}
	inner := testenv.OCIMultiArchIndex(t,
		testenv.GzipImage(t, testenv.Platform(t, "linux/amd64"), plat("amd64")),
		testenv.GzipImage(t, testenv.Platform(t, "linux/arm64"), plat("arm64")))
	img := testenv.Image(t, testenv.ImageSpec{OCI: true, Platform: testenv.Platform(t, "linux/s390x"), Layers: [][]byte{plat("s390x")}})
	outer := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: inner, Descriptor: v1.Descriptor{MediaType: types.OCIImageIndex}},
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}})
	dir := filepath.Join(t.TempDir(), "src")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(outer, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	innerDigest, _ := inner.Digest()
	src := "oci:" + dir + ":v1"
	out := t.TempDir()
	want := "the index lists an index (" + innerDigest.String() + "): nested indexes are not supported; name that index by its digest"
	for _, args := range [][]string{
		{"rewrite", src, "oci:" + out + ":x"},
		{"rewrite", src, "oci:" + out + ":x", "--platform", "linux/amd64"},
		{"recompress", src, "oci:" + out + ":x"},
		{"analyze", src},
		{"verify", src, src},
		{"batch", "-", "--cache-dir", t.TempDir()},
	} {
		_, stderr, code := runStdin(t, src+" oci:"+out+":x\n", args...)
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("%v: exit %d, want 1 with %q:\n%s", args, code, want, stderr)
		}
	}
	if des, _ := os.ReadDir(out); len(des) != 0 {
		t.Errorf("something was written to %s: %v", out, des)
	}
	if _, stderr, code := run(t, "rewrite", "oci:"+dir+"@"+innerDigest.String(), "oci:"+out+":inner"); code != 0 {
		t.Errorf("the inner index by digest: exit %d\n%s", code, stderr)
	}
}

// A gate that cannot fire is a usage error: NaN compares false with every
// waste.
func TestMaxWasteNaN(t *testing.T) {
	l := newHandLayout(t)
	for _, v := range []string{"NaN%", "nan", "NaN", "+Inf", "-0.5"} {
		_, stderr, code := run(t, "analyze", "oci:"+l.dir+":v1", "--max-waste", v)
		if code != 2 || !strings.Contains(stderr, "--max-waste") {
			t.Errorf("--max-waste %s: exit %d, want 2\n%s", v, code, stderr)
		}
	}
}

// An index with two images of one platform, written to a docker-archive
// with that --platform, says that the platform names two images.
func TestArchiveFromIndexTwoImagesOnePlatform(t *testing.T) {
	a := testenv.GzipImage(t, testenv.Platform(t, "linux/amd64"), testenv.TarLayer(t, []testenv.File{testenv.Reg("a", "a")}))
	b := testenv.GzipImage(t, testenv.Platform(t, "linux/amd64"), testenv.TarLayer(t, []testenv.File{testenv.Reg("b", "b")}))
	idx := testenv.OCIMultiArchIndex(t, a, b)
	dir := filepath.Join(t.TempDir(), "src")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := run(t, "recompress", "oci:"+dir+":v1", "docker-archive:"+filepath.Join(t.TempDir(), "x.tar"), "--platform", "linux/amd64")
	if code != 2 || !strings.Contains(stderr, "--platform selects 2 images of SRC") {
		t.Errorf("exit %d:\n%s", code, stderr)
	}
}

// A foreign layer that a copy left out of a layout source is found before
// any work when DST is a layout or an archive, naming the layer (it used to
// fail at the very end, inside "writing the debug image").
func TestMissingForeignLayerFoundFirst(t *testing.T) {
	l := newHandLayout(t)
	m := l.manifest()
	foreign := m.Layers[0].Digest
	os.Remove(l.blobFile(foreign))
	m.Layers[0].MediaType = types.DockerForeignLayer
	m.Layers[0].URLs = []string{"https://example.com/layer"}
	l.setManifest(m)
	for _, c := range []string{"rewrite", "recompress"} {
		out := filepath.Join(t.TempDir(), "out")
		_, stderr, code := run(t, c, "oci:"+l.dir+":v1", "oci:"+out+":x", "--progress", "plain")
		want := "layer " + foreign.String() + ": a foreign layer (" + string(types.DockerForeignLayer) + ") whose blob is not in oci:" + l.dir + ":v1"
		if code != 1 || !strings.Contains(stderr, want) || strings.Contains(stderr, "started (") {
			t.Errorf("%s: exit %d, want 1 with %q before any layer:\n%s", c, code, want, stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: %s was written", c, out)
		}
	}
}

// An error names each layer once, also inside a merge (it used to say
// "layer sha256:X: layer sha256:X: …" when the merge's top layer failed).
func TestErrorsNameTheLayerOnce(t *testing.T) {
	for _, layer := range []int{0, 1} {
		l := newHandLayout(t)
		d := l.manifest().Layers[layer].Digest
		l.retime(d)
		_, stderr, code := run(t, "rewrite", "oci:"+l.dir+":v1", "oci:"+t.TempDir()+":x", "--squash", "all")
		if code != 1 || strings.Count(stderr, "layer "+d.String()) != 1 {
			t.Errorf("layer %d: exit %d, want 1 naming layer %s once:\n%s", layer, code, d, stderr)
		}
	}
}

// A BuildKit attestation of an image the rewrite replaces is left out of
// the output index, with a warning and a report entry: it would point at an
// image the index no longer holds.
func TestStaleAttestationDropped(t *testing.T) {
	img := testenv.GzipImage(t, testenv.Platform(t, "linux/amd64"), testenv.TarLayer(t, []testenv.File{testenv.Reg("a", strings.Repeat("a", 4000))}))
	imgDigest, _ := img.Digest()
	att := testenv.Image(t, testenv.ImageSpec{OCI: true, Platform: v1.Platform{OS: "unknown", Architecture: "unknown"},
		Layers: [][]byte{testenv.TarLayer(t, []testenv.File{testenv.Reg("provenance.json", "{}")})}})
	attDigest, _ := att.Digest()
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{MediaType: types.DockerManifestSchema2, Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": imgDigest.String()}}})
	dir := filepath.Join(t.TempDir(), "src")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	report := filepath.Join(t.TempDir(), "r.json")
	_, stderr, code := run(t, "rewrite", "oci:"+dir+":v1", "oci:"+out+":x", "--report", report)
	if code != 0 || !strings.Contains(stderr, "warning: attestation "+attDigest.String()+" dropped: it describes the source image "+imgDigest.String()) {
		t.Fatalf("exit %d, want 0 with a warning:\n%s", code, stderr)
	}
	got := openIndex(t, out, "x")
	im, _ := got.IndexManifest()
	for _, d := range im.Manifests {
		if d.Digest == attDigest || d.Annotations["vnd.docker.reference.digest"] != "" {
			t.Errorf("the output index still lists the attestation %s", d.Digest)
		}
	}
	b, _ := os.ReadFile(report)
	if !strings.Contains(string(b), `"droppedAttestations"`) || !strings.Contains(string(b), attDigest.String()) {
		t.Errorf("the report does not list the dropped attestation:\n%s", b)
	}
}

// A destination template that gives the source itself is refused as a
// literal src == dst is (exit 2), not left out without a word.
func TestBatchTemplateSrcEqualsDst(t *testing.T) {
	host := memRegistryHost(t)
	pushTo(t, host+"/a:1", testenv.Reg("a", "a"))
	plan := writeFile(t, "images:\n  - repository: "+host+"/a\n    tags: [\"1\"]\n    dst: \"{{.Repository}}:{{.Tag}}\"\n")
	_, stderr, code := run(t, "batch", plan, "--cache-dir", t.TempDir())
	if code != 2 || !strings.Contains(stderr, "names the same image as SRC") {
		t.Errorf("exit %d, want 2:\n%s", code, stderr)
	}
}
