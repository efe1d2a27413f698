package rewrite_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/rewrite"
)

// TestDigestIndependentOfCPUs: an image with a layer of several zstd
// frames (and gzip blocks) gets the same digest at GOMAXPROCS 1, 2 and 8,
// with the default --jobs (which follows the CPUs) and with --jobs 1 and
// 3, and with a pool shared with another run at the same time.
func TestDigestIndependentOfCPUs(t *testing.T) {
	if testing.Short() {
		t.Skip("three frames of input, rewritten 14 times")
	}
	big := newGenLayer(t, 2*compress.ZstdFrameSize+4<<20) // 3 frames
	src := dockerImage(t, "amd64", gzipLayer(t, tarOf(t, 1, 40)), big, gzipLayer(t, tarOf(t, 2, 60)))
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, c := range []compress.Codec{compress.Zstd, compress.Gzip} {
		t.Run(string(c), func(t *testing.T) {
			verified := false
			run := func(opts ...rewrite.Option) v1.Hash {
				t.Helper()
				opts = append(opts, rewrite.WithTempDir(t.TempDir()), rewrite.WithCompression(c, 0), rewrite.WithForce(true))
				res, err := rewrite.Image(context.Background(), src, opts...)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Close()
				if got := res.Report.Images[0].Layers[1].Output.Size; got < 1<<20 {
					t.Fatalf("big layer compressed to %d bytes", got)
				}
				if !verified { // the others have its digest
					rewrite.CheckVerified(t, src, res, nil)
					verified = true
				}
				d, _ := res.Image.Digest()
				return d
			}
			runtime.GOMAXPROCS(1)
			want := run()
			for _, procs := range []int{1, 2, 8} {
				runtime.GOMAXPROCS(procs)
				for _, jobs := range []int{0, 1, 3} {
					var opts []rewrite.Option
					if jobs > 0 {
						opts = append(opts, rewrite.WithJobs(jobs))
					}
					name := fmt.Sprintf("GOMAXPROCS=%d jobs=%d", procs, jobs)
					if procs == 1 && jobs == 0 {
						continue
					}
					if procs == 2 && jobs != 0 {
						continue // keeps the test short; 1 and 8 cover them
					}
					if got := run(opts...); got != want {
						t.Errorf("%s: digest %s, GOMAXPROCS=1: %s", name, got, want)
					}
				}
			}
			// Two runs at once on one pool of 2.
			pool, err := compress.NewPool(2)
			if err != nil {
				t.Fatal(err)
			}
			got := make(chan v1.Hash, 2)
			for range 2 {
				go func() { got <- run(rewrite.WithEncoderPool(pool)) }()
			}
			for range 2 {
				if d := <-got; d != want {
					t.Errorf("shared pool: digest %s, want %s", d, want)
				}
			}
		})
	}
}
