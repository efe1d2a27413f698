package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/internal/cli"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/rewrite"
)

const sample = "../../testdata/sample"

// run executes a fresh command tree and returns stdout, stderr and the exit
// status main would use.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := cli.New()
	var out, errb bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	err := cmd.ExecuteContext(context.Background())
	if err != nil {
		errb.WriteString("layerslim: " + err.Error() + "\n")
	}
	return out.String(), errb.String(), cli.ExitCode(err)
}

// snapshot maps every file under dir to its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			m[p] = string(b)
		}
		return err
	})
	return m
}

func openIndex(t *testing.T, dir, tag string) v1.ImageIndex {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, _ := top.IndexManifest()
	for _, d := range im.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] == tag {
			idx, err := top.ImageIndex(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return idx
		}
	}
	t.Fatalf("no tag %s in %s", tag, dir)
	return nil
}

func TestRecompressSample(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	report := filepath.Join(t.TempDir(), "report.json")
	stdout, stderr, code := run(t, "recompress", "oci:"+sample+":sample", "oci:"+out+":slim", "--report", report, "--progress", "plain")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	idx := openIndex(t, out, "slim")
	d, _ := idx.Digest()
	if strings.TrimSpace(stdout) != d.String() {
		t.Errorf("stdout %q, want the written digest %s", stdout, d)
	}
	src := openIndex(t, sample, "sample")
	sim, _ := src.IndexManifest()
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != len(sim.Manifests) {
		t.Fatalf("%d platforms, want %d", len(im.Manifests), len(sim.Manifests))
	}
	for i, desc := range im.Manifests {
		if desc.Platform.String() != sim.Manifests[i].Platform.String() {
			t.Errorf("entry %d is %s, want %s", i, desc.Platform, sim.Manifests[i].Platform)
		}
		img, _ := idx.Image(desc.Digest)
		simg, _ := src.Image(sim.Manifests[i].Digest)
		m, _ := img.Manifest()
		for _, l := range m.Layers {
			if l.MediaType != types.OCILayerZStd {
				t.Errorf("layer %s has media type %s", l.Digest, l.MediaType)
			}
		}
		a, _ := img.RawConfigFile()
		b, _ := simg.RawConfigFile()
		if !bytes.Equal(a, b) {
			t.Errorf("%s: config changed by recompression", desc.Platform)
		}
	}
	var rep struct {
		Written string
		Report  rewrite.Report
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Written != d.String() || len(rep.Report.Images) != 2 || rep.Report.OutputBytes == 0 {
		t.Errorf("report: written %s, %d images, %d output bytes", rep.Written, len(rep.Report.Images), rep.Report.OutputBytes)
	}
	if !strings.Contains(stderr, "total: 2 image(s)") || !strings.Contains(stderr, "gzip→zstd") {
		t.Errorf("summary missing from stderr:\n%s", stderr)
	}
}

func TestRecompressDeterministic(t *testing.T) {
	var digests []string
	for _, jobs := range []string{"1", "2", "8"} {
		out := filepath.Join(t.TempDir(), "out")
		stdout, stderr, code := run(t, "recompress", "oci:"+sample+":sample", "oci:"+out+":x", "--jobs", jobs, "--progress", "none")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		digests = append(digests, strings.TrimSpace(stdout))
	}
	if digests[0] != digests[1] || digests[1] != digests[2] {
		t.Errorf("digests differ with --jobs: %v", digests)
	}
}

func TestRecompressUsageErrors(t *testing.T) {
	src := "oci:" + sample + ":sample"
	dst := "oci:" + filepath.Join(t.TempDir(), "out") + ":x"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"one argument", []string{"recompress", src}, "accepts 2 arg"},
		{"bad codec", []string{"recompress", src, dst, "--compression", "lz4"}, "--compression"},
		{"bad level", []string{"recompress", src, dst, "--level", "40"}, "--level"},
		{"bad platform", []string{"recompress", src, dst, "--platform", "amd64"}, "--platform"},
		{"bad jobs", []string{"recompress", src, dst, "--jobs", "0"}, "--jobs"},
		{"unknown flag", []string{"recompress", src, dst, "--nope"}, "unknown flag"},
		{"bad reference", []string{"recompress", "oci:", dst}, "SRC"},
		{"same image", []string{"recompress", src, src}, "--overwrite"},
		{"index into docker-archive", []string{"recompress", src, "docker-archive:" + filepath.Join(t.TempDir(), "x.tar")}, "--platform"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := run(t, tc.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2\n%s", code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr does not mention %q:\n%s", tc.want, stderr)
			}
		})
	}
}

func TestRecompressOverwriteKeepsSourceBlobs(t *testing.T) {
	dir := testenv.CopyDir(t, sample)
	before := snapshot(t, filepath.Join(dir, "blobs"))
	_, stderr, code := run(t, "recompress", "oci:"+dir+":sample", "oci:"+dir+":sample", "--overwrite", "--progress", "none")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	after := snapshot(t, filepath.Join(dir, "blobs"))
	for p, b := range before {
		if after[p] != b {
			t.Errorf("source blob %s was changed or removed", p)
		}
	}
	idx := openIndex(t, dir, "sample")
	im, _ := idx.IndexManifest()
	img, _ := idx.Image(im.Manifests[0].Digest)
	m, _ := img.Manifest()
	if m.Layers[0].MediaType != types.OCILayerZStd {
		t.Errorf("tag sample was not replaced by the zstd image")
	}
	p, _ := layout.FromPath(dir)
	topIdx, _ := p.ImageIndex()
	top, _ := topIdx.IndexManifest()
	if len(top.Manifests) != 1 {
		t.Errorf("index.json lists %d entries, want the one tag", len(top.Manifests))
	}
}

func TestRecompressDockerArchiveRoundTrip(t *testing.T) {
	tmp := t.TempDir()
	archive := filepath.Join(tmp, "app.tar")
	_, stderr, code := run(t, "recompress", "oci:"+sample+":sample", "docker-archive:"+archive+":example/app:1", "--platform", "linux/arm64", "--compression", "gzip", "--progress", "none")
	if code != 0 {
		t.Fatalf("to docker-archive: exit %d\n%s", code, stderr)
	}
	out := filepath.Join(tmp, "oci")
	stdout, stderr, code := run(t, "recompress", "docker-archive:"+archive, "oci:"+out+":back", "--progress", "none")
	if code != 0 {
		t.Fatalf("from docker-archive: exit %d\n%s", code, stderr)
	}
	p, _ := layout.FromPath(out)
	h, _ := v1.NewHash(strings.TrimSpace(stdout))
	img, err := p.Image(h)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	if cf.Architecture != "arm64" {
		t.Errorf("architecture %s, want arm64", cf.Architecture)
	}
	// The layers still hold the source's tar bytes.
	src := openIndex(t, sample, "sample")
	sim, _ := src.IndexManifest()
	simg, _ := src.Image(sim.Manifests[1].Digest)
	scf, _ := simg.ConfigFile()
	if len(scf.RootFS.DiffIDs) != len(cf.RootFS.DiffIDs) {
		t.Fatalf("%d diff_ids, want %d", len(cf.RootFS.DiffIDs), len(scf.RootFS.DiffIDs))
	}
	for i := range scf.RootFS.DiffIDs {
		if scf.RootFS.DiffIDs[i] != cf.RootFS.DiffIDs[i] {
			t.Errorf("diff_id %d changed: %s → %s", i, scf.RootFS.DiffIDs[i], cf.RootFS.DiffIDs[i])
		}
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		rc, _ := l.Compressed()
		c, _, err := compress.Detect(rc)
		rc.Close()
		if err != nil || c != compress.Zstd {
			t.Errorf("layer codec %s (%v), want zstd", c, err)
		}
	}
}

func TestRecompressCorruptLayer(t *testing.T) {
	dir := testenv.CopyDir(t, sample)
	// Damage the largest blob: the amd64 app layer.
	biggest := testenv.DamageLargestBlob(t, dir)
	out := filepath.Join(t.TempDir(), "out")
	_, stderr, code := run(t, "recompress", "oci:"+dir+":sample", "oci:"+out+":x", "--progress", "none")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	digest := "sha256:" + filepath.Base(biggest)
	if !strings.Contains(stderr, digest) || !strings.Contains(stderr, "linux/") || !strings.Contains(stderr, "oci:"+dir+":sample") {
		t.Errorf("error does not name image, platform and layer %s:\n%s", digest, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "index.json")); err == nil {
		p, _ := layout.FromPath(out)
		ii, _ := p.ImageIndex()
		im, _ := ii.IndexManifest()
		if len(im.Manifests) != 0 {
			t.Errorf("a failed run left a tag in %s", out)
		}
	}
}

func TestRecompressCorruptConfig(t *testing.T) {
	dir := testenv.CopyDir(t, sample)
	img := mustSampleImage(t, 0)
	cd, _ := img.ConfigName()
	p := filepath.Join(dir, "blobs/sha256", cd.Hex)
	b, _ := os.ReadFile(p)
	os.WriteFile(p, append(b, ' '), 0o644)
	_, stderr, code := run(t, "recompress", "oci:"+dir+":sample", "oci:"+filepath.Join(t.TempDir(), "out")+":x", "--progress", "none")
	if code != 1 || !strings.Contains(stderr, cd.String()) || !strings.Contains(stderr, "digest mismatch") {
		t.Errorf("a config that does not match its digest: exit %d\n%s", code, stderr)
	}
}
