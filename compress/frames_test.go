package compress_test

import (
	"bytes"
	stdgzip "compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/internal/testenv"
)

// TestFramesDeterministic: with many frames in flight, the bytes are the
// same whatever the pool size, whether the pool is shared with other
// writers at work, and however the input was cut into Writes.
func TestFramesDeterministic(t *testing.T) {
	data := mixedData(3<<20+12345, 21)
	other := mixedData(2<<20, 22)
	tests := []struct {
		codec compress.Codec
		level int
		frame int
	}{
		{compress.Zstd, 1, 64 << 10},
		{compress.Zstd, 3, 64 << 10},
		{compress.Zstd, 3, 1 << 20},
		{compress.Zstd, 7, 256 << 10},
		{compress.Gzip, 1, 64 << 10},
		{compress.Gzip, 6, 64 << 10},
		{compress.Gzip, 9, 256 << 10},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/level=%d/frame=%d", tt.codec, tt.level, tt.frame), func(t *testing.T) {
			opts := []compress.WriterOption{compress.WithLevel(tt.level), compress.WithFrameSize(tt.frame)}
			want := compressed(t, tt.codec, data, append(opts, compress.WithConcurrency(1))...)
			if got, err := decompressed(tt.codec, want); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("round trip: %d bytes, %v; want the %d bytes written", len(got), err, len(data))
			}
			for _, n := range []int{2, 8} {
				if got := compressed(t, tt.codec, data, append(opts, compress.WithConcurrency(n))...); !bytes.Equal(got, want) {
					t.Errorf("concurrency %d: %d bytes (first difference at %d), concurrency 1: %d bytes", n, len(got), firstDiff(got, want), len(want))
				}
			}
			// Three writers at once on one pool of 2, one of them in
			// small pieces.
			pool, err := compress.NewPool(2)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			outs := make([]bytes.Buffer, 3)
			errs := make([]error, 3)
			for i := range 3 {
				wg.Go(func() {
					w, err := compress.NewWriter(&outs[i], tt.codec, append(opts, compress.WithPool(pool))...)
					if err != nil {
						errs[i] = err
						return
					}
					in := data
					if i == 1 {
						in = other
					}
					if i == 2 {
						errs[i] = writeChunks(w, in, 1000)
					} else {
						_, errs[i] = w.Write(in)
					}
					if err := w.Close(); errs[i] == nil {
						errs[i] = err
					}
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			for _, i := range []int{0, 2} {
				if got := outs[i].Bytes(); !bytes.Equal(got, want) {
					t.Errorf("shared pool, writer %d: %d bytes (first difference at %d), alone: %d bytes", i, len(got), firstDiff(got, want), len(want))
				}
			}
			if got, err := decompressed(tt.codec, outs[1].Bytes()); err != nil || !bytes.Equal(got, other) {
				t.Errorf("shared pool, writer 1: round trip %d bytes, %v", len(got), err)
			}
		})
	}
}

// TestFramesDefaultSizeDeterministic runs the real frame and block sizes
// over more than two frames at concurrency 1, 2 and 8.
func TestFramesDefaultSizeDeterministic(t *testing.T) {
	if testing.Short() {
		t.Skip("20 MiB of input")
	}
	data := mixedData(2*compress.ZstdFrameSize+3<<20, 23)
	for _, c := range []compress.Codec{compress.Zstd, compress.Gzip} {
		want := compressed(t, c, data, compress.WithConcurrency(1))
		for _, n := range []int{2, 8} {
			if got := compressed(t, c, data, compress.WithConcurrency(n)); !bytes.Equal(got, want) {
				t.Errorf("%s: concurrency %d: %d bytes (first difference at %d), concurrency 1: %d bytes", c, n, len(got), firstDiff(got, want), len(want))
			}
		}
		if got, err := decompressed(c, want); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: round trip %d bytes, %v", c, len(got), err)
		}
	}
}

// TestFramesEdges: inputs of exactly whole frames, one byte more or less,
// and nothing, decode to what was written, with the frame count the zstd
// tool sees.
func TestFramesEdges(t *testing.T) {
	const frame = 64 << 10
	for _, n := range []int{0, 1, frame - 1, frame, frame + 1, 3 * frame, 3*frame + 1} {
		data := mixedData(n, uint64(n))
		for _, c := range []compress.Codec{compress.Zstd, compress.Gzip} {
			blob := compressed(t, c, data, compress.WithFrameSize(frame), compress.WithConcurrency(3))
			if got, err := decompressed(c, blob); err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s, %d bytes: round trip %d bytes, %v", c, n, len(got), err)
			}
			if c == compress.Zstd {
				want := max(1, (n+frame-1)/frame)
				if got := zstdFrames(t, blob); got >= 0 && got != want {
					t.Errorf("zstd, %d bytes: %d frames, want %d", n, got, want)
				}
			}
		}
	}
}

// zstdFrames counts the frames of blob with `zstd -l`, or returns -1
// without the zstd tool.
func zstdFrames(t *testing.T, blob []byte) int {
	t.Helper()
	if _, err := exec.LookPath("zstd"); err != nil {
		return -1
	}
	f := filepath.Join(t.TempDir(), "b.zst")
	if err := os.WriteFile(f, blob, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("zstd", "-l", f).CombinedOutput()
	if err != nil {
		t.Fatalf("zstd -l: %v\n%s", err, out)
	}
	// Frames  Skips  Compressed  Uncompressed  Ratio  Check  Filename
	m := regexp.MustCompile(`(?m)^\s*(\d+)\s+0\s`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("zstd -l: no frame count in\n%s", out)
	}
	k, _ := strconv.Atoi(string(m[1]))
	return k
}

// TestFramesReadByOtherDecoders: the zstd tool reads the frames as one
// stream, and gzip output is one member that Go's own gzip reader reads
// with multistream off, as does pigz.
func TestFramesReadByOtherDecoders(t *testing.T) {
	data := mixedData(5<<20+7, 24)
	z := compressed(t, compress.Zstd, data, compress.WithFrameSize(1<<20))
	g := compressed(t, compress.Gzip, data, compress.WithFrameSize(256<<10))

	zr, err := stdgzip.NewReader(bytes.NewReader(g))
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false)
	if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, data) {
		t.Errorf("compress/gzip, one member: %d bytes, %v; want %d bytes", len(got), err, len(data))
	}

	for _, tool := range []struct {
		name string
		args []string
		in   []byte
	}{
		{"zstd", []string{"-dc"}, z},
		{"pigz", []string{"-dc"}, g},
		{"gzip", []string{"-dc"}, g},
	} {
		if _, err := exec.LookPath(tool.name); err != nil {
			t.Logf("%s not installed", tool.name)
			continue
		}
		cmd := exec.Command(tool.name, tool.args...)
		cmd.Stdin = bytes.NewReader(tool.in)
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			t.Errorf("%s: %v\n%s", tool.name, err, stderr.Bytes())
			continue
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Errorf("%s: %d bytes, want the %d written", tool.name, out.Len(), len(data))
		}
	}
}

// blockingWriter blocks every Write until release is closed.
type blockingWriter struct {
	release chan struct{}
	buf     bytes.Buffer
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	<-b.release
	return b.buf.Write(p)
}

// TestFramesBackPressure: while the destination does not take bytes, a
// writer accepts at most the frames the pool holds in flight plus the one
// it fills, then Write waits. Memory stays bounded whatever the stream.
func TestFramesBackPressure(t *testing.T) {
	const frame = 64 << 10
	for _, c := range []compress.Codec{compress.Zstd, compress.Gzip} {
		t.Run(string(c), func(t *testing.T) {
			pool, err := compress.NewPool(2)
			if err != nil {
				t.Fatal(err)
			}
			dst := &blockingWriter{release: make(chan struct{})}
			w, err := compress.NewWriter(dst, c, compress.WithPool(pool), compress.WithFrameSize(frame))
			if err != nil {
				t.Fatal(err)
			}
			data := mixedData(64*frame, 25)
			var accepted atomic.Int64
			done := make(chan error, 1)
			go func() {
				for p := data; len(p) > 0; p = p[frame/4:] {
					if _, err := w.Write(p[:frame/4]); err != nil {
						done <- err
						return
					}
					accepted.Add(frame / 4)
				}
				done <- nil
			}()
			// Wait until Write stops making progress.
			last := int64(-1)
			for accepted.Load() != last {
				last = accepted.Load()
				time.Sleep(100 * time.Millisecond)
			}
			// Size() frames in flight, one filling.
			if limit := int64(pool.Size()+1) * frame; last > limit {
				t.Errorf("accepted %d bytes while the destination was blocked, want at most %d (%d frames in flight + 1 filling)", last, limit, pool.Size())
			}
			if last < int64(pool.Size())*frame {
				t.Errorf("accepted only %d bytes, want at least %d frames", last, pool.Size())
			}
			close(dst.release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got, err := decompressed(c, dst.buf.Bytes()); err != nil || !bytes.Equal(got, data) {
				t.Errorf("round trip: %d bytes, %v", len(got), err)
			}
		})
	}
}

// TestFramesWriteErrorStopsWriter: once the destination fails, Write
// returns its error rather than taking more frames, and Close does too.
func TestFramesWriteErrorStopsWriter(t *testing.T) {
	boom := errors.New("disk full")
	const frame = 64 << 10
	for _, c := range []compress.Codec{compress.Zstd, compress.Gzip} {
		w, err := compress.NewWriter(&failingWriter{after: 10, err: boom}, c, compress.WithFrameSize(frame), compress.WithConcurrency(2))
		if err != nil {
			t.Fatal(err)
		}
		data := mixedData(frame, 26)
		var werr error
		for range 1000 {
			if _, werr = w.Write(data); werr != nil {
				break
			}
		}
		if !errors.Is(werr, boom) {
			t.Errorf("%s: Write error after 1000 frames: %v, want %v", c, werr, boom)
		}
		if err := w.Close(); !errors.Is(err, boom) {
			t.Errorf("%s: Close() = %v, want %v", c, err, boom)
		}
	}
}

func TestNewPool(t *testing.T) {
	if _, err := compress.NewPool(-1); err == nil {
		t.Error("NewPool(-1): no error")
	}
	p, err := compress.NewPool(3)
	if err != nil || p.Size() != 3 {
		t.Errorf("NewPool(3) = size %d, %v", p.Size(), err)
	}
	if _, err := compress.NewWriter(io.Discard, compress.Zstd, compress.WithPool(nil)); err == nil {
		t.Error("WithPool(nil): no error")
	}
}

// TestZstdFramesReference: the frames are byte for byte what klauspost's
// stream encoder writes for each frame's bytes on its own (Reset, Write,
// Close: no content size in the header but for a frame of one block), for
// frames of one block and more, on incompressible input, on input that
// alternates raw and compressed blocks, and on zeros; at concurrency 2, in
// Writes of odd sizes.
func TestZstdFramesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	mixed := func(n int) []byte {
		b := random(n)
		for i := 0; i < n; i += 256 << 10 {
			clear(b[i:min(n, i+128<<10)])
		}
		return b
	}
	inputs := map[string][]byte{
		"random": random(5<<20 + 3),
		"mixed":  mixed(5<<20 + 200<<10),
		"zeros":  make([]byte, 3<<20+100<<10),
		"text":   mixedData(4<<20+1, 33),
	}
	for name, data := range inputs {
		for _, frame := range []int{100 << 10, 128 << 10, 128<<10 + 1, 1 << 20} {
			for _, level := range []int{1, 3, 7} {
				enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
					zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true), zstd.WithZeroFrames(true))
				if err != nil {
					t.Fatal(err)
				}
				var want bytes.Buffer
				for p := data; len(p) > 0; {
					k := min(len(p), frame)
					enc.Reset(&want)
					if _, err := enc.Write(p[:k]); err != nil {
						t.Fatal(err)
					}
					if err := enc.Close(); err != nil {
						t.Fatal(err)
					}
					p = p[k:]
				}
				var out bytes.Buffer
				w, err := compress.NewWriter(&out, compress.Zstd, compress.WithLevel(level), compress.WithFrameSize(frame), compress.WithConcurrency(2))
				if err != nil {
					t.Fatal(err)
				}
				if err := writeChunks(w, data, 77777); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if got := out.Bytes(); !bytes.Equal(got, want.Bytes()) {
					t.Errorf("%s, frames of %d, level %d: %d bytes (first difference at %d), stream encoder: %d bytes", name, frame, level, len(got), firstDiff(got, want.Bytes()), want.Len())
				}
			}
		}
	}
}

// TestZstdFramesMemory: a writer on a pool of 2 holds at most three
// encoders (the frame it fills and two that have their input), each with
// 16 MiB of history, the pool's queued blocks (2 x 32 x 128 KiB) and the
// output of frames encoded ahead of their turn: about 60 MiB and some
// tables, with frames of 32 MiB. EncodeAll took a frame-sized buffer per
// frame in flight: 80 MiB with frames of 16 MiB.
func TestZstdFramesMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("96 MiB of input")
	}
	chunk := mixedData(1<<20, 34)
	pool, err := compress.NewPool(2)
	if err != nil {
		t.Fatal(err)
	}
	peak := testenv.PeakHeap(func() {
		w, err := compress.NewWriter(io.Discard, compress.Zstd, compress.WithPool(pool))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 * compress.ZstdFrameSize / len(chunk) {
			chunk[0] = byte(i)
			if _, err := w.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("peak heap %d MiB", peak>>20)
	if peak > 80<<20 {
		t.Errorf("peak heap %d MiB, want at most 80 (3 histories of 16 MiB, 8 MiB of queued blocks, output, and tables)", peak>>20)
	}
}

// Frames encoded ahead of their turn to be written keep at most two 4 MiB
// pieces of output each, then wait: when the destination is slow to take
// the end of a frame (the write of its last piece), the frames after it
// do not keep their whole output. Without the wait they kept all of it
// (32 MiB each of incompressible input here): 122 MiB of peak heap
// against 40.
func TestZstdFramesSlowDestination(t *testing.T) {
	if testing.Short() {
		t.Skip("128 MiB of input")
	}
	data := make([]byte, 1<<20)
	rng := rand.NewChaCha8([32]byte{7})
	pool, err := compress.NewPool(2)
	if err != nil {
		t.Fatal(err)
	}
	dst := &stallWriter{stall: 2 * time.Second}
	peak := testenv.PeakHeap(func() {
		w, err := compress.NewWriter(dst, compress.Zstd, compress.WithPool(pool))
		if err != nil {
			t.Fatal(err)
		}
		for range 4 * compress.ZstdFrameSize / len(data) {
			rng.Read(data)
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("peak heap %d MiB", peak>>20)
	if peak > 80<<20 {
		t.Errorf("peak heap %d MiB with a slow destination, want at most 80 (as TestZstdFramesMemory)", peak>>20)
	}
}

// stallWriter discards what it is given, but the first write shorter than
// a full 4 MiB piece (the end of the first frame) takes stall.
type stallWriter struct {
	stall time.Duration
	once  sync.Once
}

func (s *stallWriter) Write(p []byte) (int, error) {
	if len(p) < 4<<20 {
		s.once.Do(func() { time.Sleep(s.stall) })
	}
	return len(p), nil
}
