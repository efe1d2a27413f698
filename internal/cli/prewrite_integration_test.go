//go:build integration

package cli_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/layerslim/layerslim/internal/testenv"
)

// TestIntegrationLayersUploadedAsTheyAreReady: a layer is uploaded to the
// destination as soon as it is rewritten, while the others are still being
// processed; a failure later leaves that blob in the repository (the rerun
// reuses it) and no tag.
func TestIntegrationLayersUploadedAsTheyAreReady(t *testing.T) {
	big := testenv.RealContentLayer(t, "/usr/share/zoneinfo", "usr/share/zoneinfo", 3<<20)
	small := testenv.TarLayer(t, []testenv.File{testenv.Reg("etc/app", "unique "+t.Name()+" "+time.Now().String()+"\n")})
	img := testenv.GzipImage(t, testenv.Platform(t, "linux/amd64"), big, small)
	repo := testenv.Repo(t)
	testenv.PushImage(t, img, repo+":src")

	// A run that succeeds tells the output digest of the big layer.
	report := filepath.Join(t.TempDir(), "report.json")
	if _, stderr, code := run(t, "recompress", repo+":src", repo+"-ok:zst", "--jobs", "1", "--report", report); code != 0 {
		t.Fatalf("recompress: exit %d\n%s", code, stderr)
	}
	var rep struct {
		Report struct {
			Images []struct {
				Layers []struct {
					Source, Output struct{ Digest string }
				}
			}
		}
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	bigSrc, _ := layers[0].Digest()
	smallSrc, _ := layers[1].Digest()
	var bigOut string
	for _, l := range rep.Report.Images[0].Layers {
		if l.Source.Digest == bigSrc.String() {
			bigOut = l.Output.Digest
		}
	}
	if bigOut == "" || bigOut == bigSrc.String() {
		t.Fatalf("no recompressed output for the big layer in %s", b)
	}

	// Damage the small layer (this test's own) in the registry's storage:
	// with --jobs 1 the big layer is done, and uploaded, before it fails.
	data := filepath.Join(testenv.RegistryDir(t), "docker/registry/v2/blobs/sha256", smallSrc.Hex[:2], smallSrc.Hex, "data")
	orig, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), orig...)
	copy(bad[len(bad)/2:], "corrupt!")
	if err := os.WriteFile(data, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := repo + "-early:zst"
	_, stderr, code := run(t, "recompress", repo+":src", dst, "--jobs", "1", "--retries", "0")
	if code != 1 || !strings.Contains(stderr, smallSrc.String()) {
		t.Fatalf("damaged layer: exit %d, want 1 with a message naming %s\n%s", code, smallSrc, stderr)
	}
	dstRepo, err := name.NewRepository(repo+"-early", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(dstRepo.Tag("zst")); err == nil {
		t.Errorf("%s exists after a failed run", dst)
	}
	resp, err := http.Head("http://" + testenv.Registry(t) + "/v2/" + dstRepo.RepositoryStr() + "/blobs/" + bigOut)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the big layer's output %s is not in %s after the failed run (HEAD: %s): it was not uploaded as soon as it was ready", bigOut, dstRepo, resp.Status)
	}

	// Repaired, the rerun finishes with the digest of the run that succeeded.
	if err := os.WriteFile(data, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := run(t, "recompress", repo+":src", dst, "--jobs", "1")
	if code != 0 {
		t.Fatalf("rerun: exit %d\n%s", code, stderr)
	}
	okDesc, err := remote.Head(mustTag(t, repo+"-ok:zst"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out); got != okDesc.Digest.String() {
		t.Errorf("rerun wrote %s, the first run %s", got, okDesc.Digest)
	}
}

func mustTag(t *testing.T, s string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}
