package debugserve_test

import (
	"bytes"
	"testing"

	"github.com/layerslim/layerslim/internal/debugserve"
)

// A cache smaller than two files keeps the one used last: the other is
// read from its layer again when asked for. (The layer is uncompressed, too
// big for the cache: no blob is cached.)
func TestCacheEviction(t *testing.T) {
	a, b := buildProgram(t, "aaa"), buildProgram(t, "bbb")
	dir := slimLayoutArgs(t, "", "app", []string{"--compression", "none"}, a, b)
	sa := int64(len(layoutFile(t, dir, "app-debug", debugPath(a.buildID))))
	sb := int64(len(layoutFile(t, dir, "app-debug", debugPath(b.buildID))))
	size := max(sa, sb) * 3 / 2
	_, hs := server(t, "", debugserve.Options{CacheSize: size}, "oci:"+dir)
	fetch := func(p program) {
		t.Helper()
		if resp, _ := get(t, "GET", hs.URL+"/buildid/"+p.buildID+"/debuginfo"); resp.StatusCode != 200 {
			t.Fatalf("%s: %s", p.name, resp.Status)
		}
	}
	reads := func() int64 { return metric(t, hs.URL, "layerslim_debuginfod_layer_reads_total") }
	r0 := reads()
	fetch(a)
	fetch(a) // a hit
	if got := reads() - r0; got != 1 {
		t.Fatalf("a twice read the layer %d times, want 1", got)
	}
	fetch(b) // evicts a
	if n := metric(t, hs.URL, "layerslim_debuginfod_cache_evictions_total"); n != 1 {
		t.Errorf("evictions = %d, want 1", n)
	}
	if n := metric(t, hs.URL, "layerslim_debuginfod_cache_bytes"); n > size {
		t.Errorf("cache holds %d bytes, more than its %d", n, size)
	}
	fetch(b) // a hit
	if got := reads() - r0; got != 2 {
		t.Fatalf("reads = %d, want 2", got)
	}
	fetch(a) // evicted: read again
	if got := reads() - r0; got != 3 {
		t.Errorf("a after eviction: reads = %d, want 3", got)
	}
	if n := metric(t, hs.URL, "layerslim_debuginfod_cache_hits_total"); n != 2 {
		t.Errorf("hits = %d, want 2", n)
	}
}

// A server started again on the same cache directory reads no layer to
// index, and serves the files cached before from the cache.
func TestRestartReusesIndex(t *testing.T) {
	hello := buildProgram(t, "hello")
	dir := slimLayout(t, "", "app", hello)
	cache := t.TempDir()
	_, hs1 := server(t, cache, debugserve.Options{}, "oci:"+dir)
	if resp, _ := get(t, "GET", hs1.URL+"/buildid/"+hello.buildID+"/debuginfo"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	if resp, _ := get(t, "GET", hs1.URL+"/buildid/"+hello.buildID+"/executable"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	hs1.Close()

	_, hs2 := server(t, cache, debugserve.Options{}, "oci:"+dir)
	for _, k := range []string{"debuginfo", "executable"} {
		if resp, _ := get(t, "GET", hs2.URL+"/buildid/"+hello.buildID+"/"+k); resp.StatusCode != 200 {
			t.Fatalf("%s after restart: %s", k, resp.Status)
		}
	}
	if n := metric(t, hs2.URL, "layerslim_debuginfod_layer_reads_total"); n != 0 {
		t.Errorf("the restarted server read %d layers, want 0", n)
	}
	if n := metric(t, hs2.URL, "layerslim_debuginfod_cache_hits_total"); n != 2 {
		t.Errorf("hits after restart = %d, want 2", n)
	}
	if n := metric(t, hs2.URL, "layerslim_debuginfod_index_buildids"); n != 1 {
		t.Errorf("index_buildids after restart = %d, want 1", n)
	}
}

// The files of one layer asked for one after the other need one read of
// the layer: its blob is cached with the first file.
func TestBlobCache(t *testing.T) {
	a, b := buildProgram(t, "aaa"), buildProgram(t, "bbb")
	dir := slimLayout(t, "", "app", a, b)
	_, hs := server(t, "", debugserve.Options{}, "oci:"+dir)
	r0 := metric(t, hs.URL, "layerslim_debuginfod_layer_reads_total")
	for _, p := range []program{a, b} {
		want := layoutFile(t, dir, "app-debug", debugPath(p.buildID))
		if resp, body := get(t, "GET", hs.URL+"/buildid/"+p.buildID+"/debuginfo"); resp.StatusCode != 200 || !bytes.Equal(body, want) {
			t.Fatalf("%s: %s, %d bytes", p.name, resp.Status, len(body))
		}
	}
	if got := metric(t, hs.URL, "layerslim_debuginfod_layer_reads_total") - r0; got != 1 {
		t.Errorf("two files of one layer read it %d times, want 1", got)
	}
	if got := metric(t, hs.URL, "layerslim_debuginfod_blob_cache_hits_total"); got != 2 {
		t.Errorf("blob cache hits = %d, want 2", got)
	}
}
