package ocilayout_test

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/imageref/ocilayout"
)

// writeTags writes n small images into oci:dir, tagged prefix-0 … prefix-(n-1).
func writeTags(ctx context.Context, dir, prefix string, n int, seed int64) error {
	for i := range n {
		img, err := randomImageNoT(seed + int64(i))
		if err != nil {
			return err
		}
		ref, err := imageref.Parse(fmt.Sprintf("oci:%s:%s-%d", dir, prefix, i), false)
		if err != nil {
			return err
		}
		if _, err := imageref.WriteImage(ctx, ref, img, imageref.Options{}); err != nil {
			return err
		}
	}
	return nil
}

func wantTags(prefixes []string, n int) []string {
	var want []string
	for _, p := range prefixes {
		for i := range n {
			want = append(want, fmt.Sprintf("%s-%d", p, i))
		}
	}
	sort.Strings(want)
	return want
}

func checkAllTags(t *testing.T, dir string, want []string) {
	t.Helper()
	got := entryNames(t, dir)
	sort.Strings(got)
	sort.Strings(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("index.json lost tags: has %d of %d\n got %v\nwant %v", len(got), len(want), got, want)
	}
	checkLayout(t, dir)
}

// TestLayoutWriterProcess is the child of TestTwoProcessesOneLayout.
func TestLayoutWriterProcess(t *testing.T) {
	dir := os.Getenv("LAYERSLIM_TEST_LAYOUT_DIR")
	if dir == "" {
		t.Skip("run by TestTwoProcessesOneLayout")
	}
	n, _ := strconv.Atoi(os.Getenv("LAYERSLIM_TEST_LAYOUT_N"))
	seed, _ := strconv.ParseInt(os.Getenv("LAYERSLIM_TEST_LAYOUT_SEED"), 10, 64)
	if err := writeTags(context.Background(), dir, os.Getenv("LAYERSLIM_TEST_LAYOUT_PREFIX"), n, seed); err != nil {
		t.Fatal(err)
	}
}

// Two processes writing different tags into one layout, created by
// whichever comes first, keep every tag: each read-modify-write of
// index.json holds the layout's lock.
func TestTwoProcessesOneLayout(t *testing.T) {
	t.Run("new directory", func(t *testing.T) { writersInProcesses(t, false) })
	t.Run("existing layout", func(t *testing.T) { writersInProcesses(t, true) })
}

func writersInProcesses(t *testing.T, existing bool) {
	const n = 12
	dir := filepath.Join(t.TempDir(), "layout") // created by the writers
	prefixes := []string{"a", "b", "c"}
	if existing {
		if err := writeTags(context.Background(), dir, "base", 1, 1); err != nil {
			t.Fatal(err)
		}
	}
	var cmds []*exec.Cmd
	for i, p := range prefixes {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLayoutWriterProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "LAYERSLIM_TEST_LAYOUT_DIR="+dir, "LAYERSLIM_TEST_LAYOUT_PREFIX="+p,
			"LAYERSLIM_TEST_LAYOUT_N="+strconv.Itoa(n), fmt.Sprintf("LAYERSLIM_TEST_LAYOUT_SEED=%d", 1000*(i+1)))
		out := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		cmds = append(cmds, cmd)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("process %s:\n%s", p, out.String())
			}
		})
	}
	for _, cmd := range cmds {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer: %v", err)
		}
	}
	if t.Failed() {
		return
	}
	want := wantTags(prefixes, n)
	if existing {
		want = append([]string{"base-0"}, want...)
	}
	checkAllTags(t, dir, want)
}

// The same within one process: goroutines (batch --jobs) writing into one
// new layout keep every tag.
func TestGoroutinesOneLayout(t *testing.T) {
	const n = 10
	dir := filepath.Join(t.TempDir(), "layout")
	prefixes := []string{"a", "b", "c", "d"}
	var wg sync.WaitGroup
	errs := make([]error, len(prefixes))
	for i, p := range prefixes {
		wg.Go(func() { errs[i] = writeTags(context.Background(), dir, p, n, int64(100*(i+1))) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	checkAllTags(t, dir, wantTags(prefixes, n))
}

// A writer waiting for the lock stops when its context does.
func TestLayoutLockWaitEndsWithContext(t *testing.T) {
	dir := t.TempDir()
	unlock, err := ocilayout.LockLayout(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := ocilayout.LockLayout(ctx, dir); err == nil {
		t.Fatal("a second writer got the lock while the first held it")
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}

func randomImageNoT(seed int64) (v1.Image, error) {
	return random.Image(1024, 3, random.WithSource(rand.NewSource(seed)))
}
