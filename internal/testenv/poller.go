package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TagWatch polls the tags of a registry repository while a test writes to
// it, and fails the test if a tag ever points at incomplete content: a
// manifest, config or layer that the registry does not have, or has with
// another size. Start it with WatchTags; Stop it before checking results.
type TagWatch struct {
	t      testing.TB
	base   string // http://host/v2/repo
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	requires map[string]string // tag → tag that must be complete first
	problems map[string]bool
	seen     map[string]string // tag → last digest seen complete
	checks   int
}

// WatchTags starts polling repo (host/path, plain HTTP, no auth: the test
// registry or a proxy in front of it) every few milliseconds.
func WatchTags(t testing.TB, repo string) *TagWatch {
	t.Helper()
	host, path, ok := strings.Cut(repo, "/")
	if !ok {
		t.Fatalf("testenv.WatchTags: %q is not host/repo", repo)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &TagWatch{
		t: t, base: "http://" + host + "/v2/" + path, cancel: cancel, done: make(chan struct{}),
		problems: map[string]bool{}, seen: map[string]string{},
	}
	go w.loop(ctx)
	t.Cleanup(func() { w.Stop() })
	return w
}

// Stop ends the polling, fails the test with every problem seen, and
// returns tag → digest of every tag seen complete.
func (w *TagWatch) Stop() map[string]string {
	w.t.Helper()
	w.cancel()
	<-w.done
	// Once more, to check the final state too.
	w.poll(context.Background(), true)
	for _, p := range w.Problems() {
		w.t.Errorf("testenv.TagWatch: %s", p)
	}
	w.mu.Lock()
	w.problems = map[string]bool{}
	w.mu.Unlock()
	return w.Seen()
}

// Requires makes it a problem for tag to be complete while before is not
// (the slim tag before its debug image, say).
func (w *TagWatch) Requires(tag, before string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.requires == nil {
		w.requires = map[string]string{}
	}
	w.requires[tag] = before
}

// Seen returns tag → digest of every tag seen complete so far.
func (w *TagWatch) Seen() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]string{}
	for k, v := range w.seen {
		out[k] = v
	}
	return out
}

// Problems returns the problems seen so far.
func (w *TagWatch) Problems() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for p := range w.problems {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Checks is how many complete polls were made.
func (w *TagWatch) Checks() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.checks
}

func (w *TagWatch) loop(ctx context.Context) {
	defer close(w.done)
	for {
		w.poll(ctx, false)
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (w *TagWatch) problem(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.problems[fmt.Sprintf(format, args...)] = true
}

// poll checks every tag once; final is the check after the writes.
func (w *TagWatch) poll(ctx context.Context, final bool) {
	var list struct {
		Tags []string `json:"tags"`
	}
	code, body, _, err := w.get(ctx, http.MethodGet, "/tags/list", "")
	if err != nil || code == http.StatusNotFound {
		return // not created yet, or the test is over
	}
	if code != http.StatusOK || json.Unmarshal(body, &list) != nil {
		w.problem("tags/list: status %d: %s", code, body)
		return
	}
	complete := map[string]bool{}
	defer func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		for tag, before := range w.requires {
			if complete[tag] && !complete[before] {
				w.problems[fmt.Sprintf("tag %s points at complete content but %s does not exist yet", tag, before)] = true
			}
		}
	}()
	for _, tag := range list.Tags {
		code, raw, hdr, err := w.get(ctx, http.MethodGet, "/manifests/"+tag, "")
		if err != nil {
			return
		}
		if code == http.StatusNotFound && !final {
			// distribution lists a tag as soon as its directory exists,
			// before the link to the manifest is written: the tag does not
			// point anywhere yet. It must resolve by the final poll.
			continue
		}
		if code != http.StatusOK {
			w.problem("tag %s is listed but its manifest answers %d", tag, code)
			continue
		}
		d := hdr.Get("Docker-Content-Digest")
		if !w.complete(ctx, "tag "+tag, types.MediaType(hdr.Get("Content-Type")), raw, 0) {
			continue
		}
		complete[tag] = true
		w.mu.Lock()
		w.seen[tag] = d
		w.mu.Unlock()
	}
	w.mu.Lock()
	w.checks++
	w.mu.Unlock()
}

// complete checks that everything raw (a manifest or an index) refers to is
// in the registry; it returns false when ctx ended or a problem was found.
func (w *TagWatch) complete(ctx context.Context, where string, mt types.MediaType, raw []byte, depth int) bool {
	if depth > 4 {
		return true
	}
	if mt.IsIndex() {
		im, err := v1.ParseIndexManifest(strings.NewReader(string(raw)))
		if err != nil {
			w.problem("%s: bad index: %v", where, err)
			return false
		}
		for _, d := range im.Manifests {
			code, child, _, err := w.get(ctx, http.MethodGet, "/manifests/"+d.Digest.String(), string(d.MediaType))
			if err != nil {
				return false
			}
			if code != http.StatusOK {
				w.problem("%s: index lists %s, which answers %d", where, d.Digest, code)
				return false
			}
			if int64(len(child)) != d.Size {
				w.problem("%s: manifest %s has %d bytes, the index says %d", where, d.Digest, len(child), d.Size)
				return false
			}
			if !w.complete(ctx, where+" → "+d.Digest.String(), d.MediaType, child, depth+1) {
				return false
			}
		}
		return true
	}
	m, err := v1.ParseManifest(strings.NewReader(string(raw)))
	if err != nil {
		w.problem("%s: bad manifest: %v", where, err)
		return false
	}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if d.Digest.Hex == "" || len(d.URLs) > 0 {
			continue
		}
		code, _, hdr, err := w.get(ctx, http.MethodHead, "/blobs/"+d.Digest.String(), "")
		if err != nil {
			return false
		}
		if code != http.StatusOK {
			w.problem("%s: blob %s answers %d", where, d.Digest, code)
			return false
		}
		if cl := hdr.Get("Content-Length"); cl != fmt.Sprint(d.Size) {
			w.problem("%s: blob %s has Content-Length %s, the manifest says %d", where, d.Digest, cl, d.Size)
			return false
		}
	}
	return true
}

var manifestAccept = strings.Join([]string{
	string(types.OCIImageIndex), string(types.OCIManifestSchema1),
	string(types.DockerManifestList), string(types.DockerManifestSchema2),
}, ",")

func (w *TagWatch) get(ctx context.Context, method, path, accept string) (int, []byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, method, w.base+path, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	if accept == "" {
		accept = manifestAccept
	}
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, b, resp.Header, err
}
