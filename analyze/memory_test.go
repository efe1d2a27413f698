package analyze_test

import (
	"archive/tar"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/layerslim/layerslim/analyze"
	"github.com/layerslim/layerslim/elf"
)

// bigTar streams a tar of two large files, one of them looking like ELF
// (a malformed one, so it is spooled and then kept as it is), without
// holding either in memory.
func bigTar(size int64) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			rng := rand.New(rand.NewPCG(3, 3))
			chunk := make([]byte, 1<<20)
			var err error
			for i, name := range []string{"usr/bin/fake-elf", "srv/data.bin"} {
				if err = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: size, Typeflag: tar.TypeReg}); err != nil {
					break
				}
				for n := int64(0); n < size && err == nil; n += int64(len(chunk)) {
					for j := 0; j < len(chunk)/2; j += 8 {
						v := rng.Uint64()
						for k := range 8 {
							chunk[j+k] = byte(v >> (8 * k))
						}
					}
					if n == 0 && i == 0 {
						copy(chunk, "\x7fELF\x02\x01\x01") // and garbage after
					}
					_, err = tw.Write(chunk)
				}
			}
			if err == nil {
				err = tw.Close()
			}
			pw.CloseWithError(err)
		}()
		return pr, nil
	}
}

// TestMemoryBounded analyzes a layer of 2×64 MiB files and checks that the
// heap stays far below that.
func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 128 MiB")
	}
	const size = 64 << 20
	img := imageOf(t, layerOfOpener(t, bigTar(size)))
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	})
	tmp := t.TempDir()
	rep := analyzeImage(t, img, analyze.Options{Strip: elf.Unneeded, TempDir: tmp})
	close(stop)
	wg.Wait()
	emptyDir(t, tmp)
	if l := rep.Layers[0]; l.ELFFiles != 0 || l.Files != 2 || l.EstimatedZstd <= 0 {
		t.Errorf("report %+v", l)
	}
	grew := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("heap grew by %d MiB at most", grew>>20)
	// The zstd estimate holds two frame buffers (one filling, one
	// encoding, whose output goes over its input) and an encoder's 16 MiB
	// history: about 50 MiB however large the files (issue 15's frames).
	if grew > 80<<20 {
		t.Errorf("heap grew by %d MiB while analyzing 2×%d MiB files", grew>>20, size>>20)
	}
}
