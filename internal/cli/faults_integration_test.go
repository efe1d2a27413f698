//go:build integration

package cli_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/layerslim/layerslim/internal/testenv"
)

// faultSource pushes a three-layer gzip image with real content to a new
// repository of the test registry and returns the repository (host/path).
func faultSource(t *testing.T, extra ...testenv.File) string {
	t.Helper()
	img := testenv.GzipImage(t, testenv.Platform(t, "linux/amd64"),
		testenv.RealContentLayer(t, "/usr/share/zoneinfo", "usr/share/zoneinfo", 2<<20),
		testenv.RealContentLayer(t, "/usr/share/common-licenses", "usr/share/common-licenses", 1<<20),
		testenv.TarLayer(t, append([]testenv.File{testenv.Reg("etc/motd", "faults\n")}, extra...)))
	repo := testenv.Repo(t)
	testenv.PushImage(t, img, repo+":src")
	return repo
}

// viaProxy is repo (on the test registry) as reached through p.
func viaProxy(t *testing.T, p *testenv.FaultProxy, repo string) string {
	t.Helper()
	_, path, _ := strings.Cut(repo, "/")
	return p.Host + "/" + path
}

func fault(method, path string, set func(f *testenv.Fault)) *testenv.Fault {
	f := testenv.NewFault(method, path)
	set(f)
	return f
}

const (
	blobGet   = `/blobs/sha256:`
	manifests = `/manifests/`
	uploads   = `/blobs/uploads/`
)

// TestIntegrationRegistryFaults: recompress registry → registry through a
// proxy that answers 5xx and 429 (with Retry-After), resets connections in
// the middle of blob downloads and uploads, stalls and slows answers. The
// run succeeds with the digest of a clean run, every fault was met, and at
// no moment did a tag point at missing content.
func TestIntegrationRegistryFaults(t *testing.T) {
	repo := faultSource(t)
	// A clean run, to another repository: the run through the faults must
	// upload every blob again.
	clean, stderr, code := run(t, "recompress", repo+":src", testenv.Repo(t)+":clean", "--progress", "none")
	if code != 0 {
		t.Fatalf("clean run: exit %d\n%s", code, stderr)
	}

	p := testenv.NewFaultProxy(t, testenv.Registry(t))
	faults := []*testenv.Fault{
		fault("GET", manifests, func(f *testenv.Fault) { f.Status, f.Times = 503, 2 }),
		fault("GET", blobGet, func(f *testenv.Fault) { f.Delay, f.Times = 300*time.Millisecond, 1 }),
		fault("GET", blobGet, func(f *testenv.Fault) { f.Status, f.RetryAfter, f.Times = 429, "1", 1 }),
		fault("GET", blobGet, func(f *testenv.Fault) { f.ResetAfter, f.Times = 32<<10, 2 }),
		fault("GET", blobGet, func(f *testenv.Fault) { f.StallAfter, f.Times = 16<<10, 1 }),
		fault("HEAD", blobGet, func(f *testenv.Fault) { f.Status, f.Times = 502, 1 }),
		fault("POST", uploads, func(f *testenv.Fault) { f.Status, f.Times = 503, 2 }),
		fault("PATCH", uploads, func(f *testenv.Fault) { f.ResetRequestAfter, f.Times = 200<<10, 2 }),
		fault("PATCH", uploads, func(f *testenv.Fault) { f.Throttle, f.Times = 4<<20, 1 }),
		fault("PUT", uploads, func(f *testenv.Fault) { f.Status, f.Times = 500, 1 }),
		fault("PUT", manifests, func(f *testenv.Fault) { f.Status, f.RetryAfter, f.Times = 429, "1", 1 }),
	}
	p.Add(faults...)
	watch := testenv.WatchTags(t, repo)
	pr := viaProxy(t, p, repo)
	out, stderr, code := run(t, "recompress", pr+":src", pr+":out", "--progress", "none",
		"--retries", "4", "--retry-delay", "50ms", "--stall-timeout", "1s")
	seen := watch.Stop()
	if code != 0 {
		t.Fatalf("exit %d through the faults\n%s", code, stderr)
	}
	if out != clean {
		t.Errorf("digest through the faults %s, clean run %s", strings.TrimSpace(out), strings.TrimSpace(clean))
	}
	for _, f := range faults {
		if f.Injected() == 0 {
			t.Errorf("never injected: %s", f)
		}
	}
	if seen["out"] != strings.TrimSpace(out) {
		t.Errorf("the tag watch saw out as %q, want %s (%d polls)", seen["out"], strings.TrimSpace(out), watch.Checks())
	}
	testenv.CheckImageBlobs(t, testenv.RemoteImage(t, repo+":out"))
}

// TestIntegrationRegistryFaultsGiveUp: a fault that does not pass ends the
// run with exit 1 and one message naming the request, the answer and the
// attempts, and no tag is written.
func TestIntegrationRegistryFaultsGiveUp(t *testing.T) {
	repo := faultSource(t)
	p := testenv.NewFaultProxy(t, testenv.Registry(t))
	pr := viaProxy(t, p, repo)
	for _, tc := range []struct {
		name  string
		fault *testenv.Fault
		want  []string
	}{
		{"blob reads answer 503", fault("GET", blobGet, func(f *testenv.Fault) { f.Status = 503 }),
			[]string{"rewriting " + pr + ":src", `Get "http://` + p.Host + "/v2/", "/blobs/sha256:", `": 503 Service Unavailable (gave up after 3 attempts over`}},
		{"uploads answer 503", fault("POST", uploads, func(f *testenv.Fault) { f.Status = 503 }),
			[]string{"writing " + pr + ":out", "POST http://" + p.Host + "/v2/", "503 Service Unavailable; gave up after 3 attempts"}},
		{"blob reads stall", fault("GET", blobGet, func(f *testenv.Fault) { f.StallAfter = 1000 }),
			[]string{"rewriting " + pr + ":src", "GET http://" + p.Host + "/v2/", "no progress from the registry for 500ms", "gave up after 3 attempts"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.Clear()
			p.Add(tc.fault)
			watch := testenv.WatchTags(t, repo)
			_, stderr, code := run(t, "recompress", pr+":src", pr+":out", "--progress", "none",
				"--retries", "2", "--retry-delay", "20ms", "--stall-timeout", "500ms")
			seen := watch.Stop()
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if _, ok := seen["out"]; ok {
				t.Errorf("a failed run wrote the tag")
			}
			t.Logf("message: %s", strings.TrimSpace(stderr))
		})
	}
}

// startKillable runs the layerslim binary with args, its output in buffers.
func startKillable(t *testing.T, bin string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, &out
}

func runBinary(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("layerslim %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// TestIntegrationKilledPushResumes: a rewrite registry → registry killed
// with SIGKILL in the middle of its (slowed) push leaves no tag; run again,
// it finishes with the digests of an uninterrupted run, and no tag ever
// pointed at missing content.
func TestIntegrationKilledPushResumes(t *testing.T) {
	bin := testenv.BuildLayerslim(t)
	// An ELF file, so that there is a debug image to write before the tag.
	repo := faultSource(t, testenv.File{Name: "usr/bin/hello", Mode: 0o755, Body: testenv.HelloBinary(t, "amd64")})
	p := testenv.NewFaultProxy(t, testenv.Registry(t))
	pr := viaProxy(t, p, repo)
	args := func(dst string) []string {
		return []string{"rewrite", pr + ":src", dst, "--progress", "none", "--retry-delay", "50ms"}
	}
	// The uninterrupted run goes to another repository, so that the killed
	// one has every blob to upload.
	other := testenv.Repo(t)
	want := runBinary(t, bin, args(other+":clean")...)
	wantDebug := testenv.RemoteImage(t, other+":clean-debug")

	// Slow uploads; kill once the registry committed a first blob.
	p.Add(fault("PATCH", uploads, func(f *testenv.Fault) { f.Throttle = 512 << 10 }))
	committed := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var first string // the digest of the first blob committed
	p.OnDone(func(r *http.Request, status int) {
		if r.Method == "PUT" && strings.Contains(r.URL.Path, "/blobs/uploads/") && status == http.StatusCreated {
			once.Do(func() {
				mu.Lock()
				first = r.URL.Query().Get("digest")
				mu.Unlock()
				close(committed)
			})
		}
	})
	watch := testenv.WatchTags(t, repo)
	watch.Requires("out", "out-debug")
	cmd, out := startKillable(t, bin, args(pr+":out")...)
	select {
	case <-committed:
	case <-time.After(60 * time.Second):
		t.Fatalf("no blob upload completed in 60s\n%s", out)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if tagExists(t, repo+":out") {
		t.Fatalf("a run killed in the middle of its push left the tag out")
	}
	t.Logf("killed after the first blob (%s) was committed; the debug tag exists: %v", first, tagExists(t, repo+":out-debug"))

	// The rerun uploads what is missing only.
	p.Clear()
	var again []string
	p.OnDone(func(r *http.Request, status int) {
		if r.Method == "PUT" && strings.Contains(r.URL.Path, "/blobs/uploads/") && status == http.StatusCreated {
			mu.Lock()
			again = append(again, r.URL.Query().Get("digest"))
			mu.Unlock()
		}
	})
	got := runBinary(t, bin, args(pr+":out")...)
	mu.Lock()
	for _, d := range again {
		if d == first {
			t.Errorf("the rerun uploaded %s again", d)
		}
	}
	mu.Unlock()
	seen := watch.Stop()
	if got != want {
		t.Errorf("after the kill the rerun wrote %s, an uninterrupted run %s", got, want)
	}
	if seen["out"] != want {
		t.Errorf("the tag watch saw out as %q, want %s", seen["out"], want)
	}
	gotDebug := testenv.RemoteImage(t, repo+":out-debug")
	if d1, d2 := mustDigest(t, gotDebug), mustDigest(t, wantDebug); d1 != d2 {
		t.Errorf("debug image %s, uninterrupted %s", d1, d2)
	}
	testenv.CheckImageBlobs(t, testenv.RemoteImage(t, repo+":out"))
}

func tagExists(t *testing.T, ref string) bool {
	t.Helper()
	_, err := remote.Head(testenv.ParseRef(t, ref))
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return false
	}
	if err != nil {
		t.Fatalf("HEAD %s: %v", ref, err)
	}
	return true
}

func mustDigest(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestIntegrationKilledLayoutWrite: a recompress into the OCI layout that
// holds its source, killed with SIGKILL while it writes blobs, leaves a
// valid layout with the source's files byte-identical; run again, it
// finishes with the digest of an uninterrupted run.
func TestIntegrationKilledLayoutWrite(t *testing.T) {
	bin := testenv.BuildLayerslim(t)
	// Four incompressible uncompressed layers of 12 MiB: the write takes
	// long enough (each blob is synced) to be killed in the middle.
	var layers [][]byte
	for i := range 4 {
		body := make([]byte, 12<<20)
		rand.Read(body)
		layers = append(layers, testenv.TarLayer(t, []testenv.File{{Name: fmt.Sprintf("data/%d.bin", i), Body: body}}))
	}
	img := testenv.Image(t, testenv.ImageSpec{Layers: layers, Compression: testenv.Uncompressed, OCI: true})
	dir := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "src"})); err != nil {
		t.Fatal(err)
	}
	source := testenv.HashTree(t, dir)

	cleanDir := filepath.Join(t.TempDir(), "clean")
	want := runBinary(t, bin, "recompress", "oci:"+dir+":src", "oci:"+cleanDir+":out", "--progress", "none", "--jobs", "1")

	cmd, out := startKillable(t, bin, "recompress", "oci:"+dir+":src", "oci:"+dir+":out", "--progress", "none", "--jobs", "1")
	blobs := filepath.Join(dir, "blobs", "sha256")
	deadline := time.Now().Add(60 * time.Second)
	for !writing(blobs) {
		if time.Now().After(deadline) {
			t.Fatalf("no blob write began in 60s\n%s", out)
		}
		time.Sleep(time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	testenv.CheckLayout(t, dir)
	if names := refNames(t, dir); strings.Join(names, ",") != "src" {
		t.Fatalf("after the kill index.json names %v, want [src] (killed too late?)", names)
	}
	checkSourceKept(t, dir, source)

	got := runBinary(t, bin, "recompress", "oci:"+dir+":src", "oci:"+dir+":out", "--progress", "none", "--jobs", "1")
	if got != want {
		t.Errorf("after the kill the rerun wrote %s, an uninterrupted run %s", got, want)
	}
	testenv.CheckLayout(t, dir)
	if names := refNames(t, dir); strings.Join(names, ",") != "src,out" {
		t.Errorf("index.json names %v, want [src out]", names)
	}
	checkSourceKept(t, dir, source)
	testenv.SkopeoInspect(t, "oci:"+dir+":out")
}

// writing reports whether a blob is being written into dir: a temporary
// file of layerslim's is there.
func writing(dir string) bool {
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".layerslim-") {
			return true
		}
	}
	return false
}

// checkSourceKept: every file of the source layout but index.json is
// byte-identical, and index.json still lists the source unchanged.
func checkSourceKept(t *testing.T, dir string, before map[string]string) {
	t.Helper()
	after := testenv.HashTree(t, dir)
	for p, sum := range before {
		if p != "index.json" && after[p] != sum {
			t.Errorf("source file %s changed", p)
		}
	}
	src := openIndexEntry(t, dir, "src")
	testenv.CheckImageBlobs(t, src)
}

func refNames(t *testing.T, dir string) []string {
	t.Helper()
	ii, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range im.Manifests {
		names = append(names, d.Annotations["org.opencontainers.image.ref.name"])
	}
	return names
}

func openIndexEntry(t *testing.T, dir, name string) v1.Image {
	t.Helper()
	ii, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := ii.IndexManifest()
	for _, d := range im.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] == name {
			img, err := ii.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
	}
	t.Fatalf("no %s in %s", name, dir)
	return nil
}
