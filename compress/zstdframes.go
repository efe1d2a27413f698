package compress

import (
	"io"
	"sync"
)

// zstdBlock is klauspost's zstd block size: the writer hands a frame's
// input to its encoder in blocks of this size, and an encoder compresses
// one block at a time.
const zstdBlock = 128 << 10

// zstdQueue is how many blocks of input (128 KiB each) a Pool holds
// queued for its encoders, per encoder: the producer (the tar being
// written) may run that far ahead of them, so that the frame it fills and
// the one it has just finished are encoded at the same time. On
// bench/recompress.sh --input big (2 cores, a loaded machine), 32 (4 MiB
// per encoder) gave a peak RSS of 88.8 MiB and 10.85 CPU seconds, 64 gave
// 114.0 MiB and 10.74 (bench/README.md has the later figures).
const zstdQueue = 32

// outChunk is the size of the pieces a frame's compressed output is kept
// in until it is written, and of the writes to the destination. Writing
// 1 MiB at a time into the layer's spool file (through its 1 MiB
// bufio.Writer) took 1.8 to 2.2 s of write(2) on bench/recompress.sh's fat
// image, against 0.67 s for EncodeAll's 16 MiB frames; 4 MiB takes 0.81 s.
const outChunk = 4 << 20

// aheadChunks is how many outChunk pieces a frame's output may fill before
// its turn to be written comes; then its encoder gives its token to the
// frames before it and waits. Encoding ahead only has to cover the time
// the frame before drains its queued blocks (at most n*zstdQueue, about
// one piece of output), but without a cap a frame kept its whole output
// whenever the one before was held up (no token, a slow destination):
// bench/recompress.sh --input big peaked at 85 to 160 MB of RSS from run
// to run (6 to 17 pieces allocated), and 77 to 78 MB with the cap, for
// the same time (TestZstdFramesSlowDestination).
const aheadChunks = 2

// zstdWriter cuts a stream into independent zstd frames of size bytes and
// has each encoded, as it is written, by a stream encoder of its own: the
// writer hands the frame's input to the frame's goroutine in blocks of
// zstdBlock, through a queue that the pool bounds, so no frame-sized
// buffer of input exists, only the encoder's history (two windows) and the
// compressed output of the frames not yet written. Frames are written in
// order by the writer's output goroutine.
//
// The pool's limits (see Pool): a frame that has all its input takes one
// of the n slots until its output is written, and the writer waits for a
// slot before it starts the next frame; the frame being filled takes none,
// so that a writer never waits on a slot that only its own producer (or a
// writer fed by the same producer, as in dual compression) could free.
// Blocks queued take one of n*zstdQueue credits until encoded, and a block
// is encoded only with one of the n tokens, so at most n encoders work at
// once.
type zstdWriter struct {
	pool  *Pool
	level int
	size  int
	w     io.Writer

	cur *zstdFrame // the frame being filled, or nil
	blk []byte     // the block being filled, part of cur
	n   int        // bytes written to cur, blk included

	frames int // frames started

	queue  chan *zstdFrame // frames in order, to the output goroutine
	done   chan struct{}   // closed when the output goroutine ends
	failed chan struct{}   // closed on the first error of the output goroutine
	once   sync.Once
	err    error // the output goroutine's first error; read after failed or done
	closed bool
}

// zstdFrame is one frame on its way: its input blocks, its encoder's
// output, and whether it holds a slot.
type zstdFrame struct {
	in   chan []byte
	slot bool
	err  error         // the encoder's
	done chan struct{} // closed when the frame is encoded

	// The output: kept in outChunk pieces until the frame is the oldest
	// of its writer not yet written, then written straight to w by the
	// encoder, so the writer keeps only the output of frames encoded
	// ahead of their turn.
	mu   sync.Mutex
	out  [][]byte // the last piece filling
	w    io.Writer
	werr error
	turn bool       // the output goroutine has come to this frame
	wake *sync.Cond // on mu: turn set
}

func newZstdWriter(w io.Writer, p *Pool, level, size int) *zstdWriter {
	zw := &zstdWriter{
		pool:   p,
		level:  level,
		size:   size,
		w:      w,
		queue:  make(chan *zstdFrame, p.inFlight()+1),
		done:   make(chan struct{}),
		failed: make(chan struct{}),
	}
	go zw.output()
	return zw
}

func (zw *zstdWriter) Write(p []byte) (int, error) {
	if zw.closed {
		return 0, errWriteAfterClose
	}
	written := 0
	for len(p) > 0 {
		if zw.cur == nil {
			if err := zw.start(); err != nil {
				return written, err
			}
		}
		if zw.blk == nil {
			zw.blk = zw.pool.getBuf(zstdBlock)
		}
		k := min(len(p), zstdBlock-len(zw.blk), zw.size-zw.n)
		zw.blk = append(zw.blk, p[:k]...)
		p = p[k:]
		written += k
		zw.n += k
		if len(zw.blk) == zstdBlock || zw.n == zw.size {
			if err := zw.send(); err != nil {
				return written, err
			}
		}
		if zw.n == zw.size {
			if err := zw.end(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// start opens the next frame and queues it for the output goroutine.
func (zw *zstdWriter) start() error {
	select {
	case <-zw.failed:
		return zw.err
	default:
	}
	f := &zstdFrame{in: make(chan []byte, zw.pool.queued()), done: make(chan struct{})}
	f.wake = sync.NewCond(&f.mu)
	zw.cur, zw.n = f, 0
	zw.frames++
	zw.queue <- f // never blocks: the queue holds the slots and one more
	go zw.pool.encodeZstd(f, zw.level)
	return nil
}

// send hands the filling block to the frame's encoder, waiting for a
// credit.
func (zw *zstdWriter) send() error {
	b := zw.blk
	zw.blk = nil
	select {
	case zw.pool.blocks <- struct{}{}:
	case <-zw.failed:
		zw.pool.putBuf(b, zstdBlock)
		return zw.err
	}
	zw.cur.in <- b // never blocks: the channel holds all the credits
	return nil
}

// end closes the frame's input and takes a slot for it, so that at most
// the pool's slots of frames wait for their encoding or their turn to be
// written.
func (zw *zstdWriter) end() error {
	f := zw.cur
	zw.cur = nil
	// The slot before the end of the input: the output goroutine reads
	// f.slot once the frame is encoded, which it cannot be before.
	defer close(f.in)
	select {
	case zw.pool.slots <- struct{}{}:
		f.slot = true
		return nil
	case <-zw.failed:
		return zw.err
	}
}

// output writes the frames in order as they are encoded, then ends.
func (zw *zstdWriter) output() {
	defer close(zw.done)
	for f := range zw.queue {
		// Its turn: write the full pieces, and have the encoder write
		// the next ones as it fills them.
		f.mu.Lock()
		zw.writeOut(f, true)
		if zw.err == nil {
			f.w = zw.w
		}
		f.turn = true
		f.wake.Broadcast()
		f.mu.Unlock()
		<-f.done
		if zw.err == nil && f.err != nil {
			zw.fail(f.err)
		}
		if zw.err == nil && f.werr != nil {
			zw.fail(f.werr)
		}
		zw.writeOut(f, false) // the encoder is done: no lock
		if f.slot {
			<-zw.pool.slots
		}
	}
}

// writeOut writes f's output pieces (but the last one if full is set and
// it is not full) and gives them back to the pool; nothing is written
// after an error.
func (zw *zstdWriter) writeOut(f *zstdFrame, full bool) {
	keep := 0
	if full && len(f.out) > 0 && len(f.out[len(f.out)-1]) < outChunk {
		keep = 1
	}
	for _, c := range f.out[:len(f.out)-keep] {
		if zw.err == nil {
			if _, err := zw.w.Write(c); err != nil {
				zw.fail(err)
			}
		}
		zw.pool.putBuf(c, outChunk)
	}
	f.out = append(f.out[:0], f.out[len(f.out)-keep:]...)
}

func (zw *zstdWriter) fail(err error) {
	zw.once.Do(func() {
		zw.err = err
		close(zw.failed)
	})
}

// Close ends the last frame (an empty stream still gets one, empty),
// waits until every frame is written, and returns the first error. It
// does not close the underlying writer.
func (zw *zstdWriter) Close() error {
	if zw.closed {
		<-zw.done
		return zw.err
	}
	zw.closed = true
	var err error
	if zw.frames == 0 {
		err = zw.start() // nothing written: one empty frame
	}
	if zw.cur != nil {
		if len(zw.blk) > 0 {
			if e := zw.send(); err == nil {
				err = e
			}
		}
		if zw.blk != nil {
			zw.pool.putBuf(zw.blk, zstdBlock)
			zw.blk = nil
		}
		if e := zw.end(); err == nil {
			err = e
		}
	}
	close(zw.queue)
	<-zw.done
	if zw.err != nil {
		return zw.err
	}
	return err
}

// encodeZstd encodes frame f as its blocks come, one block at a time with
// one of the pool's tokens, with an encoder of its own from the first
// block to the end of the frame.
func (p *Pool) encodeZstd(f *zstdFrame, level int) {
	defer close(f.done)
	enc, err := p.zstdEncoder(level)
	if err != nil {
		f.err = err
		for b := range f.in {
			p.putBuf(b, zstdBlock)
			<-p.blocks
		}
		return
	}
	out := &chunkWriter{p: p, f: f}
	enc.Reset(out)
	// A token for as long as blocks are queued (at most zstdQueue in a
	// row), not for each: an encoder that keeps its core keeps its tables
	// in its caches.
	for b := range f.in {
		p.tokens <- struct{}{}
		for i := 0; ; i++ {
			if f.err == nil {
				_, f.err = enc.Write(b)
			}
			p.putBuf(b, zstdBlock)
			<-p.blocks
			if i == zstdQueue || len(f.in) == 0 {
				break
			}
			b = <-f.in
		}
		<-p.tokens
	}
	p.tokens <- struct{}{}
	if err := enc.Close(); f.err == nil {
		f.err = err
	}
	<-p.tokens
	enc.Reset(nil)
	p.putZstd(level, enc)
}

// chunkWriter takes a frame's compressed output into outChunk pieces, and
// once the frame's turn has come writes each to the destination as soon
// as it is full (few large writes, not one per block). It never fails: the
// output goroutine reports the destination's error.
type chunkWriter struct {
	p *Pool
	f *zstdFrame
}

func (c *chunkWriter) Write(b []byte) (int, error) {
	n := len(b)
	f := c.f
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(b) > 0 {
		k := len(f.out) - 1
		if k < 0 || len(f.out[k]) == outChunk {
			if !f.turn && len(f.out) >= aheadChunks {
				// Encoded far enough ahead of its turn: give the core
				// to the frames before it (the oldest one needs it to
				// be written) and wait for the turn.
				<-c.p.tokens
				for !f.turn {
					f.wake.Wait()
				}
				f.mu.Unlock()
				c.p.tokens <- struct{}{}
				f.mu.Lock()
				continue
			}
			f.out = append(f.out, c.p.getBuf(outChunk))
			k++
		}
		m := min(len(b), outChunk-len(f.out[k]))
		f.out[k] = append(f.out[k], b[:m]...)
		b = b[m:]
		if f.w != nil && len(f.out[k]) == outChunk {
			if f.werr == nil {
				_, f.werr = f.w.Write(f.out[k])
			}
			f.out[k] = f.out[k][:0]
		}
	}
	return n, nil
}
