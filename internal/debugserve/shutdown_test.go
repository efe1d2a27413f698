package debugserve_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/layerslim/layerslim/internal/debugserve"
)

// Once its context is done, Serve gives a request still in progress
// Options.ShutdownTimeout, not more: the CLI exits a few seconds after
// SIGINT and Serve must have returned (its index closed) by then.
func TestServeShutdownTimeout(t *testing.T) {
	srv, err := debugserve.New(nil, debugserve.Options{CacheDir: t.TempDir(), Refresh: -1, ShutdownTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	// A client that sends half a request keeps its connection active.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET /metrics HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case <-done:
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Serve returned %v after its context ended, want about 300ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return 5s after its context ended (ShutdownTimeout 300ms)")
	}
}
