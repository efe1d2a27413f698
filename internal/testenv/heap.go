package testenv

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// PeakHeap runs f and returns the largest HeapInuse seen while it ran,
// sampled every 5 ms after a GC. Tests use it to show that memory does not
// grow with the size of what is streamed.
func PeakHeap(f func()) uint64 {
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	f()
	close(stop)
	wg.Wait()
	return peak.Load()
}
