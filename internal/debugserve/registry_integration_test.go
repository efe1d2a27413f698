//go:build integration

package debugserve_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/layerslim/layerslim/internal/debugserve"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/manifest"
)

// serve runs srv on a loopback port until the test ends and returns its URL.
func serve(t *testing.T, srv *debugserve.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// waitFor polls url until it answers 200, for up to 30s.
func waitFor(t *testing.T, url string) []byte {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, b := get(t, "GET", url)
		if resp.StatusCode == 200 {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: still %s", url, resp.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newServer(t *testing.T, o debugserve.Options, refs ...string) *debugserve.Server {
	t.Helper()
	var srcs []debugserve.Source
	for _, r := range refs {
		s, err := debugserve.ParseSource(r, true)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, s)
	}
	o.CacheDir = t.TempDir()
	o.Registry.Insecure = true
	srv, err := debugserve.New(srcs, o)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// A repository is listed again every --refresh: a debug image pushed
// after the start is served without a restart, and tags without the debug
// suffix are not indexed. debuginfod-find gets both kinds of file.
func TestRegistryRepository(t *testing.T) {
	hello, other := buildProgram(t, "hello"), buildProgram(t, "other")
	repo := testenv.Repo(t)
	slim := pushSlim(t, repo+":one", hello)
	srv := newServer(t, debugserve.Options{Refresh: 200 * time.Millisecond}, repo)
	url := serve(t, srv)

	waitFor(t, url+"/buildid/"+hello.buildID+"/debuginfo")
	if resp, _ := get(t, "GET", url+"/buildid/"+other.buildID+"/debuginfo"); resp.StatusCode != 404 {
		t.Fatalf("other before its push: %s", resp.Status)
	}
	pushSlim(t, repo+":two", other)
	dbg := waitFor(t, url+"/buildid/"+other.buildID+"/debuginfo")
	want := imageFile(t, testenv.RemoteImage(t, repo+":two-slim-debug"), debugPath(other.buildID))
	if !bytes.Equal(dbg, want) {
		t.Error("other's debuginfo differs from its debug image's file")
	}
	path, err := debuginfodFind(t, url, "executable", hello.buildID)
	if err != nil {
		t.Fatalf("debuginfod-find executable: %v", err)
	}
	if got := readFile(t, path); !bytes.Equal(got, imageFile(t, testenv.RemoteImage(t, slim), hello.path)) {
		t.Error("executable is not the slim image's stripped program")
	}
	if n := metric(t, url, "layerslim_debuginfod_index_images"); n != 2 {
		t.Errorf("index_images = %d, want 2 (the two -debug tags only)", n)
	}
}

// Registry faults while serving: a blob cut short is resumed, 5xx answers
// are retried, and a registry that keeps failing gets 502 (not the 404 of
// "no such build-id"), then 200 once it is back.
func TestRegistryFaults(t *testing.T) {
	hello := buildProgram(t, "hello")
	repo := testenv.Repo(t)
	pushSlim(t, repo+":app", hello)
	proxy := testenv.NewFaultProxy(t, testenv.Registry(t))
	viaProxy := proxy.Host + strings.TrimPrefix(repo, testenv.Registry(t))
	blobs := `/v2/.*/blobs/sha256:`

	// Indexing goes through two 503s and a reset.
	proxy.Add(&testenv.Fault{Method: "GET", Path: regexpOf(blobs), Times: 2, Status: 503, ResetRequestAfter: -1, ResetAfter: -1, StallAfter: -1})
	cut := testenv.NewFault("GET", blobs)
	cut.Times, cut.ResetAfter = 1, 100
	proxy.Add(cut)
	srv := newServer(t, debugserve.Options{Refresh: -1, Registry: retrying()}, viaProxy+":app-slim-debug")
	if err := srv.Refresh(t.Context()); err != nil {
		t.Fatalf("indexing through faults: %v", err)
	}
	url := serve(t, srv)
	proxy.Clear()

	want := imageFile(t, testenv.RemoteImage(t, repo+":app-slim-debug"), debugPath(hello.buildID))
	cut = testenv.NewFault("GET", blobs)
	cut.Times, cut.ResetAfter = 1, 200
	proxy.Add(cut)
	resp, b := get(t, "GET", url+"/buildid/"+hello.buildID+"/debuginfo")
	if resp.StatusCode != 200 || !bytes.Equal(b, want) {
		t.Fatalf("debuginfo through a reset: %s, %d bytes", resp.Status, len(b))
	}
	if cut.Injected() != 1 {
		t.Errorf("the reset was injected %d times", cut.Injected())
	}
	proxy.Clear()

	down := testenv.NewFault("GET", blobs)
	down.Status = 500
	proxy.Add(down)
	resp, _ = get(t, "GET", url+"/buildid/"+hello.buildID+"/executable")
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("executable with the registry down: %s, want 502", resp.Status)
	}
	proxy.Clear()
	resp, b = get(t, "GET", url+"/buildid/"+hello.buildID+"/executable")
	if resp.StatusCode != 200 || !bytes.Equal(b, imageFile(t, testenv.RemoteImage(t, repo+":app-slim"), hello.path)) {
		t.Errorf("executable with the registry back: %s, %d bytes", resp.Status, len(b))
	}
	// The debug file is cached: the registry is not needed for it any more.
	proxy.Add(down)
	if resp, b := get(t, "GET", url+"/buildid/"+hello.buildID+"/debuginfo"); resp.StatusCode != 200 || !bytes.Equal(b, want) {
		t.Errorf("cached debuginfo with the registry down: %s", resp.Status)
	}
}

// A debug image pushed by rewrite is listed by the referrers API of its
// slim image (this registry has none: ggcr's tag-schema fallback), as
// crane and oras list referrers.
func TestRegistryReferrers(t *testing.T) {
	hello := buildProgram(t, "hello")
	repo := testenv.Repo(t)
	slim := pushSlim(t, repo+":app", hello)
	slimDigest, err := testenv.RemoteImage(t, slim).Digest()
	if err != nil {
		t.Fatal(err)
	}
	debugDigest, err := testenv.RemoteImage(t, slim+"-debug").Digest()
	if err != nil {
		t.Fatal(err)
	}
	d, err := name.NewDigest(repo+"@"+slimDigest.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Referrers(d)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != debugDigest {
		t.Fatalf("referrers of the slim image = %+v, want the debug image %s", im.Manifests, debugDigest)
	}
	if got := im.Manifests[0].Annotations[manifest.AnnotationDebugFor]; got != slimDigest.String() {
		t.Errorf("the referrer's %s = %q, want %s", manifest.AnnotationDebugFor, got, slimDigest)
	}
}
