package debugserve

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
)

// metrics are the counters /metrics shows, in the Prometheus text
// exposition format (version 0.0.4).
type metrics struct {
	s *Server

	hits, misses, blobHits, bytes, layerScans, layerReads, refreshes, refreshErrors atomic.Int64

	mu       sync.Mutex
	requests map[[2]string]int64 // {kind, code}
}

func newMetrics(s *Server) *metrics {
	return &metrics{s: s, requests: map[[2]string]int64{}}
}

func (m *metrics) request(kind string, code int) {
	m.mu.Lock()
	m.requests[[2]string{kind, fmt.Sprint(code)}]++
	m.mu.Unlock()
}

func (m *metrics) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.writeTo(w)
}

func (m *metrics) writeTo(w io.Writer) {
	metric := func(name, typ, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", name, help, name, typ, name, v)
	}
	fmt.Fprintf(w, "# HELP layerslim_debuginfod_requests_total HTTP requests for /buildid/, by kind and status code.\n# TYPE layerslim_debuginfod_requests_total counter\n")
	m.mu.Lock()
	keys := make([][2]string, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	for _, k := range keys {
		fmt.Fprintf(w, "layerslim_debuginfod_requests_total{kind=%q,code=%q} %d\n", k[0], k[1], m.requests[k])
	}
	m.mu.Unlock()
	metric("layerslim_debuginfod_cache_hits_total", "counter", "Files served from the cache.", m.hits.Load())
	metric("layerslim_debuginfod_cache_misses_total", "counter", "Files not in the cache: taken out of their layer.", m.misses.Load())
	metric("layerslim_debuginfod_blob_cache_hits_total", "counter", "Files taken out of a layer blob cached before.", m.blobHits.Load())
	metric("layerslim_debuginfod_cache_evictions_total", "counter", "Files removed from the cache to make room.", m.s.cache.evictions.Load())
	files, bytes := m.s.cache.stats()
	metric("layerslim_debuginfod_cache_files", "gauge", "Files and layer blobs in the cache.", int64(files))
	metric("layerslim_debuginfod_cache_bytes", "gauge", "Bytes in the cache.", bytes)
	metric("layerslim_debuginfod_served_bytes_total", "counter", "Bytes of files served.", m.bytes.Load())
	metric("layerslim_debuginfod_index_images", "gauge", "Debug images indexed.", m.s.idx.images.Load())
	metric("layerslim_debuginfod_index_buildids", "gauge", "Build-ids indexed.", m.s.idx.buildIDs.Load())
	metric("layerslim_debuginfod_layer_scans_total", "counter", "Layers read to index them.", m.layerScans.Load())
	metric("layerslim_debuginfod_layer_reads_total", "counter", "Layer blobs read from registries or layouts, to index them or to take files out.", m.layerReads.Load())
	metric("layerslim_debuginfod_refreshes_total", "counter", "Refreshes of the index done: every source listed, every new image indexed or failed.", m.refreshes.Load())
	metric("layerslim_debuginfod_refresh_errors_total", "counter", "Sources or images that failed to index.", m.refreshErrors.Load())
}
