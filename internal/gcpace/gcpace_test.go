package gcpace

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TestLimitFollowsLive: with more live than the floor, the limit is raised
// after a collection to 5/4 of it and more, so the collector does not run
// back to back; when the live heap is gone, it comes back to the floor.
func TestLimitFollowsLive(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	const floor = 32 << 20
	debug.SetMemoryLimit(floor)
	p := newPacer(floor)
	defer p.stop.Store(true)
	arm(p)
	live := make([][]byte, 0, 64)
	for range 64 {
		live = append(live, make([]byte, 1<<20)) // 64 MiB live, noscan
	}
	limit := waitLimit(t, func(l int64) bool { return l >= 64<<20*5/4 })
	if limit < 64<<20*5/4 {
		t.Fatalf("limit %d MiB with 64 MiB live, want at least 80", limit>>20)
	}
	runtime.KeepAlive(live)
	live = nil
	if limit := waitLimit(t, func(l int64) bool { return l == floor }); limit != floor {
		t.Fatalf("limit %d MiB after the live heap is gone, want the floor, 32", limit>>20)
	}
}

// waitLimit collects until ok(limit) or a second passes, and returns the
// limit.
func waitLimit(t *testing.T, ok func(int64) bool) int64 {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the finalizer runs on its own goroutine
		l := debug.SetMemoryLimit(-1)
		if ok(l) || time.Now().After(deadline) {
			return l
		}
	}
}

func TestBudget(t *testing.T) {
	if got := Budget(2); got != 144<<20 {
		t.Fatalf("Budget(2) = %d MiB, want 144", got>>20)
	}
}
