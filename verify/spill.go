package verify

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// A layer's records are not kept in memory: each scan sorts them by path
// (an external merge sort, runOf records at a time, runs spilled to
// o.TempDir) into one file, and an image's merged filesystem is read as a
// merge of its layers' files (see resolve.go). Memory stays bounded
// whatever the number of files.

// runOf is how many records a scan sorts in memory before it spills them;
// fanIn how many files one merge reads at once (an image of more layers is
// merged in rounds). Variables, so tests can make them small.
var (
	runOf = 1 << 15
	fanIn = 64
)

// opTouch is a synthetic record: an entry below the path was written at
// that moment, which makes the path an (implicit) directory if it is not
// one (tree.dirOf).
const opTouch op = 4

// pos is when a record applies in an image: its layer, then whiteouts and
// opaque markers (phase 0) before entries (phase 1), then entry order.
type pos struct {
	layer int64 // -1: never
	phase uint8
	seq   uint64
}

var never = pos{layer: -1}

func (a pos) cmp(b pos) int {
	switch {
	case a.layer != b.layer:
		return cmpInt(a.layer, b.layer)
	case a.phase != b.phase:
		return cmpInt(a.phase, b.phase)
	}
	return cmpInt(a.seq, b.seq)
}

func cmpInt[T int64 | uint8 | uint64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func maxPos(a, b pos) pos {
	if a.cmp(b) < 0 {
		return b
	}
	return a
}

// srec is a record as it is spilled: where it applies, and the record.
type srec struct {
	pos
	record
}

// cmpPath orders clean paths as a walk of the tree does: parents before
// children, the names of one directory in byte order ("" is the root).
func cmpPath(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x == '/' {
			return -1
		}
		if y == '/' {
			return 1
		}
		return cmpInt(uint64(x), uint64(y))
	}
	return cmpInt(int64(len(a)), int64(len(b)))
}

func cmpRec(a, b *srec) int {
	if c := cmpPath(a.name, b.name); c != 0 {
		return c
	}
	return a.pos.cmp(b.pos)
}

// Encoding: a uvarint length, then the fields.

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendRec(b []byte, r *srec) []byte {
	b = appendString(b, r.name)
	b = binary.AppendVarint(b, r.layer)
	b = append(b, r.phase, byte(r.op))
	b = binary.AppendUvarint(b, r.seq)
	b = appendString(b, r.target)
	n := &r.node
	var flags byte
	if n.implicit {
		flags |= 1
	}
	if n.elf != nil {
		flags |= 2
	}
	if n.debugFile {
		flags |= 4
	}
	if n.mtime.IsZero() {
		flags |= 8
	}
	b = append(b, n.typ, flags)
	b = binary.AppendVarint(b, n.mode)
	b = binary.AppendVarint(b, int64(n.uid))
	b = binary.AppendVarint(b, int64(n.gid))
	if !n.mtime.IsZero() {
		b = binary.AppendVarint(b, n.mtime.Unix())
		b = binary.AppendUvarint(b, uint64(n.mtime.Nanosecond()))
	}
	b = binary.AppendUvarint(b, uint64(len(n.xattrs)))
	for k, v := range n.xattrs {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	b = appendString(b, n.link)
	b = binary.AppendVarint(b, n.major)
	b = binary.AppendVarint(b, n.minor)
	b = binary.AppendVarint(b, n.size)
	b = append(b, n.sum[:]...)
	if n.elf != nil {
		b = append(b, n.elf[:]...)
	}
	return b
}

var errCorrupt = errors.New("spilled records: corrupt")

// decoder reads the fields of one encoded record.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err, d.b = errCorrupt, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err, d.b = errCorrupt, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if n > len(d.b) {
		d.err, d.b = errCorrupt, nil
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() byte { return d.bytes(1)[0] }

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err, d.b = errCorrupt, nil
		return ""
	}
	return string(d.bytes(int(n)))
}

func decodeRec(b []byte, r *srec) error {
	d := decoder{b: b}
	*r = srec{}
	r.name = d.string()
	r.layer = d.varint()
	r.phase = d.u8()
	r.op = op(d.u8())
	r.seq = d.uvarint()
	r.target = d.string()
	n := &r.node
	n.typ = d.u8()
	flags := d.u8()
	n.implicit, n.debugFile = flags&1 != 0, flags&4 != 0
	n.mode = d.varint()
	n.uid = int(d.varint())
	n.gid = int(d.varint())
	if flags&8 == 0 {
		sec := d.varint()
		n.mtime = time.Unix(sec, int64(d.uvarint()))
	}
	if k := d.uvarint(); k > 0 && d.err == nil {
		n.xattrs = make(map[string]string, min(k, 64))
		for range k {
			key := d.string()
			n.xattrs[key] = d.string()
			if d.err != nil {
				break
			}
		}
	}
	n.link = d.string()
	n.major = d.varint()
	n.minor = d.varint()
	n.size = d.varint()
	copy(n.sum[:], d.bytes(len(n.sum)))
	if flags&2 != 0 {
		n.elf = new([32]byte)
		copy(n.elf[:], d.bytes(len(n.elf)))
	}
	return d.err
}

// recWriter writes records to a new temporary file.
type recWriter struct {
	f   *os.File
	w   *bufio.Writer
	buf []byte
}

func newRecWriter(dir string) (*recWriter, error) {
	f, err := os.CreateTemp(dir, "layerslim-verify-*.records")
	if err != nil {
		return nil, fmt.Errorf("spilling records: %w", err)
	}
	return &recWriter{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

func (w *recWriter) write(r *srec) error {
	w.buf = appendRec(w.buf[:0], r)
	var n [binary.MaxVarintLen64]byte
	if _, err := w.w.Write(n[:binary.PutUvarint(n[:], uint64(len(w.buf)))]); err != nil {
		return err
	}
	_, err := w.w.Write(w.buf)
	return err
}

// close finishes the file and returns its name; on error the file is
// removed.
func (w *recWriter) close() (string, error) {
	err := w.w.Flush()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(w.f.Name())
		return "", fmt.Errorf("spilling records: %w", err)
	}
	return w.f.Name(), nil
}

func (w *recWriter) abort() {
	w.f.Close()
	os.Remove(w.f.Name())
}

// recReader reads the records of a file; layer, when not -1, replaces the
// layer of each.
type recReader struct {
	f     *os.File
	r     *bufio.Reader
	buf   []byte
	layer int64
}

func openRecords(name string, layer int64) (*recReader, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("reading spilled records: %w", err)
	}
	return &recReader{f: f, r: bufio.NewReaderSize(f, 16<<10), layer: layer}, nil
}

// next reads the next record; false at the end.
func (rr *recReader) next(r *srec) (bool, error) {
	n, err := binary.ReadUvarint(rr.r)
	if errors.Is(err, io.EOF) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading spilled records: %w", err)
	}
	if n > 1<<30 {
		return false, errCorrupt
	}
	if uint64(cap(rr.buf)) < n {
		rr.buf = make([]byte, n)
	}
	rr.buf = rr.buf[:n]
	if _, err := io.ReadFull(rr.r, rr.buf); err != nil {
		return false, fmt.Errorf("reading spilled records: %w", err)
	}
	if err := decodeRec(rr.buf, r); err != nil {
		return false, err
	}
	if rr.layer >= 0 {
		r.layer = rr.layer
	}
	return true, nil
}

func (rr *recReader) close() { rr.f.Close() }

// sorter sorts records by path with runs of runOf records spilled to dir.
type sorter struct {
	dir  string
	buf  []srec
	runs []string
}

func (s *sorter) add(r srec) error {
	s.buf = append(s.buf, r)
	if len(s.buf) >= runOf {
		return s.spill()
	}
	return nil
}

func (s *sorter) spill() error {
	slices.SortFunc(s.buf, func(a, b srec) int { return cmpRec(&a, &b) })
	w, err := newRecWriter(s.dir)
	if err != nil {
		return err
	}
	for i := range s.buf {
		if err := w.write(&s.buf[i]); err != nil {
			w.abort()
			return fmt.Errorf("spilling records: %w", err)
		}
	}
	name, err := w.close()
	if err != nil {
		return err
	}
	s.runs = append(s.runs, name)
	clear(s.buf)
	s.buf = s.buf[:0]
	return nil
}

// finish returns the one file of all records, sorted.
func (s *sorter) finish() (string, error) {
	if len(s.buf) > 0 || len(s.runs) == 0 {
		if err := s.spill(); err != nil {
			return "", err
		}
	}
	s.buf = nil
	if len(s.runs) == 1 {
		name := s.runs[0]
		s.runs = nil
		return name, nil
	}
	name, err := mergeFiles(s.dir, s.runs, nil)
	if err != nil {
		return "", err
	}
	s.remove()
	return name, nil
}

// remove deletes the runs not yet merged.
func (s *sorter) remove() {
	for _, r := range s.runs {
		os.Remove(r)
	}
	s.runs = nil
}

// merger reads several sorted files as one sorted stream.
type merger struct {
	h   mergeHeap
	all []*recReader
}

type mergeSource struct {
	rr  *recReader
	cur srec
}

type mergeHeap []*mergeSource

func (h mergeHeap) Len() int           { return len(h) }
func (h mergeHeap) Less(i, j int) bool { return cmpRec(&h[i].cur, &h[j].cur) < 0 }
func (h mergeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)        { *h = append(*h, x.(*mergeSource)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// openMerge opens files; layers, if not nil, gives the layer of each
// file's records.
func openMerge(files []string, layers []int64) (*merger, error) {
	m := &merger{}
	for i, name := range files {
		layer := int64(-1)
		if layers != nil {
			layer = layers[i]
		}
		rr, err := openRecords(name, layer)
		if err != nil {
			m.close()
			return nil, err
		}
		m.all = append(m.all, rr)
		s := &mergeSource{rr: rr}
		ok, err := rr.next(&s.cur)
		if err != nil {
			m.close()
			return nil, err
		}
		if ok {
			m.h = append(m.h, s)
		}
	}
	heap.Init(&m.h)
	return m, nil
}

func (m *merger) next(r *srec) (bool, error) {
	if len(m.h) == 0 {
		return false, nil
	}
	s := m.h[0]
	*r = s.cur
	ok, err := s.rr.next(&s.cur)
	if err != nil {
		return false, err
	}
	if ok {
		heap.Fix(&m.h, 0)
	} else {
		heap.Pop(&m.h)
	}
	return true, nil
}

func (m *merger) close() {
	for _, rr := range m.all {
		rr.close()
	}
	m.all, m.h = nil, nil
}

// mergeFiles merges sorted files into a new one in dir.
func mergeFiles(dir string, files []string, layers []int64) (string, error) {
	m, err := openMerge(files, layers)
	if err != nil {
		return "", err
	}
	defer m.close()
	w, err := newRecWriter(dir)
	if err != nil {
		return "", err
	}
	var r srec
	for {
		ok, err := m.next(&r)
		if err != nil {
			w.abort()
			return "", err
		}
		if !ok {
			break
		}
		if err := w.write(&r); err != nil {
			w.abort()
			return "", fmt.Errorf("spilling records: %w", err)
		}
	}
	return w.close()
}
