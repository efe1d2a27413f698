package registryclient_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/imageref/reftest"
	"github.com/layerslim/layerslim/internal/testenv"
)

// fastRetry retries quickly, as the tests need.
var fastRetry = imageref.Options{Retries: 3, RetryDelay: 10 * time.Millisecond, StallTimeout: time.Second}

// faultyRegistry is ggcr's in-memory registry behind a fault proxy, with
// one image pushed (through the proxy, before any rule is added).
func faultyRegistry(t *testing.T) (*testenv.FaultProxy, string, v1.Image) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	p := testenv.NewFaultProxy(t, strings.TrimPrefix(srv.URL, "http://"))
	img, err := random.Image(256<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := p.Host + "/test/app:v1"
	if _, err := imageref.WriteImage(context.Background(), reftest.MustParse(t, ref), img, fastRetry); err != nil {
		t.Fatal(err)
	}
	return p, ref, img
}

// readImage opens ref and reads every layer to the end (ggcr checks each
// digest), as rewrite does.
func readImage(ref imageref.Ref, o imageref.Options) error {
	src, err := imageref.Open(context.Background(), ref, o)
	if err != nil {
		return err
	}
	layers, err := src.Image.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			d, _ := l.Digest()
			return fmt.Errorf("layer %s: %w", d, err)
		}
	}
	return nil
}

const (
	blobPath     = `/v2/.*/blobs/sha256:`
	manifestPath = `/v2/.*/manifests/`
	uploadPath   = `/v2/.*/blobs/uploads/`
)

func TestRetriedReadFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func() *testenv.Fault
		// minTime is how long the read must take (a Retry-After honoured).
		minTime time.Duration
	}{
		{"503 on the manifest", func() *testenv.Fault {
			f := testenv.NewFault("GET", manifestPath)
			f.Status, f.Times = 503, 2
			return f
		}, 0},
		{"429 with Retry-After on a blob", func() *testenv.Fault {
			f := testenv.NewFault("GET", blobPath)
			f.Status, f.RetryAfter, f.Times = 429, "1", 1
			return f
		}, time.Second},
		{"reset in the middle of a blob", func() *testenv.Fault {
			f := testenv.NewFault("GET", blobPath)
			f.ResetAfter, f.Times = 100<<10, 2
			return f
		}, 0},
		{"reset of the resumed request too", func() *testenv.Fault {
			f := testenv.NewFault("GET", blobPath)
			f.ResetAfter, f.Times = 1000, 3
			return f
		}, 0},
		{"stall in the middle of a blob", func() *testenv.Fault {
			f := testenv.NewFault("GET", blobPath)
			f.StallAfter, f.Times = 50<<10, 1
			return f
		}, fastRetry.StallTimeout},
		{"no answer for longer than the stall timeout", func() *testenv.Fault {
			f := testenv.NewFault("GET", manifestPath)
			f.Delay, f.Times = 10*time.Second, 1
			return f
		}, fastRetry.StallTimeout},
		{"slow but moving", func() *testenv.Fault {
			// 256 KiB at 160 KiB/s: 1.6 s per layer, longer than the stall
			// timeout of one read would allow if it counted the whole body.
			f := testenv.NewFault("GET", blobPath)
			f.Throttle, f.Times = 160<<10, 1
			return f
		}, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ref, _ := faultyRegistry(t)
			f := tc.fault()
			p.Add(f)
			start := time.Now()
			if err := readImage(reftest.MustParse(t, ref), fastRetry); err != nil {
				t.Fatalf("read with %s: %v", f, err)
			}
			if f.Injected() == 0 {
				t.Errorf("the fault %s was never injected", f)
			}
			if took := time.Since(start); took < tc.minTime {
				t.Errorf("took %s, want at least %s", took, tc.minTime)
			}
		})
	}
}

func TestRetriedWriteFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func() *testenv.Fault
	}{
		{"503 starting an upload", func() *testenv.Fault {
			f := testenv.NewFault("POST", uploadPath)
			f.Status, f.Times = 503, 2
			return f
		}},
		{"reset in the middle of an upload", func() *testenv.Fault {
			f := testenv.NewFault("PATCH", uploadPath)
			f.ResetRequestAfter, f.Times = 64<<10, 2
			return f
		}},
		{"502 committing a blob", func() *testenv.Fault {
			f := testenv.NewFault("PUT", uploadPath)
			f.Status, f.Times = 502, 1
			return f
		}},
		{"429 with Retry-After on the manifest", func() *testenv.Fault {
			f := testenv.NewFault("PUT", manifestPath)
			f.Status, f.RetryAfter, f.Times = 429, "1", 1
			return f
		}},
		{"no answer to an upload for longer than the stall timeout", func() *testenv.Fault {
			f := testenv.NewFault("PATCH", uploadPath)
			f.Delay, f.Times = 10*time.Second, 1
			return f
		}},
		{"slow upload, but moving", func() *testenv.Fault {
			f := testenv.NewFault("PATCH", uploadPath)
			f.Throttle, f.Times = 160<<10, 1
			return f
		}},
		{"500 on the blob existence check", func() *testenv.Fault {
			f := testenv.NewFault("HEAD", blobPath)
			f.Status, f.Times = 500, 2
			return f
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _, _ := faultyRegistry(t)
			f := tc.fault()
			p.Add(f)
			img, err := random.Image(256<<10, 2)
			if err != nil {
				t.Fatal(err)
			}
			ref := p.Host + "/test/out:v1"
			got, err := imageref.WriteImage(context.Background(), reftest.MustParse(t, ref), img, fastRetry)
			if err != nil {
				t.Fatalf("write with %s: %v", f, err)
			}
			if got != reftest.MustDigest(t, img) {
				t.Errorf("wrote %s, want %s", got, reftest.MustDigest(t, img))
			}
			if f.Injected() == 0 {
				t.Errorf("the fault %s was never injected", f)
			}
			if err := readImage(reftest.MustParse(t, ref), fastRetry); err != nil {
				t.Errorf("reading back: %v", err)
			}
		})
	}
}

// TestRetryGivesUp: a fault that does not pass ends in one message naming
// the request, the last answer and the attempts made, after exactly
// 1+Retries attempts.
func TestRetryGivesUp(t *testing.T) {
	o := fastRetry
	o.Retries = 2
	for _, tc := range []struct {
		name     string
		write    bool
		fault    func() *testenv.Fault
		want     []string
		attempts int
	}{
		{"blob read 503", false, func() *testenv.Fault {
			f := testenv.NewFault("GET", blobPath)
			f.Status = 503
			return f
		}, []string{`Get "http://`, "/blobs/sha256:", `": 503 Service Unavailable (gave up after 3 attempts`}, 3},
		{"blob read cut every time", false, func() *testenv.Fault {
			f := testenv.NewFault("GET", blobPath)
			f.ResetAfter, f.Skip = 0, 1 // the first answer gets through partly
			return f
		}, []string{"GET http://", "/blobs/sha256:", "cut at byte 0 of ", "gave up after 3 attempts"}, 3},
		{"Retry-After beyond a minute", false, func() *testenv.Fault {
			f := testenv.NewFault("GET", manifestPath)
			f.Status, f.RetryAfter = 429, "3600"
			return f
		}, []string{`/manifests/v1": 429 Too Many Requests, and the registry asks to wait 1h0m0s`, "giving up after 1 attempt"}, 1},
		{"upload 503", true, func() *testenv.Fault {
			f := testenv.NewFault("POST", uploadPath)
			f.Status = 503
			return f
		}, []string{"writing " + "PROXY/test/out:v1", "POST http://", "/blobs/uploads/", "(503 Service Unavailable; gave up after 3 attempts)"}, 3},
		{"not retried: 404", false, func() *testenv.Fault {
			f := testenv.NewFault("GET", manifestPath)
			f.Status = 404
			return f
		}, []string{"reading PROXY/test/app:v1", "GET http://", "/manifests/v1", "injected 404"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ref, _ := faultyRegistry(t)
			f := tc.fault()
			p.Add(f)
			var err error
			if tc.write {
				img, rerr := random.Image(1024, 2)
				if rerr != nil {
					t.Fatal(rerr)
				}
				_, err = imageref.WriteImage(context.Background(), reftest.MustParse(t, p.Host+"/test/out:v1"), img, o)
			} else {
				err = readImage(reftest.MustParse(t, ref), o)
			}
			if err == nil {
				t.Fatalf("%s: no error", f)
			}
			t.Logf("message: %v", err)
			for _, w := range tc.want {
				if w = strings.ReplaceAll(w, "PROXY", p.Host); !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			// A write pushes several blobs at once: each makes its attempts
			// until the first one fails the push.
			if got := f.Injected(); got != tc.attempts && !(tc.write && got >= tc.attempts) {
				t.Errorf("%d requests got the fault, want %d", got, tc.attempts)
			}
		})
	}
}

// TestRetryRegistryDown: a registry that refuses connections is tried
// 1+Retries times, then named with what happened.
func TestRetryRegistryDown(t *testing.T) {
	srv := httptest.NewServer(nil)
	host := strings.TrimPrefix(srv.URL, "http://")
	srv.Close() // the port is free now: connections are refused
	o := fastRetry
	o.Retries = 2
	_, err := imageref.Open(context.Background(), reftest.MustParse(t, host+"/test/app:v1"), o)
	if err == nil {
		t.Fatal("Open of a registry that is down: no error")
	}
	t.Logf("message: %v", err)
	for _, w := range []string{"reading " + host + "/test/app:v1", "connection refused", "gave up after 3 attempts"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}
