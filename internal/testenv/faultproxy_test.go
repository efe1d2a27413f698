package testenv

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func memRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestFaultProxy(t *testing.T) {
	p := NewFaultProxy(t, memRegistry(t))
	img, err := random.Image(64<<10, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(p.Host+"/x/y:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	blobURL := fmt.Sprintf("%s/v2/x/y/blobs/%s", p.URL, d)

	// The second and third GETs get a 429 with Retry-After, the others pass.
	busy := NewFault("GET", `/blobs/`)
	busy.Status, busy.RetryAfter, busy.Skip, busy.Times = 429, "7", 1, 2
	p.Add(busy)
	var codes []int
	for range 4 {
		resp, err := http.Get(blobURL)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == 429 && resp.Header.Get("Retry-After") != "7" {
			t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
		}
	}
	if fmt.Sprint(codes) != "[200 429 429 200]" || busy.Injected() != 2 {
		t.Errorf("codes %v, injected %d; want [200 429 429 200], 2", codes, busy.Injected())
	}

	// A reset after 1000 bytes of the body: the client gets those bytes,
	// then an error.
	cut := NewFault("GET", `/blobs/`)
	cut.ResetAfter, cut.Times = 1000, 1
	p.Add(cut)
	resp, err := http.Get(blobURL)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(b) != 1000 || err == nil {
		t.Errorf("cut body: %d bytes, error %v; want 1000 bytes and an error", len(b), err)
	}

	// A request whose body is cut gets no answer.
	up := NewFault("PUT", `/cut`)
	up.ResetRequestAfter = 10
	p.Add(up)
	req, _ := http.NewRequest("PUT", p.URL+"/cut", bytes.NewReader(make([]byte, 1<<20)))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("a request reset after 10 bytes got %d (injected %d)", resp.StatusCode, up.Injected())
	}

	// A stall holds the body until the client gives up.
	stall := NewFault("GET", `/blobs/`)
	stall.StallAfter, stall.Times = 10, 1
	p.Add(stall)
	c := &http.Client{Timeout: 300 * time.Millisecond}
	start := time.Now()
	if resp, err := c.Get(blobURL); err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("a stalled body read completely")
		}
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Errorf("the stalled read ended after %s", took)
	}

	var done []string
	p.OnDone(func(r *http.Request, status int) { done = append(done, fmt.Sprint(r.Method, " ", status)) })
	if resp, err := http.Head(blobURL); err == nil {
		resp.Body.Close()
	}
	if fmt.Sprint(done) != "[HEAD 200]" {
		t.Errorf("OnDone saw %v", done)
	}
}

// errorTB records Errorf calls.
type errorTB struct {
	testing.TB
	errs []string
}

func (e *errorTB) Helper() {}
func (e *errorTB) Errorf(format string, args ...any) {
	e.errs = append(e.errs, fmt.Sprintf(format, args...))
}

func TestTagWatch(t *testing.T) {
	reg := memRegistry(t)
	repo := reg + "/w/app"
	etb := &errorTB{TB: t}
	w := WatchTags(etb, repo)
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := name.ParseReference(repo+":good", name.Insecure)
	if err := remote.Write(good, img); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for w.Seen()["good"] == "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// ggcr's registry takes a manifest whose blobs it lacks: the watch must
	// see that tag as incomplete.
	bad, _ := name.ParseReference(repo+":bad", name.Insecure)
	other, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(bad, other); err != nil {
		t.Fatal(err)
	}
	for len(w.Problems()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// A tag required to come after one that never exists.
	w.Requires("good", "good-debug")
	deadline = time.Now().Add(5 * time.Second)
	for !strings.Contains(strings.Join(w.Problems(), "\n"), "good-debug") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	seen := w.Stop()
	d, _ := img.Digest()
	if seen["good"] != d.String() {
		t.Errorf("the watch saw good as %q, want %s", seen["good"], d)
	}
	if _, ok := seen["bad"]; ok {
		t.Errorf("the watch saw bad as complete")
	}
	if len(etb.errs) == 0 || !strings.Contains(strings.Join(etb.errs, "\n"), "tag bad: blob sha256:") {
		t.Errorf("the watch reported %q, want the missing blob of tag bad", etb.errs)
	}
	if !strings.Contains(strings.Join(etb.errs, "\n"), "tag good points at complete content but good-debug does not exist yet") {
		t.Errorf("the watch reported %q, want good before good-debug", etb.errs)
	}
}
