package debugserve_test

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/layerslim/layerslim/internal/debugserve"
	"github.com/layerslim/layerslim/internal/testenv"
)

func get(t *testing.T, method, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// metric returns the value of a line of /metrics starting with name.
func metric(t *testing.T, url, name string) int64 {
	t.Helper()
	_, b := get(t, "GET", url+"/metrics")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\d+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s in /metrics:\n%s", name, b)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

func debugPath(id string) string {
	return "usr/lib/debug/.build-id/" + id[:2] + "/" + id[2:] + ".debug"
}

func TestHeadersHeadAndErrors(t *testing.T) {
	hello := buildProgram(t, "hello")
	dir := slimLayout(t, "", "app", hello)
	dbg := layoutFile(t, dir, "app-debug", debugPath(hello.buildID))
	_, hs := server(t, "", debugserve.Options{}, "oci:"+dir+":app-debug")
	base := hs.URL + "/buildid/" + hello.buildID

	resp, b := get(t, "HEAD", base+"/debuginfo")
	if resp.StatusCode != 200 || len(b) != 0 {
		t.Fatalf("HEAD: %s, %d bytes", resp.Status, len(b))
	}
	if got := resp.Header.Get("X-Debuginfod-Size"); got != fmt.Sprint(len(dbg)) {
		t.Errorf("HEAD X-Debuginfod-Size = %q, want %d", got, len(dbg))
	}
	if got := resp.Header.Get("Content-Length"); got != fmt.Sprint(len(dbg)) {
		t.Errorf("HEAD Content-Length = %q, want %d", got, len(dbg))
	}
	if metric(t, hs.URL, "layerslim_debuginfod_cache_misses_total") != 0 {
		t.Error("HEAD read the layer")
	}

	resp, b = get(t, "GET", hs.URL+"/buildid/"+strings.ToUpper(hello.buildID)+"/debuginfo")
	if resp.StatusCode != 200 || !bytes.Equal(b, dbg) {
		t.Fatalf("GET (upper-case build-id): %s, %d bytes", resp.Status, len(b))
	}
	for h, want := range map[string]string{
		"X-Debuginfod-Size":    fmt.Sprint(len(dbg)),
		"X-Debuginfod-File":    "/" + debugPath(hello.buildID),
		"X-Debuginfod-Archive": "oci:" + dir + ":app-debug",
		"Content-Type":         "application/octet-stream",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	resp, _ = get(t, "HEAD", base+"/executable")
	if resp.StatusCode != 200 || resp.Header.Get("X-Debuginfod-File") != "/"+hello.path {
		t.Errorf("HEAD executable: %s, X-Debuginfod-File %q", resp.Status, resp.Header.Get("X-Debuginfod-File"))
	}

	misses := metric(t, hs.URL, "layerslim_debuginfod_cache_misses_total")
	for _, c := range []struct {
		path string
		code int
	}{
		{"/buildid/" + hello.buildID + "/source/usr/src/hello.c", 404},
		{"/buildid/" + hello.buildID + "/source", 404},
		{"/buildid/" + strings.Repeat("ab", 20) + "/debuginfo", 404},
		{"/buildid/" + strings.Repeat("ab", 20) + "/executable", 404},
		{"/buildid/" + hello.buildID + "/section/.debug_info", 404},
		{"/buildid/" + hello.buildID + "/debuginfo/extra", 404},
		{"/buildid/xyz/debuginfo", 400},
		{"/buildid/abc/debuginfo", 400}, // odd length
		{"/buildid//debuginfo", 400},
		{"/buildid/" + strings.Repeat("a", 130) + "/debuginfo", 400},
		{"/nothing", 404},
		{"/", 404},
	} {
		resp, _ := get(t, "GET", hs.URL+c.path)
		if resp.StatusCode != c.code {
			t.Errorf("GET %s: %s, want %d", c.path, resp.Status, c.code)
		}
	}
	if got := metric(t, hs.URL, "layerslim_debuginfod_cache_misses_total"); got != misses {
		t.Errorf("bad and unknown requests read layers: misses %d → %d", misses, got)
	}
	resp, _ = get(t, "POST", base+"/debuginfo")
	if resp.StatusCode != 405 {
		t.Errorf("POST: %s, want 405", resp.Status)
	}
}

// No request reads a file outside the index, whatever its path segments:
// dot-dot, escaped slashes and NULs give 400 or 404.
func TestTraversal(t *testing.T) {
	hello := buildProgram(t, "hello")
	dir := slimLayout(t, "", "app", hello)
	cache := t.TempDir()
	_, hs := server(t, cache, debugserve.Options{}, "oci:"+dir)
	// Something a traversal would reach, in the cache directory and above it.
	secret := []byte("secret-bytes-not-to-serve")
	os.WriteFile(filepath.Join(cache, "secret"), secret, 0o644)
	id := hello.buildID
	var paths []string
	for _, bad := range []string{"..", "%2e%2e", "..%2f..%2f..%2fetc%2fpasswd", "%2e%2e%2fsecret", "..%5c..", "%00", "a%00b", ".", "%2f", "~root"} {
		paths = append(paths,
			"/"+bad+"/"+id+"/debuginfo",
			"/buildid/"+bad+"/debuginfo",
			"/buildid/"+id+"/"+bad,
			"/buildid/"+id+"/debuginfo/"+bad,
			"/buildid/"+id+"/source/"+bad+"/"+bad+"/etc/passwd",
			"/buildid/"+bad+"/"+bad+"/"+bad,
			"/buildid/"+id[:2]+"/"+bad+"/debuginfo",
		)
	}
	paths = append(paths, "/buildid/../../../../etc/passwd", "/buildid/"+id+"/../../secret", "/../secret", "/buildid/"+id+"/../"+id+"/debuginfo")
	for _, p := range paths {
		req, err := http.NewRequestWithContext(t.Context(), "GET", hs.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = p // sent as is, not cleaned by the client
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 && resp.StatusCode != 404 {
			t.Errorf("GET %s: %s, want 400 or 404", p, resp.Status)
		}
		if bytes.Contains(b, secret) || bytes.Contains(b, []byte("root:x:0:0")) || bytes.Contains(b, []byte("\x7fELF")) {
			t.Errorf("GET %s served a file", p)
		}
	}
}

// The build-id of a program in two images is served while either holds
// it; the executable of each image is that image's own.
func TestBuildIDInTwoImages(t *testing.T) {
	hello := buildProgram(t, "hello")
	other := buildProgram(t, "other")
	a := slimLayout(t, "", "a", hello)
	b := slimLayout(t, "", "b", hello, other)
	_, hs := server(t, "", debugserve.Options{}, "oci:"+a, "oci:"+b)
	for _, p := range []program{hello, other} {
		resp, body := get(t, "GET", hs.URL+"/buildid/"+p.buildID+"/debuginfo")
		if resp.StatusCode != 200 || len(body) == 0 {
			t.Errorf("%s debuginfo: %s", p.name, resp.Status)
		}
	}
	if n := metric(t, hs.URL, "layerslim_debuginfod_index_images"); n != 2 {
		t.Errorf("index_images = %d, want 2", n)
	}
	// Remove image a's blobs: hello is still served, from b.
	os.RemoveAll(filepath.Join(a, "blobs"))
	resp, body := get(t, "GET", hs.URL+"/buildid/"+hello.buildID+"/executable")
	if resp.StatusCode != 200 || !bytes.Equal(body, layoutFile(t, b, "b", hello.path)) {
		t.Errorf("executable with a's blobs gone: %s, %d bytes", resp.Status, len(body))
	}
}

// Fifty clients asking at once for the same and for different files all get
// the right bytes, and each file is read from its layer once.
func TestConcurrentClients(t *testing.T) {
	var progs []program
	for i := range 5 {
		progs = append(progs, buildProgram(t, fmt.Sprintf("p%d", i)))
	}
	dir := slimLayout(t, "", "app", progs...)
	want := map[string][]byte{}
	for _, p := range progs {
		want[p.buildID] = layoutFile(t, dir, "app-debug", debugPath(p.buildID))
	}
	_, hs := server(t, "", debugserve.Options{}, "oci:"+dir)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() {
			p := progs[i%len(progs)]
			resp, err := http.Get(hs.URL + "/buildid/" + p.buildID + "/debuginfo")
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 200 || !bytes.Equal(b, want[p.buildID]) {
				errs <- fmt.Errorf("client %d: %s, %d bytes, %v", i, resp.Status, len(b), err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := metric(t, hs.URL, "layerslim_debuginfod_layer_reads_total"); got != 2 {
		t.Errorf("layer reads = %d, want 2: one to index, one for all the files", got)
	}
	// A client may have its answer a moment before the handler counts it.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := metric(t, hs.URL, `layerslim_debuginfod_requests_total{kind="debuginfo",code="200"}`)
		if got == 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("requests 200 = %d, want 50", got)
			break
		}
	}
}

// A build-id whose images are all gone (deleted, their blobs collected)
// gets 404, not the 502 of a registry failing to answer.
func TestImageGone(t *testing.T) {
	hello := buildProgram(t, "hello")
	dir := slimLayout(t, "", "app", hello)
	_, hs := server(t, "", debugserve.Options{}, "oci:"+dir)
	os.RemoveAll(filepath.Join(dir, "blobs"))
	for _, k := range []string{"debuginfo", "executable"} {
		if resp, _ := get(t, "GET", hs.URL+"/buildid/"+hello.buildID+"/"+k); resp.StatusCode != 404 {
			t.Errorf("%s with its image gone: %s, want 404", k, resp.Status)
		}
	}
}

// A debug index is served for every platform; each platform's executable
// comes from that platform's image.
func TestDebugIndex(t *testing.T) {
	amd := buildProgram(t, "hello")
	arm := buildProgramWith(t, "aarch64-linux-gnu-gcc", "hello")
	img := func(p program, plat string) v1.Image {
		files := []testenv.File{testenv.Dir("usr/"), testenv.Dir("usr/bin/"), {Name: p.path, Mode: 0o755, Body: p.bin}}
		return testenv.Image(t, testenv.ImageSpec{Platform: testenv.Platform(t, plat), Layers: [][]byte{testenv.TarLayer(t, files)}, OCI: true})
	}
	idx := testenv.OCIMultiArchIndex(t, img(amd, "linux/amd64"), img(arm, "linux/arm64"))
	srcDir := filepath.Join(t.TempDir(), "src")
	lp, err := layout.Write(srcDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "src"})); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	runCLI(t, "rewrite", "oci:"+srcDir+":src", "oci:"+out+":app", "--progress", "none")
	_, hs := server(t, "", debugserve.Options{}, "oci:"+out+":app-debug")
	for _, c := range []struct {
		p    program
		plat string
	}{{amd, "linux/amd64"}, {arm, "linux/arm64"}} {
		resp, b := get(t, "GET", hs.URL+"/buildid/"+c.p.buildID+"/executable")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s", c.plat, resp.Status)
		}
		if m := elfMachine(t, b); m != map[string]string{"linux/amd64": "EM_X86_64", "linux/arm64": "EM_AARCH64"}[c.plat] {
			t.Errorf("%s executable is %s", c.plat, m)
		}
		if got := resp.Header.Get("X-Debuginfod-Archive"); got != "oci:"+out+":app-debug "+c.plat {
			t.Errorf("%s X-Debuginfod-Archive = %q", c.plat, got)
		}
		if resp, _ := get(t, "GET", hs.URL+"/buildid/"+c.p.buildID+"/debuginfo"); resp.StatusCode != 200 {
			t.Errorf("%s debuginfo: %s", c.plat, resp.Status)
		}
	}
}

func elfMachine(t *testing.T, b []byte) string {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return f.Machine.String()
}
