package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/internal/testenv"
)

// A gzip bomb (1 GiB of zeros in about 1 MiB of blob) in an OCI layout
// stops every command at --max-layer-size, with exit status 1, a message
// naming the layer, the limit and the flag, and nothing written.
func TestMaxLayerSizeFlag(t *testing.T) {
	bomb := testenv.BlobLayer(testenv.GzipBomb(t, 1<<30), types.DockerLayer)
	digest, _ := bomb.Digest()
	img, err := mutate.AppendLayers(empty.Image, bomb)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "bomb")
	p, err := layout.Write(src, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "out")
	for _, args := range [][]string{
		{"rewrite", "oci:" + src, "oci:" + dst, "--max-layer-size", "32MiB", "--progress", "none"},
		{"recompress", "oci:" + src, "oci:" + dst, "--max-layer-size", "32MiB", "--progress", "none"},
		{"analyze", "oci:" + src, "--max-layer-size", "32MiB"},
		{"verify", "oci:" + src, "oci:" + src, "--max-layer-size", "32MiB"},
	} {
		t.Run(args[0], func(t *testing.T) {
			_, stderr, code := run(t, args...)
			if code != 1 {
				t.Errorf("exit status %d, want 1; stderr:\n%s", code, stderr)
			}
			for _, want := range []string{digest.String(), "uncompressed layer exceeds the limit of 32 MiB (--max-layer-size)"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not say %q:\n%s", want, stderr)
				}
			}
			if _, err := os.Stat(filepath.Join(dst, "index.json")); err == nil {
				t.Error("DST was written")
			}
		})
	}
}

func TestLimitFlagsUsage(t *testing.T) {
	for _, args := range [][]string{
		{"rewrite", "oci:" + sample + ":sample", "oci:/nonexistent/out", "--max-layer-size", "12K"},
		{"rewrite", "oci:" + sample + ":sample", "oci:/nonexistent/out", "--max-spool", "lots"},
		{"analyze", "oci:" + sample + ":sample", "--max-spool", "-1"},
		{"verify", "oci:" + sample + ":sample", "oci:" + sample + ":sample", "--max-layer-size", "1 furlong"},
	} {
		_, stderr, code := run(t, args...)
		if code != 2 || !strings.Contains(stderr, "--max-") {
			t.Errorf("%s: exit status %d, want 2 and a message naming the flag; stderr:\n%s", strings.Join(args, " "), code, stderr)
		}
	}
}

// --max-spool bounds the ELF files a rewrite splits; 0 lifts the limit.
func TestMaxSpoolFlag(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "out")
	_, stderr, code := run(t, "rewrite", "oci:"+sample+":sample", "oci:"+dst+":slim", "--max-spool", "1KiB", "--platform", "linux/amd64", "--progress", "none")
	if code != 1 || !strings.Contains(stderr, "exceeds the limit of 1 KiB (--max-spool)") || !strings.Contains(stderr, "app/hello: file of") {
		t.Errorf("exit status %d, want 1 naming the file and --max-spool; stderr:\n%s", code, stderr)
	}
	_, stderr, code = run(t, "rewrite", "oci:"+sample+":sample", "oci:"+dst+":slim", "--max-spool", "0", "--max-layer-size", "0", "--platform", "linux/amd64", "--progress", "none")
	if code != 0 {
		t.Errorf("no limits: exit status %d; stderr:\n%s", code, stderr)
	}
}
