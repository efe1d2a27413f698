// Package gcpace sets the Go garbage collector's soft memory limit so that
// a run's peak memory stays near what is live, within the budget issue 15
// sets for layerslim: 96 MiB plus 24 MiB per core.
//
// Why it is needed: with the default GOGC=100 the heap grows to twice what
// was live after the last collection before the next one starts. A rewrite
// keeps about 100 MiB live on 2 cores (its zstd frames in flight and the
// encoders' history, see compress.Pool) and makes a few hundred MiB of
// short-lived garbage (tar headers, ELF spools), so its peak RSS was about
// 210 MiB, twice what it uses. The frames are reused, not garbage, so no
// change to the data path brings that down further; the collector must run
// earlier.
//
// How: the limit is the budget less what the runtime's limit does not see
// (the binary's pages), so while what is live stays well below it nothing
// changes (the collector runs at GOGC=100), and when the heap nears it the
// collector runs sooner. A limit below what is live would make the collector
// run all the time, so after every collection the limit is raised to 5/4 of
// what is then live (and the runtime's other memory) if that is more: a big
// image on a big machine costs some more collections (as GOGC=25 would), but
// never a collector that runs back to back.
//
// GOMEMLIMIT or GOGC in the environment turn it off: the user decides.
package gcpace

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

const (
	mib = 1 << 20
	// outside is what a process's RSS holds beyond the memory the
	// runtime's limit counts: the binary's text and data pages.
	outside = 16 * mib
)

// Budget is issue 15's memory budget for n cores.
func Budget(n int) int64 { return 96*mib + 24*mib*int64(n) }

var once sync.Once

// Start sets the limit for GOMAXPROCS cores and keeps it above what is
// live, unless GOMEMLIMIT or GOGC is set. It returns at once; calling it
// again does nothing.
func Start() {
	if os.Getenv("GOMEMLIMIT") != "" || os.Getenv("GOGC") != "" {
		return
	}
	once.Do(func() {
		floor := Budget(runtime.GOMAXPROCS(0)) - outside
		debug.SetMemoryLimit(floor)
		arm(newPacer(floor))
	})
}

type pacer struct {
	floor   int64
	samples []metrics.Sample
	stop    atomic.Bool // tests: no more rounds
}

func newPacer(floor int64) *pacer {
	return &pacer{floor: floor, samples: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}}
}

// arm has p.after run after the next collection: a finalizer runs once the
// collector has found its object unreachable.
func arm(p *pacer) {
	sentinel := new([16]byte)
	runtime.SetFinalizer(sentinel, func(*[16]byte) { p.after() })
}

// after sets the limit to max(floor, live*5/4 + the runtime's memory that
// is not heap) and arms itself again.
func (p *pacer) after() {
	if p.stop.Load() {
		return
	}
	metrics.Read(p.samples)
	v := func(i int) int64 {
		if p.samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(p.samples[i].Value.Uint64())
	}
	live := v(0)
	other := v(1) - v(2) - v(3) - v(4) - v(5) // stacks, GC metadata, ...
	debug.SetMemoryLimit(max(p.floor, live+live/4+max(other, 0)))
	arm(p)
}
