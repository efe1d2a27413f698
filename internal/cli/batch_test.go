package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/layerslim/layerslim/internal/cli"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/manifest"
)

// memRegistryHost serves ggcr's in-memory registry on 127.0.0.1 (plain HTTP).
func memRegistryHost(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func pushTo(t *testing.T, ref string, files ...testenv.File) {
	t.Helper()
	img := testenv.GzipImage(t, testenv.Platform(t, "linux/amd64"),
		testenv.TarLayer(t, []testenv.File{testenv.Dir("usr"), testenv.Reg("usr/base", strings.Repeat("base\n", 1000))}),
		testenv.TarLayer(t, files))
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

func runStdin(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := cli.New()
	var out, errb bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	err := cmd.ExecuteContext(context.Background())
	if err != nil {
		errb.WriteString("layerslim: " + err.Error() + "\n")
	}
	return out.String(), errb.String(), cli.ExitCode(err)
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBatchUsageErrors(t *testing.T) {
	host := memRegistryHost(t)
	pushTo(t, host+"/a:1", testenv.Reg("a", "a"))
	images := "images:\n  - src: " + host + "/a:1\n    dst: " + host + "/a:1-slim\n"
	for _, tc := range []struct {
		name, plan string
		args       []string
		want       string
	}{
		{"misspelt flag", "defaults:\n  sqush: none\n" + images, nil, "plan.yaml:2: sqush is not an option of rewrite"},
		{"recompress has no squash", "command: recompress\ndefaults:\n  squash: none\n" + images, nil, "plan.yaml:3: squash is not an option of recompress"},
		{"bad value", "defaults:\n  compression: brotli\n" + images, nil, "--compression"},
		{"bad bool", "defaults:\n  force: maybe\n" + images, nil, "plan.yaml:2: force:"},
		{"report per image", "defaults:\n  report: x.json\n" + images, nil, "plan.yaml:2: report cannot be set per image"},
		{"same image", "images:\n  - src: " + host + "/a:1\n    dst: " + host + "/a:1\n", nil, "plan.yaml:2: DST " + host + "/a:1 names the same image as SRC"},
		{"unknown key", "images:\n  - src: a\n    dst: b\n    option: {}\n", nil, `plan.yaml:4: unknown key "option"`},
		{"shard", images, []string{"--shard", "2/2"}, "--shard: shard \"2/2\": want I/N"},
		{"set", images, []string{"--set", "squash"}, `--set "squash": want NAME=VALUE`},
		{"set unknown", images, []string{"--set", "colour=blue"}, "--set: colour is not an option of rewrite"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := writeFile(t, tc.plan)
			_, stderr, code := run(t, append([]string{"batch", plan, "--cache-dir", ""}, tc.args...)...)
			stderr = strings.ReplaceAll(stderr, filepath.Dir(plan)+"/", "")
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want 2 with %q:\n%s", code, tc.want, stderr)
			}
		})
	}
}

func TestBatchStdin(t *testing.T) {
	host := memRegistryHost(t)
	for _, tag := range []string{"1", "2"} {
		pushTo(t, host+"/app:"+tag, testenv.Dir("app"), testenv.Reg("app/"+tag, tag))
	}
	stdin := "# two images\n" + host + "/app:1\n" + host + "/app:2 " + host + "/other:2-mine\n"
	report := filepath.Join(t.TempDir(), "r.json")
	args := []string{"batch", "-", "--dst-template", "{{.Registry}}/zstd/{{.Path}}:{{.Tag}}", "--command", "recompress",
		"--report", report, "--cache-dir", t.TempDir(), "--jobs", "2"}
	stdout, stderr, code := runStdin(t, stdin, args...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, dst := range []string{host + "/zstd/app:1", host + "/other:2-mine"} {
		desc, err := remote.Get(testenv.ParseRef(t, dst))
		if err != nil {
			t.Fatalf("%s: %v", dst, err)
		}
		if !strings.Contains(stdout, "done "+dst+"@"+desc.Digest.String()) {
			t.Errorf("stdout does not list %s@%s:\n%s", dst, desc.Digest, stdout)
		}
		if !strings.Contains(string(desc.Manifest), manifest.AnnotationSourceDigest) {
			t.Errorf("%s has no provenance annotations", dst)
		}
	}
	// A rerun skips both, without reading a layer.
	stdout, stderr, code = runStdin(t, stdin, args...)
	if code != 0 || strings.Count(stdout, "skipped ") != 2 || !strings.Contains(stderr, "0 done, 2 skipped, 0 failed") {
		t.Errorf("rerun: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// Options that change the output make it run again.
	_, stderr, code = runStdin(t, stdin, append(args, "--set", "level=5")...)
	if code != 0 || !strings.Contains(stderr, "2 done, 0 skipped") {
		t.Errorf("new options: exit %d\n%s", code, stderr)
	}
	// rewrite with --verify, one image at a time: the second image's base
	// comes from the memo, and verify reads it back from the registry.
	_, stderr, code = runStdin(t, stdin, "batch", "-", "--dst-template", "{{.Registry}}/slim/{{.Path}}:{{.Tag}}", "--jobs", "1",
		"--set", "strip=none", "--set", "verify=true", "--cache-dir", "")
	if code != 0 || !strings.Contains(stderr, "2 done, 0 skipped") || !strings.Contains(stderr, "1 from the memo") {
		t.Errorf("rewrite --verify: exit %d\n%s", code, stderr)
	}
}

// The --signed policy applies per image: skip reports a signed source as
// skipped and writes nothing, fail fails it alone.
func TestBatchSignedPolicy(t *testing.T) {
	newRepo := sigMemRepos(t)
	signedRepo, _ := sigSource(t, newRepo)
	plain := newRepo(t)
	pushTo(t, plain+":v1", testenv.Reg("a", "a"))
	stdin := signedRepo + ":v1\n" + plain + ":v1\n"
	args := []string{"batch", "-", "--dst-template", "{{.Repository}}:{{.Tag}}-slim", "--cache-dir", ""}

	stdout, stderr, code := runStdin(t, stdin, append(args, "--set", "signed=skip")...)
	if code != 0 || !strings.Contains(stderr, "1 done, 1 skipped") || !strings.Contains(stdout, "done "+plain+":v1-slim@") {
		t.Errorf("signed=skip: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if sigExists(t, signedRepo+":v1-slim") {
		t.Error("signed=skip wrote the signed image")
	}
	_, stderr, code = runStdin(t, stdin, append(args, "--set", "signed=fail")...)
	if code != 1 || !strings.Contains(stderr, "0 done, 1 skipped, 1 failed") || !strings.Contains(stderr, "--signed=fail") {
		t.Errorf("signed=fail: exit %d\n%s", code, stderr)
	}
}

// batch --jobs 4 writing four images into one new OCI layout keeps all four
// tags: the writers take turns with index.json.
func TestBatchJobsOneLayout(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	p, err := layout.Write(src, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	var stdin strings.Builder
	dst := filepath.Join(t.TempDir(), "dst")
	tags := []string{"1", "2", "3", "4", "5", "6"}
	for _, tag := range tags {
		img := testenv.GzipImage(t, testenv.Platform(t, "linux/amd64"),
			testenv.TarLayer(t, []testenv.File{testenv.Dir("app"), testenv.Reg("app/"+tag, strings.Repeat(tag, 5000))}))
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
			t.Fatal(err)
		}
		stdin.WriteString("oci:" + src + ":" + tag + " oci:" + dst + ":" + tag + "\n")
	}
	_, stderr, code := runStdin(t, stdin.String(), "batch", "-", "--command", "recompress", "--jobs", "4", "--cache-dir", t.TempDir())
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	ii, err := layout.ImageIndexFromPath(dst)
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range im.Manifests {
		got = append(got, d.Annotations["org.opencontainers.image.ref.name"])
	}
	sort.Strings(got)
	if fmt.Sprint(got) != fmt.Sprint(tags) {
		t.Errorf("index.json holds tags %v, want %v\n%s", got, tags, stderr)
	}
}
