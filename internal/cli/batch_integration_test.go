//go:build integration

package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/layerslim/layerslim/drop"
	"github.com/layerslim/layerslim/internal/batch"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/manifest"
	"github.com/layerslim/layerslim/verify"
)

// countingProxy stands in front of the test registry and counts what
// clients do with blobs: completed uploads (the PUT that ends an upload
// session), cross-repository mounts that succeeded, and blob downloads.
type countingProxy struct {
	*httptest.Server
	mu       sync.Mutex
	uploads  map[string]int // digest → uploads
	mounts   map[string]int // digest → mounts
	blobGets map[string]int // repository → blob GETs
}

var batchBlobGet = regexp.MustCompile(`^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$`)

func newCountingProxy(t *testing.T) *countingProxy {
	t.Helper()
	target, err := url.Parse("http://" + testenv.Registry(t))
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{}
	p.reset()
	rp := httputil.NewSingleHostReverseProxy(target)
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		rp.ServeHTTP(sw, r)
		q := r.URL.Query()
		p.mu.Lock()
		defer p.mu.Unlock()
		switch {
		case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") && sw.status == http.StatusCreated:
			p.uploads[q.Get("digest")]++
		case r.Method == http.MethodPost && q.Get("mount") != "" && sw.status == http.StatusCreated:
			p.mounts[q.Get("mount")]++
		case r.Method == http.MethodGet:
			if m := batchBlobGet.FindStringSubmatch(r.URL.Path); m != nil {
				p.blobGets[m[1]]++
			}
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *countingProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.uploads, p.mounts, p.blobGets = map[string]int{}, map[string]int{}, map[string]int{}
}

func (p *countingProxy) host() string { return strings.TrimPrefix(p.URL, "http://") }

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// batchFixture is a dozen images on one shared base, pushed through the
// proxy: api (5 tags), web (1.0, 1.1 and 2.0, which the plan leaves out),
// worker (4 tags, listed one by one), a two-platform index, and one image
// whose app layer is damaged in the registry's storage.
type batchFixture struct {
	prefix   string            // registry/prefix of the repositories
	sources  map[string]string // every good source of the plan → its digest
	broken   string
	victim   v1.Hash
	baseOut  []v1.Hash // filled in after the first run
	plan     string
	matcher  *drop.Matcher
	baseDiff []v1.Hash
}

func newBatchFixture(t *testing.T, p *countingProxy) *batchFixture {
	t.Helper()
	f := &batchFixture{sources: map[string]string{}}
	f.prefix = strings.Replace(testenv.Repo(t), testenv.Registry(t), p.host(), 1)
	unique := src0(t)
	base := [][]byte{
		testenv.RealContentLayer(t, "/usr/share/zoneinfo", "usr/share/zoneinfo", 2<<20),
		testenv.TarLayer(t, []testenv.File{testenv.Dir("etc"), testenv.Reg("etc/base-id", unique),
			testenv.Dir("usr"), testenv.Dir("usr/share"), testenv.Dir("usr/share/doc"), testenv.Dir("usr/share/doc/base"),
			testenv.Reg("usr/share/doc/base/README", "docs\n")}),
	}
	app := func(name string) []byte {
		return testenv.TarLayer(t, []testenv.File{
			testenv.Dir("app"), testenv.Dir("tmp"), testenv.Dir("usr"), testenv.Dir("usr/share"),
			testenv.Dir("usr/share/doc"), testenv.Dir("usr/share/doc/" + name),
			testenv.Reg("app/"+name, strings.Repeat(name+"\n", 2000)),
			testenv.Reg("usr/share/doc/"+name+"/changelog", "dropped\n"),
			testenv.Reg("tmp/build.log", "dropped too\n"),
		})
	}
	amd := testenv.Platform(t, "linux/amd64")
	push := func(repo, tag string) {
		img := testenv.GzipImage(t, amd, append(slices.Clone(base), app(repo+tag))...)
		ref := f.prefix + "/" + repo + ":" + tag
		d := testenv.PushImage(t, img, ref)
		f.sources[ref] = d[strings.LastIndex(d, "@")+1:]
	}
	for _, tag := range []string{"1.0", "1.1", "1.2", "1.3", "1.4"} {
		push("api", tag)
	}
	for _, tag := range []string{"1.0", "1.1", "2.0"} {
		push("web", tag)
	}
	delete(f.sources, f.prefix+"/web:2.0")
	for _, tag := range []string{"a", "b", "c", "d"} {
		push("worker", tag)
	}
	arm := testenv.Platform(t, "linux/arm64/v8")
	idx := testenv.MultiArchIndex(t,
		testenv.GzipImage(t, amd, append(slices.Clone(base), app("multi-amd64"))...),
		testenv.GzipImage(t, arm, append(slices.Clone(base), app("multi-arm64"))...))
	d := testenv.PushIndex(t, idx, f.prefix+"/multi:1.0")
	f.sources[f.prefix+"/multi:1.0"] = d[strings.LastIndex(d, "@")+1:]

	// The broken image's own layer is damaged in the registry's storage
	// (blobs are shared by every repository, so it must be this test's).
	bad := testenv.GzipImage(t, amd, append(slices.Clone(base), app("broken"+unique))...)
	f.broken = f.prefix + "/broken:1.0"
	testenv.PushImage(t, bad, f.broken)
	layers, _ := bad.Layers()
	f.victim, _ = layers[2].Digest()
	data := filepath.Join(testenv.RegistryDir(t), "docker/registry/v2/blobs/sha256", f.victim.Hex[:2], f.victim.Hex, "data")
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	copy(b[len(b)/2:], "corrupt!")
	if err := os.WriteFile(data, b, 0o644); err != nil {
		t.Fatal(err)
	}

	cf, _ := bad.ConfigFile()
	f.baseDiff = cf.RootFS.DiffIDs[:2]
	f.matcher, err = drop.New([]string{"default"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// writePlan writes a plan whose destinations end in suffix.
func (f *batchFixture) writePlan(t *testing.T, suffix string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "defaults:\n  squash: none\n  strip: none\n  compression: zstd\nimages:\n")
	fmt.Fprintf(&b, "  - repository: %s/api\n    tags: [\"1.?\"]\n    dst: \"{{.Repository}}:{{.Tag}}%s\"\n", f.prefix, suffix)
	fmt.Fprintf(&b, "  - repository: %s/web\n    tags: [\"1.*\"]\n    dst: \"{{.Registry}}/{{.Path}}:{{.Tag}}%s\"\n", f.prefix, suffix)
	for _, tag := range []string{"a", "b", "c", "d"} {
		fmt.Fprintf(&b, "  - src: %s/worker:%s\n    dst: %s/worker:%s%s\n", f.prefix, tag, f.prefix, tag, suffix)
	}
	fmt.Fprintf(&b, "  - src: %s/multi:1.0\n    dst: %s/multi:1.0%s\n", f.prefix, f.prefix, suffix)
	fmt.Fprintf(&b, "  - src: %s\n    dst: %s%s\n", f.broken, f.broken, suffix)
	p := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readBatchReport(t *testing.T, path string) batchReport {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r batchReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// batchReport is the --report JSON, as a consumer reads it.
type batchReport struct {
	Shard  string `json:"shard"`
	Images []struct {
		Src          string       `json:"src"`
		Dst          string       `json:"dst"`
		Status       batch.Status `json:"status"`
		SourceDigest string       `json:"sourceDigest"`
		OutputDigest string       `json:"outputDigest"`
		Saved        int64        `json:"saved"`
		Error        string       `json:"error"`
		Layers       struct {
			Rewritten, Cached, Reused int
		} `json:"layers"`
	} `json:"images"`
	Digests map[string]string `json:"digests"`
	Totals  struct {
		Images, Done, Skipped, Failed int
	} `json:"totals"`
}

// verifyOutput checks dst against src with the verify package and returns
// the digests of the output's first two layers (the rewritten base).
func (f *batchFixture) verifyOutput(t *testing.T, src, dst string) []v1.Hash {
	t.Helper()
	ctx := context.Background()
	vo := verify.Options{Dropped: f.matcher.Match, TempDir: t.TempDir()}
	var results []*verify.Result
	var img v1.Image
	if strings.HasSuffix(src, "/multi:1.0") {
		rs, err := verify.Index(ctx, testenv.RemoteIndex(t, src), testenv.RemoteIndex(t, dst), vo)
		if err != nil {
			t.Fatalf("verify %s: %v", dst, err)
		}
		results = rs
		im, _ := testenv.RemoteIndex(t, dst).IndexManifest()
		img, _ = testenv.RemoteIndex(t, dst).Image(im.Manifests[0].Digest)
	} else {
		img = testenv.RemoteImage(t, dst)
		r, err := verify.Image(ctx, testenv.RemoteImage(t, src), img, vo)
		if err != nil {
			t.Fatalf("verify %s: %v", dst, err)
		}
		results = []*verify.Result{r}
	}
	for _, r := range results {
		if r.Violations > 0 || r.Count(verify.Dropped) == 0 {
			t.Errorf("verify %s (%s): %d violations, %d dropped: %+v", dst, r.Platform, r.Violations, r.Count(verify.Dropped), r.Differences)
		}
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return []v1.Hash{m.Layers[0].Digest, m.Layers[1].Digest}
}

func TestIntegrationBatch(t *testing.T) {
	p := newCountingProxy(t)
	f := newBatchFixture(t, p)
	plan := f.writePlan(t, "-slim")
	cache := t.TempDir()
	report := filepath.Join(t.TempDir(), "r1.json")

	// First run: every good image is done, the broken one fails alone.
	p.reset()
	_, stderr, code := run(t, "batch", plan, "--jobs", "4", "--report", report, "--cache-dir", cache)
	if code != 1 {
		t.Fatalf("first run: exit %d, want 1 (one image is broken)\n%s", code, stderr)
	}
	r1 := readBatchReport(t, report)
	if r1.Totals.Images != len(f.sources)+1 || r1.Totals.Done != len(f.sources) || r1.Totals.Failed != 1 {
		t.Fatalf("first run totals %+v, want %d done and 1 failed\n%s", r1.Totals, len(f.sources), stderr)
	}
	for _, im := range r1.Images {
		switch {
		case im.Src == f.broken:
			if im.Status != batch.Failed || !strings.Contains(im.Error, f.victim.String()) {
				t.Errorf("broken image: %s %q, want failed naming layer %s", im.Status, im.Error, f.victim)
			}
			if _, err := remote.Head(testenv.ParseRef(t, im.Dst)); err == nil {
				t.Errorf("the broken image's destination %s was written", im.Dst)
			}
		case im.Status != batch.Done:
			t.Errorf("%s: %s %s", im.Src, im.Status, im.Error)
		default:
			if im.SourceDigest != f.sources[im.Src] || r1.Digests[im.SourceDigest] != im.OutputDigest || im.Saved <= 0 {
				t.Errorf("%s: source %s (want %s), output %s, digests map %s, saved %d", im.Src, im.SourceDigest, f.sources[im.Src], im.OutputDigest, r1.Digests[im.SourceDigest], im.Saved)
			}
		}
	}
	if !strings.Contains(stderr, "failed") || !strings.Contains(stderr, f.broken) {
		t.Errorf("the summary does not list the failure:\n%s", stderr)
	}

	// Every output verifies and has the same rewritten base.
	var base []v1.Hash
	for _, im := range r1.Images {
		if im.Status != batch.Done {
			continue
		}
		got := f.verifyOutput(t, im.Src, im.Dst)
		if base == nil {
			base = got
		} else if !slices.Equal(got, base) {
			t.Errorf("%s: base layers %v, want %v as in the other images", im.Dst, got, base)
		}
	}
	// The base's output blobs were uploaded once; every other image mounted
	// them or found them in place.
	p.mu.Lock()
	for _, d := range base {
		if n := p.uploads[d.String()]; n != 1 {
			t.Errorf("base output blob %s uploaded %d times, want once (mounted %d times)", d, n, p.mounts[d.String()])
		}
		if p.mounts[d.String()] == 0 {
			t.Errorf("base output blob %s was never mounted", d)
		}
	}
	p.mu.Unlock()
	rewritten := 0
	for _, im := range r1.Images {
		rewritten += im.Layers.Rewritten
	}
	// 12 app layers (the index has two), 2 base layers.
	if want := len(f.sources) + 1 + 2; rewritten != want {
		t.Errorf("%d layers rewritten, want %d (each distinct layer once)", rewritten, want)
	}

	// A rerun skips every good image without reading a layer, and uploads
	// nothing.
	p.reset()
	report2 := filepath.Join(t.TempDir(), "r2.json")
	_, stderr, code = run(t, "batch", plan, "--jobs", "4", "--report", report2, "--cache-dir", cache)
	if code != 1 {
		t.Fatalf("rerun: exit %d\n%s", code, stderr)
	}
	r2 := readBatchReport(t, report2)
	if r2.Totals.Skipped != len(f.sources) || r2.Totals.Failed != 1 {
		t.Errorf("rerun totals %+v, want %d skipped\n%s", r2.Totals, len(f.sources), stderr)
	}
	for old, new := range r1.Digests {
		if r2.Digests[old] != new {
			t.Errorf("rerun maps %s to %s, first run to %s", old, r2.Digests[old], new)
		}
	}
	p.mu.Lock()
	for repo, n := range p.blobGets {
		if !strings.HasSuffix(repo, "/broken") {
			t.Errorf("rerun read %d blobs of %s", n, repo)
		}
	}
	if len(p.uploads) > 0 || len(p.mounts) > 0 {
		t.Errorf("rerun uploaded %v, mounted %v", p.uploads, p.mounts)
	}
	p.mu.Unlock()

	// New destinations with the same memo directory: every layer comes from
	// the memo (none is rewritten), nothing is uploaded, and the outputs
	// are the first run's.
	p.reset()
	report3 := filepath.Join(t.TempDir(), "r3.json")
	_, stderr, _ = run(t, "batch", f.writePlan(t, "-again"), "--jobs", "4", "--report", report3, "--cache-dir", cache)
	r3 := readBatchReport(t, report3)
	for _, im := range r3.Images {
		if _, ok := f.sources[im.Src]; !ok {
			continue // broken, and web's 1.x-slim tags (skipped: layerslim output)
		}
		if im.Status != batch.Done || im.Layers.Rewritten != 0 || im.Layers.Cached == 0 || im.OutputDigest != r1.Digests[im.SourceDigest] {
			t.Errorf("memo run: %s %s, layers %+v, output %s (first run %s)", im.Src, im.Status, im.Layers, im.OutputDigest, r1.Digests[im.SourceDigest])
		}
	}
	p.mu.Lock()
	if len(p.uploads) > 0 {
		t.Errorf("memo run uploaded %v\n%s", p.uploads, stderr)
	}
	p.mu.Unlock()

	// Two shards, two processes at once, new destinations, a shared memo in
	// the registry and no shared local directory.
	bin := filepath.Join(t.TempDir(), "layerslim")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/layerslim/layerslim/cmd/layerslim").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	plan3 := f.writePlan(t, "-shard")
	memoRepo := f.prefix + "/layerslim-cache"
	type shardRun struct {
		report string
		out    []byte
		err    error
	}
	runs := make([]shardRun, 2)
	var wg sync.WaitGroup
	for i := range runs {
		runs[i].report = filepath.Join(t.TempDir(), "shard.json")
		wg.Go(func() {
			cmd := exec.Command(bin, "batch", plan3, "--shard", fmt.Sprintf("%d/2", i), "--jobs", "3",
				"--report", runs[i].report, "--cache-dir", t.TempDir(), "--cache-repo", memoRepo)
			runs[i].out, runs[i].err = cmd.CombinedOutput()
		})
	}
	wg.Wait()
	// The web pattern 1.* now also lists the earlier runs' 1.0-slim,
	// 1.1-again and so on: those are layerslim output already, and skipped.
	want := map[string]bool{f.broken: true}
	for _, tag := range []string{"1.0-slim", "1.1-slim", "1.0-again", "1.1-again"} {
		want[f.prefix+"/web:"+tag] = true
	}
	for src := range f.sources {
		want[src] = true
	}
	seen := map[string]int{}
	for i, r := range runs {
		rep := readBatchReport(t, r.report)
		wantExit := 0
		for _, im := range rep.Images {
			seen[im.Src]++
			if im.Src == f.broken {
				wantExit = 1
				continue
			}
			if _, ok := f.sources[im.Src]; !ok {
				if im.Status != batch.Skipped {
					t.Errorf("shard %d: %s: %s, want skipped (it is layerslim output)", i, im.Src, im.Status)
				}
				continue
			}
			if im.Status != batch.Done {
				t.Errorf("shard %d: %s %s %s", i, im.Src, im.Status, im.Error)
				continue
			}
			desc, err := remote.Get(testenv.ParseRef(t, im.Dst))
			if err != nil {
				t.Fatal(err)
			}
			var m struct{ Annotations map[string]string }
			json.Unmarshal(desc.Manifest, &m)
			if m.Annotations[manifest.AnnotationSourceDigest] != f.sources[im.Src] || desc.Digest.String() != im.OutputDigest {
				t.Errorf("shard %d: %s holds %s from %s", i, im.Dst, desc.Digest, m.Annotations[manifest.AnnotationSourceDigest])
			}
			if want := r1.Digests[f.sources[im.Src]]; im.OutputDigest != want {
				t.Errorf("shard %d: %s is %s, the first run wrote %s for the same source and options", i, im.Dst, im.OutputDigest, want)
			}
		}
		code := 0
		if ee, ok := r.err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if r.err != nil {
			t.Fatal(r.err)
		}
		if code != wantExit {
			t.Errorf("shard %d: exit %d, want %d\n%s", i, code, wantExit, r.out)
		}
	}
	for src := range want {
		if seen[src] == 0 {
			t.Errorf("no shard processed %s", src)
		}
	}
	for src, n := range seen {
		if !want[src] || n != 1 {
			t.Errorf("%s processed by %d shards", src, n)
		}
	}
}
