package cli_test

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/layerslim/layerslim/internal/cli"
)

func TestDebugServeUsage(t *testing.T) {
	for _, args := range [][]string{
		{"debug", "serve"},
		{"debug", "serve", "--cache-size", "lots", "oci:" + sample},
		{"debug", "serve", "--cache-size", "0", "oci:" + sample},
		{"debug", "serve", "--refresh", "-1s", "oci:" + sample},
		{"debug", "serve", "docker-archive:x.tar"},
		{"debug", "serve", "Not A Ref"},
	} {
		if _, stderr, code := run(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, stderr)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// debug serve listens where --listen says, keeps its index in --cache-dir,
// answers until its context ends, then exits 0.
func TestDebugServeRuns(t *testing.T) {
	cache := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := cli.New()
	var stderr syncBuffer
	cmd.SetArgs([]string{"debug", "serve", "--listen", "127.0.0.1:0", "--cache-dir", cache, "--cache-size", "10MiB", "--refresh", "0", "oci:" + sample})
	cmd.SetOut(&stderr)
	cmd.SetErr(&stderr)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	addr := regexp.MustCompile(`addr=(http://127\.0\.0\.1:\d+)`)
	var url string
	for deadline := time.Now().Add(20 * time.Second); url == ""; time.Sleep(20 * time.Millisecond) {
		if m := addr.FindStringSubmatch(stderr.String()); m != nil {
			url = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no address logged:\n%s", stderr.String())
		}
	}
	// The sample's amd64 program (see TestRewriteDebugImageWithGDB) is not
	// in a debug image here: the sample is no debug image.
	resp, err := http.Get(url + "/buildid/1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d/debuginfo")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unknown build-id: %s", resp.Status)
	}
	resp, err = http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/metrics: %s", resp.Status)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("debug serve after its context ended: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("debug serve did not stop")
	}
	if !strings.Contains(stderr.String(), "cacheDir="+cache) {
		t.Errorf("the log does not name the cache directory:\n%s", stderr.String())
	}
}
