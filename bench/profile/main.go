// Command profile runs one layerslim command line (the same cobra tree as
// cmd/layerslim) under the Go profiler:
//
//	go run ./bench/profile -cpuprofile cpu.prof -heapprofile heap.prof -- \
//	  recompress oci:bench/out/big:big oci:/tmp/out:big
//	go tool pprof -top cpu.prof
//
// -heapprofile is written when HeapInuse is at its highest (sampled every
// 20 ms), so it shows what is live at the peak rather than at the end.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"sync"
	"syscall"
	"time"

	"github.com/layerslim/layerslim/internal/cli"
	"github.com/layerslim/layerslim/internal/gcpace"
)

func main() {
	cpu := flag.String("cpuprofile", "", "write a CPU profile here")
	heap := flag.String("heapprofile", "", "write a heap profile taken at the highest HeapInuse here")
	allocs := flag.String("allocprofile", "", "write a heap profile at the end here (alloc_space: every allocation of the run)")
	tr := flag.String("trace", "", "write an execution trace here (go tool trace; -pprof=sync shows where goroutines wait)")
	flag.Parse()
	if *tr != "" {
		f, err := os.Create(*tr)
		if err != nil {
			fail(err)
		}
		if err := trace.Start(f); err != nil {
			fail(err)
		}
		defer trace.Stop()
	}
	if *cpu != "" {
		f, err := os.Create(*cpu)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var peak uint64
	var best bytes.Buffer
	if *heap != "" {
		wg.Go(func() {
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak+1<<20 {
					peak = ms.HeapInuse
					best.Reset()
					_ = pprof.Lookup("heap").WriteTo(&best, 0)
				}
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	gcpace.Start() // as cmd/layerslim does
	cmd := cli.New()
	cmd.SetArgs(flag.Args())
	err := cmd.ExecuteContext(ctx)
	cancel()
	close(stop)
	wg.Wait()
	if *cpu != "" {
		pprof.StopCPUProfile()
	}
	if *allocs != "" {
		f, err := os.Create(*allocs)
		if err != nil {
			fail(err)
		}
		runtime.GC() // the profile holds what was allocated up to the last GC
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			fail(err)
		}
		f.Close()
	}
	if *heap != "" {
		if err := os.WriteFile(*heap, best.Bytes(), 0o644); err != nil {
			fail(err)
		}
		fmt.Fprintf(os.Stderr, "profile: peak HeapInuse %d MiB\n", peak>>20)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "profile:", err)
	os.Exit(1)
}
