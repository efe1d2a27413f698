package cli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/rewrite"
)

// The sample (two platforms) written with --add-compression: an index of
// four, gzip entries first, zstd entries annotated; rewrite --verify
// accepts it; a second run on the output gives the same digest, not eight
// entries.
func TestAddCompressionSample(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	stdout, stderr, code := run(t, "rewrite", "oci:"+sample+":sample", "oci:"+out+":dual", "--add-compression", "gzip", "--verify", "--progress", "none")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	idx := openIndex(t, out, "dual")
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 4 {
		t.Fatalf("%d entries, want 4", len(im.Manifests))
	}
	for i, d := range im.Manifests {
		zstd := d.Annotations[rewrite.AnnotationZstdVariant] == "true"
		if zstd != (i >= 2) {
			t.Errorf("entry %d (%s): zstd annotation %v", i, d.Platform, zstd)
		}
	}
	if d, _ := idx.Digest(); strings.TrimSpace(stdout) != d.String() {
		t.Errorf("stdout %q, want %s", stdout, d)
	}
	dbg := openIndex(t, out, "dual-debug")
	dim, _ := dbg.IndexManifest()
	if len(dim.Manifests) != 4 || dim.Manifests[3].Annotations[rewrite.AnnotationZstdVariant] != "true" {
		t.Errorf("debug index: %d entries", len(dim.Manifests))
	}
	// verify accepts what rewrite wrote.
	if _, stderr, code := run(t, "verify", "oci:"+sample+":sample", "oci:"+out+":dual"); code != 0 {
		t.Errorf("verify: exit %d\n%s", code, stderr)
	}
	again, stderr, code := run(t, "recompress", "oci:"+out+":dual", "oci:"+out+":again", "--add-compression", "gzip", "--progress", "none")
	if code != 0 {
		t.Fatalf("second run: exit %d\n%s", code, stderr)
	}
	aim, _ := openIndex(t, out, "again").IndexManifest()
	if len(aim.Manifests) != 4 {
		t.Errorf("a second run gave %d entries, want 4 (%s)", len(aim.Manifests), again)
	}
}

// --compression zstd:chunked writes zstd layers carrying the three
// zstd:chunked annotations; verify accepts the result.
func TestZstdChunkedSample(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	if _, stderr, code := run(t, "rewrite", "oci:"+sample+":sample", "oci:"+out+":c", "--compression", "zstd:chunked", "--progress", "none"); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	idx := openIndex(t, out, "c")
	im, _ := idx.IndexManifest()
	for _, d := range im.Manifests {
		img, _ := idx.Image(d.Digest)
		m, _ := img.Manifest()
		for _, l := range m.Layers {
			if l.Annotations["io.github.containers.zstd-chunked.manifest-checksum"] == "" || l.MediaType != "application/vnd.oci.image.layer.v1.tar+zstd" {
				t.Errorf("%s: layer %s: %s %v", d.Platform, l.Digest, l.MediaType, l.Annotations)
			}
		}
	}
	if _, stderr, code := run(t, "verify", "oci:"+sample+":sample", "oci:"+out+":c"); code != 0 {
		t.Errorf("verify: exit %d\n%s", code, stderr)
	}
}

func TestAddCompressionUsageErrors(t *testing.T) {
	src := "oci:" + sample + ":sample"
	dst := "oci:" + filepath.Join(t.TempDir(), "out") + ":x"
	archive := "docker-archive:" + filepath.Join(t.TempDir(), "x.tar")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"same codec", []string{"recompress", src, dst, "--add-compression", "zstd"}, []string{"--add-compression", "compression itself"}},
		{"same codec gzip", []string{"rewrite", src, dst, "--compression", "gzip", "--add-compression", "gzip"}, []string{"--add-compression"}},
		{"unknown codec", []string{"recompress", src, dst, "--add-compression", "lz4"}, []string{"--add-compression", "gzip"}},
		{"none", []string{"recompress", src, dst, "--add-compression", "none"}, []string{"--add-compression"}},
		{"none primary", []string{"recompress", src, dst, "--compression", "none", "--add-compression", "zstd"}, []string{"--add-compression"}},
		{"docker-archive", []string{"recompress", src, archive, "--add-compression", "gzip", "--platform", "linux/amd64"}, []string{"docker-archive", "--platform", "oci:"}},
		{"docker-archive debug", []string{"rewrite", src, archive, "--add-compression", "gzip"}, []string{"docker-archive", "--platform", "oci:"}},
		{"chunked level", []string{"recompress", src, dst, "--compression", "zstd:chunked", "--level", "23"}, []string{"--level", "1 to 22"}},
		{"chunked typo", []string{"recompress", src, dst, "--compression", "zstd:chunk"}, []string{"--compression", "zstd:chunked"}},
		{"chunked added", []string{"recompress", src, dst, "--add-compression", "zstd:chunked", "--compression", "gzip"}, []string{"--add-compression"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := run(t, tc.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2\n%s", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// A batch default add-compression changes the options text, so an image
// written without it is not skipped, and one written with it is.
func TestAddCompressionBatchSkip(t *testing.T) {
	host := memRegistryHost(t)
	pushTo(t, host+"/app:1", testenv.Reg("app", "hello"))
	plan := writeFile(t, "command: recompress\nimages:\n  - src: "+host+"/app:1\n    dst: "+host+"/app:1-x\n")
	if _, stderr, code := run(t, "batch", plan, "--cache-dir", ""); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	_, stderr, code := run(t, "batch", plan, "--cache-dir", "", "--set", "add-compression=gzip")
	if code != 0 || !strings.Contains(stderr, "1 done") {
		t.Fatalf("with --add-compression the plain output was not rewritten: exit %d\n%s", code, stderr)
	}
	ref, _ := name.ParseReference(host + "/app:1-x")
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 {
		t.Errorf("%d entries, want 2", len(im.Manifests))
	}
	_, stderr, code = run(t, "batch", plan, "--cache-dir", "", "--set", "add-compression=gzip")
	if code != 0 || !strings.Contains(stderr, "1 skipped") {
		t.Errorf("a rerun with the same options was not skipped: exit %d\n%s", code, stderr)
	}
}

// A dual index recompressed to zstd alone keeps one entry per platform, and
// verify accepts it against the dual source.
func TestAddCompressionDualToSingle(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	if _, stderr, code := run(t, "recompress", "oci:"+sample+":sample", "oci:"+out+":dual", "--add-compression", "gzip", "--progress", "none"); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if _, stderr, code := run(t, "recompress", "oci:"+out+":dual", "oci:"+out+":zstd", "--progress", "none"); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	im, _ := openIndex(t, out, "zstd").IndexManifest()
	if len(im.Manifests) != 2 {
		t.Errorf("%d entries, want 2", len(im.Manifests))
	}
	for _, d := range im.Manifests {
		if d.Annotations[rewrite.AnnotationZstdVariant] != "" {
			t.Errorf("%s keeps the zstd variant annotation in a single-compression index", d.Platform)
		}
	}
	if _, stderr, code := run(t, "verify", "oci:"+out+":dual", "oci:"+out+":zstd"); code != 0 {
		t.Errorf("verify: exit %d\n%s", code, stderr)
	}
}
