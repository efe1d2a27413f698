//go:build integration

package cli_test

import (
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/internal/testenv"
)

func uncompressedLayers(t *testing.T, img v1.Image) [][]byte {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		c, r, err := compress.Detect(rc)
		if err != nil {
			t.Fatal(err)
		}
		dr, err := compress.NewReader(c, r)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(dr)
		dr.Close()
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// Issue 11: the Python image whose new directories are marked opaque in
// three consecutive layers, merged by the default rewrite, runs in
// containerd with every package, and an applier that works in tar order
// reads the merge as the spec's applier reads the source.
func TestIntegrationPyFatWhiteoutsFirst(t *testing.T) {
	src := testenv.Repo(t) + ":pyfat"
	srcImg := testenv.PyFatImage(t, "amd64", 300)
	testenv.PushImage(t, srcImg, src)
	sock, ns := testenv.Containerd(t)
	before := testenv.CtrPullAndRun(t, sock, ns, src, true)
	for _, p := range []string{"numpy", "yaml", "requests", "jinja2"} {
		if !strings.Contains(before, "/usr/lib/python3/"+p+"/m299.py") {
			t.Fatalf("the source does not list %s:\n%s", p, before)
		}
	}

	dst := strings.TrimSuffix(src, ":pyfat") + ":pyfat-slim"
	_, stderr, code := run(t, "rewrite", src, dst, "--progress", "none", "--verify")
	if code != 0 {
		t.Fatalf("rewrite: exit %d\n%s", code, stderr)
	}
	slim := testenv.RemoteImage(t, dst)
	testenv.CheckImageBlobs(t, slim)
	out := uncompressedLayers(t, slim)
	if len(out) != 2 {
		t.Fatalf("%d output layers, want the base and one merge", len(out))
	}
	// /app is stripped (verify checked it); the rest is the same tree.
	want := testenv.SpecApply(t, uncompressedLayers(t, srcImg)...)
	naive, spec := testenv.NaiveApply(t, out...), testenv.SpecApply(t, out...)
	for _, fs := range []map[string]testenv.Node{want, naive, spec} {
		delete(fs, "app")
	}
	if diff := cmp.Diff(want, naive); diff != "" {
		t.Errorf("an in-order applier reads the slim image differently (-source +slim):\n%s", diff)
	}
	if diff := cmp.Diff(want, spec); diff != "" {
		t.Errorf("the slim image's filesystem differs (-source +slim):\n%s", diff)
	}
	after := testenv.CtrPullAndRun(t, sock, ns, dst, true)
	if after != before {
		t.Errorf("the slim image printed\n%s\nthe source\n%s", after, before)
	}
}
