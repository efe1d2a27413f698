package compress

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
)

// ZstdFrameSize is the uncompressed size of every zstd frame NewWriter
// writes but the last. The frames are independent, so they are encoded in
// parallel; a stream of frames is one valid zstd stream to every decoder
// (the zstd tool, containerd, containers/image, klauspost's). Each frame is
// encoded as it is written, by a stream encoder of its own (see
// zstdWriter), so its size costs no buffer: memory is the encoder's
// history (two windows) and the compressed output of frames encoded ahead
// of their turn.
//
// Chosen from measurements (TestFrameSizeFigures, LAYERSLIM_FRAME_INPUT set
// to the layer of bench/recompress.sh --input big: 815 MB of tar, mostly
// .deb files, compilers and libraries), zstd level 3 (klauspost, 8 MiB
// window), against one zstd stream for the whole layer:
//
//	 8 MiB frames: +1.74% bytes
//	16 MiB frames: +0.72%
//	32 MiB frames: +0.43% (1.0027 x skopeo's 360169951 bytes)
//	64 MiB frames: +0.05%
//
// Each frame loses what its first bytes could have taken from the window
// before them, and this content has much redundancy at that distance. The
// window is the level's own, 8 MiB: one stream with a 4 MiB window gives
// +0.85%, 16 MiB frames with a 4 MiB window +1.33%, with a 16 MiB window
// +0.70% for twice the history (measured with EncodeAll frames). 32 MiB
// keeps the bytes well within issue 15's 1.005 x skopeo's (16 MiB frames
// gave 1.0055 x on this layer), and a 555 MB layer still gives 17 frames.
// 64 MiB would save more here, but a frame encoded ahead of its turn (the
// destination slow) holds up to its whole compressed output, and a layer
// gives half as many frames.
//
// Changing it changes every zstd digest layerslim writes.
const ZstdFrameSize = 32 << 20

// GzipBlockSize is the uncompressed size of every deflate block run but
// the last in NewWriter's gzip output: each is compressed on its own, with
// the 32 KiB before it as dictionary (as klauspost/pgzip and pigz do), and
// ends on a byte boundary (a sync flush), so blocks are encoded in
// parallel into one gzip member. deflate's window is 32 KiB, so the cost
// of cutting is only the restarted Huffman tables and the 5-byte flush
// marker. On the layer of the ZstdFrameSize figures, gzip level 6, against
// one klauspost gzip stream: 256 KiB blocks +0.007% bytes, 1 MiB -0.004%,
// 4 MiB -0.008% (each block gets Huffman tables of its own). 1 MiB keeps a
// block cheap to hold in flight. Changing it changes every gzip digest
// layerslim writes.
const GzipBlockSize = 1 << 20

// smallFrame is how far a writer's buffer grows before it takes a
// full-size one from the pool.
const smallFrame = 256 << 10

// gzipDict is how much of the previous block a gzip block may refer to:
// deflate's whole window.
const gzipDict = 32 << 10

// frame is one piece of a stream on its way through a pool.
type frame struct {
	buf  []byte // the pool buffer that holds in, if it is one
	in   []byte
	dict []byte // gzip: the bytes before in, at most gzipDict
	last bool   // gzip: the final block
	out  []byte
	err  error
	done chan struct{}
}

// frameCodec compresses one frame. It is called on a pool goroutine.
type frameCodec interface {
	encode(p *Pool, f *frame, size int)
	// inputOffset is where a frame's input starts in a pool buffer, so
	// that the codec may write its output over the input it has read.
	inputOffset(size int) int
	// header and trailer are written before the first and after the last
	// frame; trailer gets the uncompressed size and its CRC-32.
	header() []byte
	trailer(n int64, crc uint32) []byte
	// final says whether Close must hand over a frame (possibly empty)
	// when n bytes were written and the buffer is empty.
	final(n int64) bool
}

// frameWriter cuts a stream into frames of size bytes, has its pool
// encode them, and writes the results in order from its own goroutine.
type frameWriter struct {
	pool  *Pool
	codec frameCodec
	size  int
	w     io.Writer

	buf  []byte
	base []byte // the pool buffer buf is in, if it is one
	dict []byte // gzip: the last 32 KiB of the previous block
	n    int64
	crc  uint32 // gzip: of all bytes written
	gzip bool   // blocks refer to the one before, and the trailer needs a CRC

	queue  chan *frame
	done   chan struct{} // closed when the output goroutine ends
	failed chan struct{} // closed on the first error of the output goroutine
	once   sync.Once
	err    error // the output goroutine's first error; read after failed or done
	closed bool
}

func newFrameWriter(w io.Writer, p *Pool, c frameCodec, size int, gzip bool) *frameWriter {
	fw := &frameWriter{
		pool:   p,
		codec:  c,
		size:   size,
		w:      w,
		gzip:   gzip,
		queue:  make(chan *frame, p.inFlight()),
		done:   make(chan struct{}),
		failed: make(chan struct{}),
	}
	go fw.output()
	return fw
}

func (fw *frameWriter) Write(p []byte) (int, error) {
	if fw.closed {
		return 0, errWriteAfterClose
	}
	if fw.gzip {
		fw.crc = crc32.Update(fw.crc, crc32.IEEETable, p)
	}
	written := 0
	for len(p) > 0 {
		if len(fw.buf) == fw.size {
			if err := fw.submit(false); err != nil {
				return written, err
			}
		}
		k := min(len(p), fw.size-len(fw.buf))
		if cap(fw.buf) < fw.size && fw.n+int64(k) > smallFrame {
			// A full-size buffer from the pool. Until the stream passes
			// smallFrame its buffer grows with what is written, so that
			// a small stream takes little memory and a big one leaves
			// little garbage.
			fw.base = fw.pool.getBuf(fw.size)
			off := fw.codec.inputOffset(fw.size)
			fw.buf = append(fw.base[off:off], fw.buf...)
		}
		fw.buf = append(fw.buf, p[:k]...)
		p = p[k:]
		written += k
		fw.n += int64(k)
	}
	return written, nil
}

// submit hands the buffer to the pool as the next frame, waiting for a
// slot.
func (fw *frameWriter) submit(last bool) error {
	f := &frame{buf: fw.base, in: fw.buf, last: last, done: make(chan struct{})}
	fw.buf, fw.base = nil, nil
	if fw.gzip {
		f.dict = fw.dict
		if !last {
			// The next block's dictionary: every block but the last is
			// full, so this is the 32 KiB just before the next block.
			fw.dict = append(make([]byte, 0, gzipDict), f.in[len(f.in)-gzipDict:]...)
		}
	}
	select {
	case fw.pool.slots <- struct{}{}:
	case <-fw.failed:
		fw.pool.putBuf(f.buf, fw.size)
		return fw.err
	}
	fw.queue <- f // never blocks: the queue holds as many as there are slots
	go fw.pool.encodeFrame(fw.codec, f, fw.size)
	return nil
}

// output writes the frames in order as they are encoded, then ends.
func (fw *frameWriter) output() {
	defer close(fw.done)
	first := true
	for f := range fw.queue {
		<-f.done
		if fw.err == nil && f.err != nil {
			fw.fail(f.err)
		}
		if fw.err == nil && first {
			if h := fw.codec.header(); len(h) > 0 {
				if _, err := fw.w.Write(h); err != nil {
					fw.fail(err)
				}
			}
			first = false
		}
		if fw.err == nil {
			if _, err := fw.w.Write(f.out); err != nil {
				fw.fail(err)
			}
		}
		fw.pool.putBuf(f.out, fw.size)
		fw.pool.putBuf(f.buf, fw.size)
		<-fw.pool.slots
	}
}

func (fw *frameWriter) fail(err error) {
	fw.once.Do(func() {
		fw.err = err
		close(fw.failed)
	})
}

// Close hands over the last frame, waits until every frame is written and
// writes the trailer. It does not close the underlying writer.
func (fw *frameWriter) Close() error {
	if fw.closed {
		<-fw.done
		return fw.err
	}
	fw.closed = true
	var err error
	if len(fw.buf) > 0 || fw.codec.final(fw.n) {
		err = fw.submit(true)
	}
	close(fw.queue)
	<-fw.done
	if fw.err != nil {
		return fw.err
	}
	if err != nil {
		return err
	}
	if t := fw.codec.trailer(fw.n, fw.crc); len(t) > 0 {
		if _, err := fw.w.Write(t); err != nil {
			fw.err = err
			return err
		}
	}
	return nil
}

// encodeFrame encodes f when an encoder is free. The output goroutine
// gives its buffers back once the output is written.
func (p *Pool) encodeFrame(c frameCodec, f *frame, size int) {
	p.tokens <- struct{}{}
	c.encode(p, f, size)
	<-p.tokens
	f.in, f.dict = nil, nil
	close(f.done)
}

// gzipBlocks writes one gzip member whose deflate stream is made of
// blocks compressed independently.
type gzipBlocks struct{ level int }

// inputOffset: a block's output goes to a buffer of its own (blocks are
// small: GzipBlockSize).
func (gzipBlocks) inputOffset(int) int { return 0 }

func (g gzipBlocks) encode(p *Pool, f *frame, size int) {
	d, err := p.deflater(g.level)
	if err != nil {
		f.err = err
		return
	}
	out := bytes.NewBuffer(p.outBuf(len(f.in), size))
	d.ResetDict(out, f.dict)
	if _, err := d.Write(f.in); err != nil {
		f.err = err
	} else if f.last {
		f.err = d.Close()
	} else {
		f.err = d.Flush()
	}
	f.out = out.Bytes()
	p.putDeflater(g.level, d)
}

// header is what klauspost/compress/gzip writes for a zero Header with OS
// 255 (unknown): no name, comment, extra field or time.
func (g gzipBlocks) header() []byte {
	xfl := byte(0)
	switch g.level {
	case flate.BestCompression:
		xfl = 2
	case flate.BestSpeed:
		xfl = 4
	}
	return []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255}
}

func (gzipBlocks) trailer(n int64, crc uint32) []byte {
	t := binary.LittleEndian.AppendUint32(nil, crc)
	return binary.LittleEndian.AppendUint32(t, uint32(n))
}

// final: a gzip stream always ends with a final block.
func (gzipBlocks) final(int64) bool { return true }
