// Package zstdchunked writes layer blobs in the zstd:chunked format of
// containers/storage (podman, CRI-O), which lets those clients pull only the
// files they do not already have.
//
// The blob is ordinary zstd to every other decoder, and decompresses to the
// same tar bytes: a new zstd frame starts at each regular file's contents
// and at content-defined split points inside large files; after the tar
// stream come zstd skippable frames holding the table of contents
// (zstd-compressed JSON, version 1, one entry per tar entry with each
// regular file's sha256 digest and the offsets of its frames), the
// tar-split data, and a 64-byte footer ending in "GNUlInUx". The layer's
// descriptor carries three annotations (Annotations) that locate the TOC
// and the tar-split data.
//
// The format is containers/storage's (pkg/chunked: the compressor writes
// it, compression_linux.go and storage_linux.go read it); the writer is
// ours, because that compressor's frames cost too much: it splits files
// at a rolling checksum every 64 KiB on average, cuts out every run of
// 1 KiB of zeros, and puts the tar headers between two files in a frame
// of their own, which made its blobs 1.13x plain zstd on the benchmark
// image. The parser only needs each chunk's frames to start where the TOC
// says and to decompress to at least the chunk's bytes, so this writer
// (see params) splits only files past a few MiB, only cuts out long runs
// of zeros, and lets the headers that follow a file's contents end that
// file's last frame. containers/storage itself pulls its blobs partially
// in a test (TestContainersStoragePartialPull).
package zstdchunked

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"

	"github.com/klauspost/compress/zstd"
	"github.com/vbatts/tar-split/archive/tar"
	"github.com/vbatts/tar-split/tar/asm"
	"github.com/vbatts/tar-split/tar/storage"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/internal/iocount"
)

// The layer descriptor annotations of a zstd:chunked blob.
const (
	// AnnotationManifestChecksum is the sha256 digest of the compressed TOC.
	AnnotationManifestChecksum = "io.github.containers.zstd-chunked.manifest-checksum"
	// AnnotationManifestPosition is offset:length:uncompressedLength:1 of
	// the compressed TOC in the blob.
	AnnotationManifestPosition = "io.github.containers.zstd-chunked.manifest-position"
	// AnnotationTarSplitPosition is offset:length:uncompressedLength of the
	// compressed tar-split data in the blob.
	AnnotationTarSplitPosition = "io.github.containers.zstd-chunked.tarsplit-position"
)

// FooterMagic ends every zstd:chunked blob.
const FooterMagic = "GNUlInUx"

// params are the writer's chunking choices. Changing any changes every
// zstd:chunked digest layerslim writes.
type params struct {
	// A file's contents are split into chunks of their own frames where
	// the rolling checksum's low bits under splitMask are all set, once
	// the chunk holds minChunk bytes, and always at maxChunk bytes.
	splitMask          uint32
	minChunk, maxChunk int
	// holeMin zeros in a row are a chunk of type "zeros" (a hole the
	// puller writes without fetching it).
	holeMin int
}

// defaultParams, measured on the benchmark image (docs/compatibility.md):
// chunks of 2 MiB to 8 MiB (4 MiB on average past the minimum) keep each
// frame large enough that starting it without the history before it costs
// little, and holes start at 64 KiB. A frame is encoded whole, so maxChunk
// bounds the memory of a writer: on the bench image's largest layer, 4 to
// 16 MiB chunks gave 0.11% fewer bytes and 48 MB more peak RSS.
var defaultParams = params{splitMask: 1<<22 - 1, minChunk: 2 << 20, maxChunk: 8 << 20, holeMin: 64 << 10}

// Writer compresses a tar stream into a zstd:chunked blob. What is written
// to it must be a tar stream; Close fails otherwise.
type Writer struct {
	pw          *io.PipeWriter
	done        chan error
	annotations map[string]string
	closed      bool
	err         error
}

// NewWriter returns a Writer that writes the blob to w at zstd level (1 to
// 22, 0 for 3).
func NewWriter(w io.Writer, level int) (*Writer, error) {
	return newWriter(w, level, defaultParams)
}

func newWriter(w io.Writer, level int, p params) (*Writer, error) {
	if w == nil {
		return nil, errors.New("creating zstd:chunked writer: nil io.Writer")
	}
	if err := compress.ValidLevel(compress.Zstd, level); err != nil {
		return nil, fmt.Errorf("zstd:chunked: %w", err)
	}
	if level == 0 {
		level = compress.DefaultLevel(compress.Zstd)
	}
	el := zstd.EncoderLevelFromZstd(level)
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(el),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(true),
		zstd.WithZeroFrames(true),
	)
	if err != nil {
		return nil, fmt.Errorf("creating zstd:chunked writer: %w", err)
	}
	pr, pw := io.Pipe()
	z := &Writer{pw: pw, done: make(chan error, 1)}
	e := &encoder{p: p, level: el, enc: enc, w: w}
	go func() {
		ann, err := e.encode(pr)
		if err != nil {
			pr.CloseWithError(err)
		} else {
			// What follows the tar stream is not read; drain it so that
			// Write does not block.
			_, _ = io.Copy(io.Discard, pr)
		}
		z.annotations = ann
		z.done <- err
	}()
	return z, nil
}

// Write takes the next bytes of the tar stream.
func (z *Writer) Write(p []byte) (int, error) { return z.pw.Write(p) }

// Close writes the end of the tar stream, the TOC, the tar-split data and
// the footer. It does not close the underlying writer.
func (z *Writer) Close() error {
	if z.closed {
		return z.err
	}
	z.closed = true
	z.pw.Close()
	if err := <-z.done; err != nil {
		z.err = fmt.Errorf("zstd:chunked: %w", err)
	}
	return z.err
}

// Annotations are the layer descriptor annotations of the blob, once Close
// has succeeded; nil before.
func (z *Writer) Annotations() map[string]string {
	if !z.closed || z.err != nil {
		return nil
	}
	return maps.Clone(z.annotations)
}

// encoder writes one blob. Frames are encoded whole (EncodeAll), one after
// the other on one goroutine, so the blob depends on the input, the level
// and the params only.
type encoder struct {
	p     params
	level zstd.EncoderLevel
	enc   *zstd.Encoder
	w     io.Writer
	off   int64  // bytes written to w
	buf   []byte // the uncompressed bytes of the open frame
	out   []byte

	entries []tocEntry
	ends    []int // entries whose EndOffset is where the open frame ends

	// The regular file whose contents are being read.
	file      hash.Hash
	chunks    []tocEntry
	fileOff   int64 // bytes of the file before the open chunk
	chunkOff  int64 // blob offset of the open chunk's first frame
	zeros     int   // zeros in a row at the end of the open chunk
	hole      bool  // the open chunk is a run of zeros, not in buf
	holeLen   int64
	rs        rollSum
	zeroFrame []byte // the encoding of zeroBlock
}

// zeroBlock is the most zeros of a hole one frame holds.
var zeroBlock = make([]byte, 1<<20)

// cut ends the open frame.
func (e *encoder) cut() error {
	if len(e.buf) == 0 {
		return nil
	}
	e.out = e.enc.EncodeAll(e.buf, e.out[:0])
	if err := e.emit(e.out); err != nil {
		return err
	}
	e.buf = e.buf[:0]
	for _, i := range e.ends {
		e.entries[i].EndOffset = e.off
	}
	e.ends = e.ends[:0]
	return nil
}

func (e *encoder) emit(b []byte) error {
	n, err := e.w.Write(b)
	e.off += int64(n)
	return err
}

func (e *encoder) encode(r io.Reader) (map[string]string, error) {
	var ts bytes.Buffer
	tsDigest := sha256.New()
	tsEnc, err := zstd.NewWriter(io.MultiWriter(&ts, tsDigest),
		zstd.WithEncoderLevel(e.level), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	tsCount := &iocount.Writer{W: tsEnc}
	its, done, err := asm.NewInputTarStreamWithDone(r, storage.NewJSONPacker(tsCount), nil)
	if err != nil {
		return nil, err
	}
	err = e.entriesOf(its)
	its.Close()
	if doneErr := <-done; err == nil {
		err = doneErr
	}
	if err != nil {
		return nil, err
	}
	if err := tsEnc.Close(); err != nil {
		return nil, err
	}

	raw, err := json.Marshal(toc{Version: 1, Entries: e.entries, TarSplitDigest: digestOf(tsDigest)})
	if err != nil {
		return nil, err
	}
	ctoc := e.enc.EncodeAll(raw, nil)
	tocOff := uint64(e.off) + 8
	tsOff := tocOff + uint64(len(ctoc)) + 8
	for _, b := range [][]byte{
		skippableFrame(ctoc),
		skippableFrame(ts.Bytes()),
		skippableFrame(footer(tocOff, uint64(len(ctoc)), uint64(len(raw)), tsOff, uint64(ts.Len()), uint64(tsCount.N))),
	} {
		if err := e.emit(b); err != nil {
			return nil, err
		}
	}
	sum := sha256.Sum256(ctoc)
	return map[string]string{
		AnnotationManifestChecksum: "sha256:" + hex.EncodeToString(sum[:]),
		AnnotationManifestPosition: fmt.Sprintf("%d:%d:%d:%d", tocOff, len(ctoc), len(raw), manifestTypeCRFS),
		AnnotationTarSplitPosition: fmt.Sprintf("%d:%d:%d", tsOff, ts.Len(), tsCount.N),
	}, nil
}

// entriesOf writes the frames of the tar stream in its and collects the
// TOC entries.
func (e *encoder) entriesOf(its io.Reader) error {
	tr := tar.NewReader(its)
	tr.RawAccounting = true
	block := make([]byte, 256<<10)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		e.buf = append(e.buf, tr.RawBytes()...)
		entry, err := newTOCEntry(h)
		if err != nil {
			return err
		}
		started := false
		for {
			n, err := io.ReadFull(tr, block)
			if n > 0 {
				if !started {
					// The contents start a frame.
					if err := e.cut(); err != nil {
						return err
					}
					e.startFile()
					started = true
				}
				if err := e.contents(block[:n]); err != nil {
					return err
				}
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			if err != nil {
				return err
			}
		}
		if started {
			if err := e.endChunk(false); err != nil {
				return err
			}
			entry.Digest = e.chunks[0].ChunkDigest
			if len(e.chunks) > 1 {
				entry.Digest = digestOf(e.file)
			}
			entry.Offset = e.chunks[0].Offset
			e.ends = append(e.ends, len(e.entries))
			if len(e.chunks) > 1 {
				c := e.chunks[0]
				entry.ChunkSize, entry.ChunkDigest, entry.ChunkType = c.ChunkSize, c.ChunkDigest, c.ChunkType
				e.entries = append(append(e.entries, entry), e.chunks[1:]...)
				for i := range e.chunks[1:] {
					e.entries[len(e.entries)-1-i].Name = h.Name
				}
				continue
			}
		}
		e.entries = append(e.entries, entry)
	}
	e.buf = append(e.buf, tr.RawBytes()...)
	// The end of the archive and any padding after it.
	for {
		n, err := its.Read(block)
		e.buf = append(e.buf, block[:n]...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	return e.cut()
}

func (e *encoder) startFile() {
	e.file = sha256.New()
	e.chunks = e.chunks[:0]
	e.fileOff = 0
	e.startChunk()
}

func (e *encoder) startChunk() {
	e.chunkOff = e.off
	e.zeros, e.hole, e.holeLen = 0, false, 0
	e.rs = newRollSum()
}

// contents takes the next bytes of a regular file's contents.
func (e *encoder) contents(b []byte) error {
	p := &e.p
	for len(b) > 0 {
		if e.hole {
			n := 0
			for n < len(b) && b[n] == 0 {
				n++
			}
			e.holeLen += int64(n)
			b = b[n:]
			if len(b) > 0 {
				if err := e.endChunk(true); err != nil {
					return err
				}
			}
			continue
		}
		i, split := 0, false
		for i < len(b) {
			if e.zeros == 0 {
				// Up to the first byte to roll, only zeros matter: skip
				// to the next one.
				if end := min(len(b), p.minChunk-rollWindow-1-len(e.buf)); end > i {
					j := bytes.IndexByte(b[i:end], 0)
					if j < 0 {
						i = end
						continue
					}
					i += j
				}
			}
			c := b[i]
			i++
			if c == 0 {
				e.zeros++
			} else {
				e.zeros = 0
			}
			if e.zeros == p.holeMin {
				break
			}
			n := len(e.buf) + i
			if n >= p.minChunk-rollWindow {
				e.rs.roll(c)
				if n >= p.maxChunk || n >= p.minChunk && e.rs.onSplit(p.splitMask) {
					split = true
					break
				}
			}
		}
		e.buf = append(e.buf, b[:i]...)
		b = b[i:]
		switch {
		case e.zeros == p.holeMin:
			// The zeros become a hole chunk of their own.
			e.buf = e.buf[:len(e.buf)-p.holeMin]
			if err := e.endChunk(true); err != nil {
				return err
			}
			e.hole, e.holeLen = true, int64(p.holeMin)
		case split:
			if err := e.endChunk(true); err != nil {
				return err
			}
		}
	}
	return nil
}

// endChunk records the open chunk, if it has any bytes, and starts the
// next. With next, a new frame starts; else the chunk is the file's last
// and the bytes after the contents (padding, the next headers) go on in
// its frame.
func (e *encoder) endChunk(next bool) error {
	c := tocEntry{Type: typeChunk, ChunkOffset: e.fileOff, Offset: e.chunkOff}
	d := sha256.New()
	var w io.Writer = d
	if next || len(e.chunks) > 0 {
		// Not the file's only chunk: its digest is not the file's.
		w = io.MultiWriter(e.file, d)
	}
	switch {
	case e.hole:
		c.ChunkSize, c.ChunkType = e.holeLen, chunkTypeZeros
		for left := e.holeLen; left > 0; {
			n := min(left, int64(len(zeroBlock)))
			w.Write(zeroBlock[:n])
			f := e.zeroFrame
			if n < int64(len(zeroBlock)) {
				f = e.enc.EncodeAll(zeroBlock[:n], nil)
			} else if f == nil {
				f = e.enc.EncodeAll(zeroBlock, nil)
				e.zeroFrame = f
			}
			if err := e.emit(f); err != nil {
				return err
			}
			left -= n
		}
	case len(e.buf) > 0:
		// A data chunk starts a frame, so buf holds it alone.
		c.ChunkSize = int64(len(e.buf))
		w.Write(e.buf)
		if next {
			if err := e.cut(); err != nil {
				return err
			}
		}
	default:
		return nil
	}
	c.ChunkDigest = digestOf(d)
	e.chunks = append(e.chunks, c)
	e.fileOff += c.ChunkSize
	if next {
		e.startChunk()
	}
	return nil
}

func digestOf(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }
