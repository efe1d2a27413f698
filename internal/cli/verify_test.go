package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/layerslim/layerslim/verify"
)

const verifySample = "../../testdata/sample"

// runVerifyCmd runs a command tree that has verify, whether or not New
// registers it, and returns stdout, stderr and the exit status.
func runVerifyCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	root := New()
	if c, _, err := root.Find([]string{"verify"}); err != nil || c == root {
		root.AddCommand(newVerify())
	}
	var out, errb bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		errb.WriteString("layerslim: " + err.Error() + "\n")
	}
	return out.String(), errb.String(), ExitCode(err)
}

// has reports whether root has the named command.
func has(name string) bool {
	c, _, err := New().Find([]string{name})
	return err == nil && c.Name() == name
}

func TestVerifySampleAgainstItself(t *testing.T) {
	src := "oci:" + verifySample + ":sample"
	stdout, stderr, code := runVerifyCmd(t, "verify", src, src)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"linux/amd64: 89 paths compared, 0 dropped, 0 ELF files stripped, 0 violations",
		"linux/arm64/v8: 89 paths compared, 0 dropped, 0 ELF files stripped, 0 violations",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
}

func TestVerifyRecompressed(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	if _, stderr, code := runVerifyCmd(t, "recompress", "oci:"+verifySample+":sample", "oci:"+out+":x", "--progress", "none"); code != 0 {
		t.Fatalf("recompress: exit %d\n%s", code, stderr)
	}
	stdout, stderr, code := runVerifyCmd(t, "verify", "oci:"+verifySample+":sample", "oci:"+out+":x", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	var results []verify.Result
	if err := json.Unmarshal([]byte(stdout), &results); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if len(results) != 2 {
		t.Fatalf("%d results, want 2", len(results))
	}
	for _, r := range results {
		if r.Violations != 0 || len(r.Differences) != 0 || r.Paths == 0 {
			t.Errorf("%s: %d paths, %+v", r.Platform, r.Paths, r.Differences)
		}
	}
}

// writeTampered writes the amd64 image of the sample, with one more layer
// that adds a file and deletes etc/os-release, to an OCI layout as tag x.
func writeTampered(t *testing.T) string {
	t.Helper()
	p, err := layout.FromPath(verifySample)
	if err != nil {
		t.Fatal(err)
	}
	top, _ := p.ImageIndex()
	tm, _ := top.IndexManifest()
	idx, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "etc/.wh.os-release", Typeflag: tar.TypeReg})
	tw.WriteHeader(&tar.Header{Name: "etc/added", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2})
	tw.Write([]byte("x\n"))
	tw.Close()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	bad, err := mutate.AppendLayers(img, l)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "bad")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(bad, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "x"})); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestVerifyViolations(t *testing.T) {
	bad := writeTampered(t)
	// SRC is an index, DST the amd64 image alone.
	stdout, stderr, code := runVerifyCmd(t, "verify", "oci:"+verifySample+":sample", "oci:"+bad+":x")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "linux/amd64: 90 paths compared, 0 dropped, 0 ELF files stripped, 2 violations") {
		t.Errorf("summary missing:\n%s", stdout)
	}
	for _, want := range []string{"etc/added", "added", "etc/os-release", "missing"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "2 violations") {
		t.Errorf("error does not count the violations:\n%s", stderr)
	}

	// Allowed by the options: the path is dropped, the added file stays a violation.
	stdout, _, code = runVerifyCmd(t, "verify", "oci:"+verifySample+":sample", "oci:"+bad+":x", "--drop-path", "etc/os-release", "--show-allowed")
	if code != 1 || !strings.Contains(stdout, "1 dropped") || !strings.Contains(stdout, "1 violations") {
		t.Errorf("exit %d:\n%s", code, stdout)
	}
	if !strings.Contains(stdout, "dropped") || !strings.Contains(stdout, "(drop-path)") {
		t.Errorf("--show-allowed does not list the dropped path:\n%s", stdout)
	}
}

func TestVerifyRewriteOutput(t *testing.T) {
	if !has("rewrite") {
		t.Skip("no rewrite command yet")
	}
	src := "oci:" + verifySample + ":sample"
	out := "oci:" + filepath.Join(t.TempDir(), "slim") + ":slim"
	if _, stderr, code := runVerifyCmd(t, "rewrite", src, out, "--progress", "none"); code != 0 {
		t.Fatalf("rewrite: exit %d\n%s", code, stderr)
	}
	stdout, stderr, code := runVerifyCmd(t, "verify", src, out, "--json")
	if code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", code, stdout, stderr)
	}
	var results []verify.Result
	if err := json.Unmarshal([]byte(stdout), &results); err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Count(verify.Dropped) == 0 {
			t.Errorf("%s: nothing dropped by the default presets", r.Platform)
		}
	}
	// Without the presets, the dropped paths are violations.
	if _, _, code := runVerifyCmd(t, "verify", src, out, "--drop", "none"); code != 1 {
		t.Errorf("--drop none: exit %d, want 1", code)
	}
}

func TestVerifyUsageErrors(t *testing.T) {
	src := "oci:" + verifySample + ":sample"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"one argument", []string{"verify", src}, "accepts 2 arg"},
		{"bad platform", []string{"verify", src, src, "--platform", "amd64"}, "--platform"},
		{"bad jobs", []string{"verify", src, src, "--jobs", "0"}, "--jobs"},
		{"unknown preset", []string{"verify", src, src, "--drop", "nope"}, "--drop"},
		{"unknown flag", []string{"verify", src, src, "--nope"}, "unknown flag"},
		{"bad reference", []string{"verify", "oci:", src}, "SRC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runVerifyCmd(t, tc.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2\n%s", code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr does not mention %q:\n%s", tc.want, stderr)
			}
		})
	}
}

func TestVerifyImageAgainstIndex(t *testing.T) {
	bad := writeTampered(t)
	_, stderr, code := runVerifyCmd(t, "verify", "oci:"+bad+":x", "oci:"+verifySample+":sample")
	if code != 1 || !strings.Contains(stderr, "is an index but SRC") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
}
