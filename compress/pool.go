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
// It also bounds memory, whatever the length of the streams. A gzip block
// takes one of n slots from the moment its writer hands it over until its
// compressed bytes are written out, and a writer waits for a free slot
// (back-pressure); input and output share one kind of buffer (a block
// plus its worst-case growth): for w open writers at most 2n+w of them.
// A zstd frame is encoded as it is written, by a stream encoder of its own
// (see zstdWriter): its input goes to the encoder in blocks of 128 KiB, of
// which the pool holds at most n*zstdQueue queued, and once a frame has
// all its input it takes a slot until its output is written. So for w
// open zstd writers the pool holds at most n+w encoders, each with its
// history (two windows: 16 MiB at the default level), n*zstdQueue blocks,
// and the compressed output of the frames encoded ahead of their turn to
// be written, at most two 4 MiB pieces each (the oldest frame of a writer
// writes straight through).
// Buffers are kept for reuse, so a long stream leaves no garbage behind it
// (garbage would let the Go heap grow to twice what is live before it is
// collected).
//
// A Pool is safe for concurrent use and needs no Close: it starts a
// goroutine only for a frame in flight.
type Pool struct {
	tokens chan struct{} // n: gzip blocks or zstd blocks being encoded
	slots  chan struct{} // n: frames handed over and not yet written
	blocks chan struct{} // n*zstdQueue: zstd input blocks queued

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
		blocks: make(chan struct{}, n*zstdQueue),
		zstd:   map[int][]*zstd.Encoder{},
		flate:  map[int][]*flate.Writer{},
		bufs:   map[int][][]byte{},
	}, nil
}

// Size is the number of frames the pool encodes at once.
func (p *Pool) Size() int { return cap(p.tokens) }

// inFlight is the most frames the pool holds at once.
func (p *Pool) inFlight() int { return cap(p.slots) }

// queued is the most zstd input blocks the pool holds queued at once.
func (p *Pool) queued() int { return cap(p.blocks) }

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
	keep := 2*p.Size() + 2
	if size == zstdBlock || size == outChunk {
		// zstd input blocks and output pieces: keep up to 16 MiB of
		// each per encoder.
		keep = p.Size() * (16 << 20) / size
	}
	if len(p.bufs[size]) < keep {
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
	// A stream encoder that encodes on the calling goroutine (concurrency
	// 1, not zstd.WithConcurrentBlocks): the frames give the parallelism,
	// and its output depends only on the frame's bytes, not on how they
	// were cut into Writes. Reset with no content size, so every frame's
	// header is the same whatever its length (but a frame of at most one
	// block, encoded in one step, which gets its size). The window is the
	// level's own (8 MiB from level 3 up): see ZstdFrameSize.
	//
	// Not zstd.WithLowerEncoderMem: it keeps the encoder's history at one
	// window plus a block, so past the first window every block moves a
	// window down (25 GB of memmove on an 815 MB layer; +15% CPU
	// measured). Without it the history is two windows (16 MiB) and moves
	// a window down once per window.
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
