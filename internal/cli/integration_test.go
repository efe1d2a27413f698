//go:build integration

package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/internal/testenv"
)

// gzipIndex is a two-platform Docker manifest list of gzip images with real
// content from this machine, pushed to the test registry.
func gzipIndex(t *testing.T) (ref string, idx v1.ImageIndex) {
	t.Helper()
	shared := testenv.RealContentLayer(t, "/usr/share/zoneinfo", "usr/share/zoneinfo", 3<<20)
	amd := testenv.GzipImage(t, testenv.Platform(t, "linux/amd64"), shared,
		testenv.RealContentLayer(t, "/usr/share/common-licenses", "usr/share/common-licenses", 1<<20),
		testenv.TarLayer(t, []testenv.File{testenv.Reg("etc/arch", "amd64\n")}))
	arm := testenv.GzipImage(t, testenv.Platform(t, "linux/arm64/v8"), shared,
		testenv.TarLayer(t, []testenv.File{testenv.Reg("etc/arch", "arm64\n")}))
	idx = testenv.MultiArchIndex(t, amd, arm)
	ref = testenv.Repo(t) + ":gz"
	testenv.PushIndex(t, idx, ref)
	return ref, idx
}

func platforms(t *testing.T, idx v1.ImageIndex) []string {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range im.Manifests {
		out = append(out, d.Platform.String())
	}
	return out
}

// diffIDs lists the diff_ids of every platform image, in index order.
func diffIDs(t *testing.T, idx v1.ImageIndex) [][]v1.Hash {
	t.Helper()
	im, _ := idx.IndexManifest()
	var out [][]v1.Hash
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cf.RootFS.DiffIDs)
	}
	return out
}

func checkLayerTypes(t *testing.T, idx v1.ImageIndex, want types.MediaType) {
	t.Helper()
	im, _ := idx.IndexManifest()
	for _, d := range im.Manifests {
		img, _ := idx.Image(d.Digest)
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range m.Layers {
			if l.MediaType != want {
				t.Errorf("%s: layer %s is %s, want %s", d.Platform, l.Digest, l.MediaType, want)
			}
			if l.MediaType == "application/vnd.docker.image.rootfs.diff.tar.zstd" {
				t.Errorf("wrote the Docker zstd layer type")
			}
		}
	}
}

func TestIntegrationRecompressRegistry(t *testing.T) {
	src, srcIdx := gzipIndex(t)
	dst := strings.TrimSuffix(src, ":gz") + ":zstd"
	stdout, stderr, code := run(t, "recompress", src, dst, "--progress", "plain")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	out := testenv.RemoteIndex(t, dst)
	if d, _ := out.Digest(); strings.TrimSpace(stdout) != d.String() {
		t.Errorf("stdout %q, registry has %s", stdout, d)
	}
	testenv.CheckIndexBlobs(t, out)
	if mt, _ := out.MediaType(); mt != types.OCIImageIndex {
		t.Errorf("index media type %s", mt)
	}
	checkLayerTypes(t, out, types.OCILayerZStd)
	if got, want := strings.Join(platforms(t, out), ","), strings.Join(platforms(t, srcIdx), ","); got != want {
		t.Errorf("platforms %s, want %s", got, want)
	}
	sd, od := diffIDs(t, srcIdx), diffIDs(t, out)
	for i := range sd {
		for j := range sd[i] {
			if sd[i][j] != od[i][j] {
				t.Errorf("platform %d layer %d: diff_id changed", i, j)
			}
		}
	}

	// Independent clients read it.
	raw := testenv.SkopeoInspect(t, "docker://"+dst)
	if raw["mediaType"] != string(types.OCIImageIndex) {
		t.Errorf("skopeo inspect --raw: %v", raw["mediaType"])
	}
	testenv.SkopeoCopy(t, "docker://"+dst, "oci:"+filepath.Join(t.TempDir(), "skopeo")+":x", "--all")
	sock, ns := testenv.Containerd(t)
	testenv.CtrPull(t, sock, ns, dst, true)

	// Again: every layer is zstd already, so nothing is re-encoded and the
	// blobs are mounted into the new repository.
	again := testenv.Repo(t) + ":again"
	_, stderr, code = run(t, "recompress", dst, again, "--progress", "plain")
	if code != 0 {
		t.Fatalf("second run: exit %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, "recompressed") || !strings.Contains(stderr, "reused") {
		t.Errorf("zstd → zstd re-encoded layers:\n%s", stderr)
	}
	testenv.CheckIndexBlobs(t, testenv.RemoteIndex(t, again))
}

func TestIntegrationRoundTrips(t *testing.T) {
	src, srcIdx := gzipIndex(t)
	dir := t.TempDir()
	repo := strings.TrimSuffix(src, ":gz")
	steps := [][]string{
		{"recompress", src, "oci:" + filepath.Join(dir, "oci") + ":zstd"},
		{"recompress", "oci:" + filepath.Join(dir, "oci") + ":zstd", "docker-archive:" + filepath.Join(dir, "arm.tar") + ":example/arm:1", "--platform", "linux/arm64", "--compression", "gzip"},
		{"recompress", "docker-archive:" + filepath.Join(dir, "arm.tar"), repo + ":arm-zstd"},
		{"recompress", "oci:" + filepath.Join(dir, "oci") + ":zstd", repo + ":back-gzip", "--compression", "gzip"},
	}
	for _, args := range steps {
		_, stderr, code := run(t, append(args, "--progress", "none")...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, stderr)
		}
	}
	arm := testenv.RemoteImage(t, repo+":arm-zstd")
	testenv.CheckImageBlobs(t, arm)
	cf, _ := arm.ConfigFile()
	want := diffIDs(t, srcIdx)[1]
	for i := range want {
		if cf.RootFS.DiffIDs[i] != want[i] {
			t.Errorf("after oci → docker-archive → registry, diff_id %d changed", i)
		}
	}
	back := testenv.RemoteIndex(t, repo+":back-gzip")
	testenv.CheckIndexBlobs(t, back)
	checkLayerTypes(t, back, types.OCILayer) // the OCI source's format, gzip
	testenv.SkopeoInspect(t, "docker://"+repo+":back-gzip")
}

func TestIntegrationBadInput(t *testing.T) {
	// A registry that does not answer.
	_, stderr, code := run(t, "recompress", "127.0.0.1:1/nothing:here", "oci:"+t.TempDir()+":x", "--progress", "none")
	if code != 1 || !strings.Contains(stderr, "127.0.0.1:1/nothing:here") {
		t.Errorf("unreachable registry: exit %d\n%s", code, stderr)
	}

	// A blob damaged in the registry's storage. Blobs are shared by every
	// repository of the registry, so the damaged one must be this test's
	// own.
	own := testenv.TarLayer(t, []testenv.File{testenv.Reg("unique", strings.Repeat(src0(t), 5000))})
	img := testenv.GzipImage(t, testenv.Platform(t, "linux/amd64"), testenv.TarLayer(t, []testenv.File{testenv.Reg("a", "a")}), own)
	src := testenv.Repo(t) + ":gz"
	testenv.PushIndex(t, testenv.MultiArchIndex(t, img), src)
	layers, _ := img.Layers()
	victim, _ := layers[1].Digest()
	data := filepath.Join(testenv.RegistryDir(t), "docker/registry/v2/blobs/sha256", victim.Hex[:2], victim.Hex, "data")
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	copy(b[len(b)/2:], "corrupt!")
	if err := os.WriteFile(data, b, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := strings.TrimSuffix(src, ":gz") + ":never"
	_, stderr, code = run(t, "recompress", src, dst, "--progress", "none")
	if code != 1 {
		t.Fatalf("corrupt blob: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, victim.String()) || !strings.Contains(stderr, "linux/amd64") || !strings.Contains(stderr, src) {
		t.Errorf("the error does not name image, platform and layer %s:\n%s", victim, stderr)
	}
	if _, err := remote.Head(testenv.ParseRef(t, dst)); err == nil {
		t.Error("a failed run wrote the tag")
	}
}

// The slim image of a runnable program still runs in containerd, and its
// debug image pulls too.
func TestIntegrationRewriteRunsInContainerd(t *testing.T) {
	src := testenv.Repo(t) + ":1"
	testenv.PushImage(t, testenv.RunnableImage(t, "amd64"), src)
	sock, ns := testenv.Containerd(t)
	before := testenv.CtrPullAndRun(t, sock, ns, src, true)

	dst := strings.TrimSuffix(src, ":1") + ":1-slim"
	report := filepath.Join(t.TempDir(), "r.json")
	_, stderr, code := run(t, "rewrite", src, dst, "--report", report, "--progress", "none")
	if code != 0 {
		t.Fatalf("rewrite: exit %d\n%s", code, stderr)
	}
	slim := testenv.RemoteImage(t, dst)
	testenv.CheckImageBlobs(t, slim)
	after := testenv.CtrPullAndRun(t, sock, ns, dst, true)
	if after != before {
		t.Errorf("the slim image printed\n%s\nthe source\n%s", after, before)
	}
	if !strings.Contains(stderr, "dropped") || !strings.Contains(stderr, "stripped") {
		t.Errorf("summary says nothing was dropped or stripped:\n%s", stderr)
	}
	testenv.CheckImageBlobs(t, testenv.RemoteImage(t, dst+"-debug"))
	testenv.CtrPull(t, sock, ns, dst+"-debug", true)
}

// src0 is text no other test or run puts in a layer.
func src0(t *testing.T) string {
	return t.Name() + " " + testenv.Repo(t) + "\n"
}
