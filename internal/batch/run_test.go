package batch

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/run"
	"github.com/layerslim/layerslim/rewrite"
)

// fakeRun "rewrites" by sleeping; it fails for the destinations in fail.
type fakeRun struct {
	fail     map[string]bool
	inFlight *inFlight
}

type inFlight struct {
	mu       sync.Mutex
	now, max int
}

func (f *fakeRun) run(ctx context.Context, src *imageref.Source, o run.Options) (*run.Result, error) {
	f.inFlight.mu.Lock()
	f.inFlight.now++
	f.inFlight.max = max(f.inFlight.max, f.inFlight.now)
	f.inFlight.mu.Unlock()
	defer func() {
		f.inFlight.mu.Lock()
		f.inFlight.now--
		f.inFlight.mu.Unlock()
	}()
	time.Sleep(20 * time.Millisecond)
	if f.fail[o.Dst.String()] {
		return nil, errors.New("layer sha256:bad: unexpected EOF")
	}
	out := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%064d", 1)}
	return &run.Result{Written: out, Report: rewrite.Report{SourceBytes: 100, OutputBytes: 60,
		Images: []rewrite.ImageReport{{SourceDigest: src.Descriptor.Digest, OutputDigest: out,
			Layers: []rewrite.LayerReport{{Action: rewrite.Rewritten}, {Action: rewrite.Recompressed, Cached: true}}}}}}, nil
}

func TestRunBoundsJobsAndIsolatesFailures(t *testing.T) {
	sample, _ := filepath.Abs("../../testdata/sample")
	var items []Item
	for i := range 9 {
		items = append(items, Item{Src: "oci:" + sample + ":sample", Dst: fmt.Sprintf("oci:%s:out%d", t.TempDir(), i), Where: fmt.Sprintf("p:%d", i)})
	}
	items[4].Err = errors.New("listing the tags of x: denied")
	fake := &fakeRun{fail: map[string]bool{}, inFlight: &inFlight{}}
	fl := fake.inFlight
	if dst, err := imageref.Parse(items[2].Dst, false); err == nil {
		fake.fail[dst.String()] = true
	}
	var doneCalls int
	var mu sync.Mutex
	rep, err := Run(context.Background(), items, Config{
		Jobs: 3,
		Prepare: func(it Item) (run.Options, error) {
			if it.Where == "p:7" {
				return run.Options{}, errors.New("p:7: bad option")
			}
			src, _ := imageref.Parse(it.Src, false)
			dst, _ := imageref.Parse(it.Dst, false)
			return run.Options{Src: src, Dst: dst}, nil
		},
		run:     fake.run,
		Version: "test",
		Done:    func(ImageResult, int, int) { mu.Lock(); doneCalls++; mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if fl.max > 3 || fl.max < 2 {
		t.Errorf("%d images in flight at most, want 2 or 3 with --jobs 3", fl.max)
	}
	if doneCalls != len(items) {
		t.Errorf("Done called %d times, want %d", doneCalls, len(items))
	}
	wantFailed := map[int]string{2: "unexpected EOF", 4: "denied", 7: "bad option"}
	for i, r := range rep.Images {
		if r.Src != items[i].Src || r.Dst != items[i].Dst {
			t.Errorf("result %d is for %s → %s, want the plan's order", i, r.Src, r.Dst)
		}
		if msg, ok := wantFailed[i]; ok {
			if r.Status != Failed || r.Error == "" || !contains(r.Error, msg) {
				t.Errorf("item %d: %s %q, want failed with %q", i, r.Status, r.Error, msg)
			}
			continue
		}
		if r.Status != Done || r.Saved != 40 || r.Layers != (LayerCounts{Rewritten: 1, Cached: 1}) {
			t.Errorf("item %d: %+v", i, r)
		}
	}
	if rep.Totals.Failed != 3 || rep.Totals.Done != 6 || !rep.Failed() || rep.Totals.Saved != 6*40 {
		t.Errorf("totals %+v", rep.Totals)
	}
	if len(rep.Digests) != 1 {
		t.Errorf("digests %v, want the sample's one source mapped", rep.Digests)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
