package compress

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
)

// Pool encodes the frames (zstd) and blocks (gzip) of every writer made
// with WithPool, at most n at a time, so that the cores stay busy whatever
// the sizes of the streams written at once: one big layer keeps every
// encoder busy as well as many small ones do.
//
// It also bounds memory. A frame takes one of n+1 slots from the moment its
// writer hands it over until its compressed bytes are written out, and a
// writer waits for a free slot (back-pressure), so the pool holds at most
// n+1 frames (each at most ZstdFrameSize uncompressed, or its compressed
// form), n encoders, and one filling frame per open writer. One slot more
// than encoders lets the next frame wait, ready, while the oldest one's
// output waits for its turn; more would only hold input no encoder is free
// to take.
//
// A Pool is safe for concurrent use and needs no Close: it starts a
// goroutine only for a frame in flight.
type Pool struct {
	tokens chan struct{} // n: frames being encoded
	slots  chan struct{} // n+1: frames handed over and not yet written

	mu    sync.Mutex
	zstd  map[int][]*zstd.Encoder // idle encoders by level
	flate map[int][]*flate.Writer // idle deflaters by level
	in    map[int][][]byte        // idle input buffers by capacity
	out   [][]byte                // idle output buffers
}

// NewPool returns a pool that encodes at most n frames at once; n = 0 means
// GOMAXPROCS. The output of a writer does not depend on n.
func NewPool(n int) (*Pool, error) {
	if n < 0 {
		return nil, fmt.Errorf("encoder pool size %d: must not be negative", n)
	}
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return &Pool{
		tokens: make(chan struct{}, n),
		slots:  make(chan struct{}, n+1),
		zstd:   map[int][]*zstd.Encoder{},
		flate:  map[int][]*flate.Writer{},
		in:     map[int][][]byte{},
	}, nil
}

// Size is the number of frames the pool encodes at once.
func (p *Pool) Size() int { return cap(p.tokens) }

// inFlight is the most frames the pool holds at once.
func (p *Pool) inFlight() int { return cap(p.slots) }

// getIn returns an empty buffer of capacity size: an idle one if there is
// one, else a new one.
func (p *Pool) getIn(size int) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if bs := p.in[size]; len(bs) > 0 {
		b := bs[len(bs)-1]
		p.in[size] = bs[:len(bs)-1]
		return b[:0]
	}
	return make([]byte, 0, size)
}

// putIn keeps b for reuse if it is a full-size buffer and fewer than the
// most frames in flight are idle; the others are left to the collector.
func (p *Pool) putIn(b []byte, size int) {
	if cap(b) != size {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.in[size]) < p.inFlight() {
		p.in[size] = append(p.in[size], b[:0])
	}
}

// getOut returns an empty buffer for the compressed form of n bytes: an
// idle one if there is one, else a new one of half their size, which
// usually holds it (layers compress to under half), so that appending
// rarely reallocates.
func (p *Pool) getOut(n int) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if k := len(p.out); k > 0 {
		b := p.out[k-1]
		p.out = p.out[:k-1]
		return b[:0]
	}
	return make([]byte, 0, n/2+4096)
}

func (p *Pool) putOut(b []byte) {
	if cap(b) == 0 || cap(b) > 2*ZstdFrameSize {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.out) < p.inFlight() {
		p.out = append(p.out, b[:0])
	}
}

// zstdEncoder returns an idle encoder for level, or a new one. Each
// encodes on the calling goroutine, one frame at a time.
func (p *Pool) zstdEncoder(level int) (*zstd.Encoder, error) {
	p.mu.Lock()
	if es := p.zstd[level]; len(es) > 0 {
		e := es[len(es)-1]
		p.zstd[level] = es[:len(es)-1]
		p.mu.Unlock()
		return e, nil
	}
	p.mu.Unlock()
	// Not zstd.WithConcurrentBlocks or a stream encoder: the frames give
	// the parallelism, and EncodeAll's output depends only on the frame.
	// WithLowerEncoderMem keeps the history at one window (8 MiB at levels
	// 1 to 9) instead of two; the output is the same.
	e, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(true),
		zstd.WithZeroFrames(true),
		zstd.WithLowerEncoderMem(true),
	)
	if err != nil {
		return nil, fmt.Errorf("creating zstd encoder: %w", err)
	}
	return e, nil
}

func (p *Pool) putZstd(level int, e *zstd.Encoder) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.zstd[level] = append(p.zstd[level], e)
}

func (p *Pool) deflater(level int) (*flate.Writer, error) {
	p.mu.Lock()
	if fs := p.flate[level]; len(fs) > 0 {
		f := fs[len(fs)-1]
		p.flate[level] = fs[:len(fs)-1]
		p.mu.Unlock()
		return f, nil
	}
	p.mu.Unlock()
	return flate.NewWriter(nil, level)
}

func (p *Pool) putDeflater(level int, f *flate.Writer) {
	f.Reset(nil)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flate[level] = append(p.flate[level], f)
}
