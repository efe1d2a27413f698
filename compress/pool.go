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
// It also bounds memory. A frame takes one of n slots from the moment its
// writer hands it over until its compressed bytes are written out, and a
// writer waits for a free slot (back-pressure). Input and compressed
// output share one kind of buffer (a frame plus its worst-case growth). A
// zstd frame's output goes over its input in its own buffer, so for w open
// writers the pool holds at most n+w buffers: one filling per writer and
// one per slot; plus n encoders, each with its history (zstd: as much as a
// frame). gzip blocks (GzipBlockSize, small) get a second buffer for their
// output while they are encoded: 2n+w. Buffers are kept for reuse, so a
// long stream leaves no garbage behind it (garbage would let the Go heap
// grow to twice what is live before it is collected).
//
// A Pool is safe for concurrent use and needs no Close: it starts a
// goroutine only for a frame in flight.
type Pool struct {
	tokens chan struct{} // n: frames being encoded
	slots  chan struct{} // n: frames handed over and not yet written

	mu    sync.Mutex
	zstd  map[int][]*zstd.Encoder // idle encoders by level
	flate map[int][]*flate.Writer // idle deflaters by level
	bufs  map[int][][]byte        // idle buffers by frame size
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
		slots:  make(chan struct{}, n),
		zstd:   map[int][]*zstd.Encoder{},
		flate:  map[int][]*flate.Writer{},
		bufs:   map[int][][]byte{},
	}, nil
}

// Size is the number of frames the pool encodes at once.
func (p *Pool) Size() int { return cap(p.tokens) }

// inFlight is the most frames the pool holds at once.
func (p *Pool) inFlight() int { return cap(p.slots) }

// bufCap is the capacity of a buffer for frames of size bytes: the frame,
// or its compressed form at its largest (zstd: 3 bytes a 128 KiB block
// and 22 bytes a frame; deflate: 5 bytes a 64 KiB stored block), with room
// to spare, so that an encoder never has to grow it.
func bufCap(size int) int { return size + size>>10 + 4096 }

// getBuf returns an empty buffer for frames of size bytes: an idle one if
// there is one, else a new one.
func (p *Pool) getBuf(size int) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if bs := p.bufs[size]; len(bs) > 0 {
		b := bs[len(bs)-1]
		p.bufs[size] = bs[:len(bs)-1]
		return b[:0]
	}
	return make([]byte, 0, bufCap(size))
}

// outBuf returns an empty buffer for the compressed form of n bytes of a
// stream cut into frames of size bytes: a pool buffer if the frame is
// bigger than smallFrame, else one of its own.
func (p *Pool) outBuf(n, size int) []byte {
	if n > smallFrame {
		return p.getBuf(size)
	}
	return make([]byte, 0, bufCap(n))
}

// putBuf keeps b for reuse, if it is one of getBuf's and fewer than the
// most the pool can need are idle.
func (p *Pool) putBuf(b []byte, size int) {
	if cap(b) != bufCap(size) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.bufs[size]) < 2*p.Size()+2 {
		p.bufs[size] = append(p.bufs[size], b[:0])
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
	//
	// Not zstd.WithLowerEncoderMem either, although the output would be
	// the same: it keeps the encoder's history at one window (8 MiB) plus
	// a block, so past the first 8 MiB of a frame every 128 KiB block
	// moves 8 MiB down (25 GB of memmove on an 815 MB layer). Recompressing
	// that layer (bench/recompress.sh --input big) took 12.4 and 13.8 CPU
	// seconds with it, 10.7 and 10.4 without, and 11.7 for main's single
	// stream; peak RSS 117 MiB with it, 132 MiB without. Without it the
	// history is two windows (16 MiB), which holds a whole frame: no move.
	e, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(true),
		zstd.WithZeroFrames(true),
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
