package rewrite

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/layerslim/layerslim/internal/blob"
	"github.com/layerslim/layerslim/internal/imagewalk"
	"github.com/layerslim/layerslim/internal/iocount"
	"github.com/layerslim/layerslim/internal/whiteout"
	"github.com/layerslim/layerslim/tarfilter"
)

// squashSpec is the work of merging the layers [from, len(all)) of an
// image into one.
type squashSpec struct {
	all  []imagewalk.Layer // every layer of the image, bottom to top
	from int               // the first merged layer
	base []*layerTask      // the tasks of layers [0, from), for their paths
}

func openLayer(ctx context.Context, in imagewalk.Layer, progress func(int64)) (*blob.Layer, error) {
	return blob.Open(ctx, in.Layer, in.Desc, progress)
}

// pendingLink is a hardlink of a merged layer, written after every other
// entry so that its target exists whatever layer it came from.
type pendingLink struct {
	hdr    *tar.Header
	layer  int  // index in all
	index  int  // entry number in that layer
	hidden bool // the target was replaced or deleted above the link's layer
}

// merger walks the merged layers from the top down. What an upper layer
// holds hides what lower ones hold at the same path, so each entry that
// survives is written once, with its final metadata, and each source layer
// is read once.
type merger struct {
	ctx      context.Context
	o        *options
	spec     *squashSpec
	platform string
	f        tarfilter.Filter
	out      *tarfilter.ArchiveWriter // the merged entries but whiteouts, in walk order, to a temporary file
	sink     *whiteoutTap             // where the filters write: whiteouts aside, the rest to out
	shadow   *whiteout.Shadow
	opaque   map[string]bool // directories given an opaque marker
	links    []pendingLink
	deletes  []*tar.Header // whiteouts that may aim at the base
	changes  *changeList
	debug    []DebugFile
	read     int64 // uncompressed bytes read

	// linksTo maps the targets of the current layer's hardlinks to their
	// indexes in links: a later entry of the layer at a target replaces
	// it, and the links made before keep the old content.
	linksTo map[string][]int
	// rootDone is set once the root directory's entry is written.
	rootDone bool
}

// processSquash merges the layers of spec into one layer, through the
// filters, into a spool file.
func processSquash(ctx context.Context, spec *squashSpec, o *options, platform string) (layerOut, error) {
	start := time.Now()
	top := spec.all[len(spec.all)-1]
	var srcSize int64
	for _, l := range spec.all[spec.from:] {
		srcSize += l.Desc.Size
	}
	o.reporter.Report(Event{Kind: LayerStarted, Platform: platform, Digest: top.Desc.Digest, Size: srcSize})

	sp, err := newSpool(o)
	if err != nil {
		return layerOut{}, err
	}
	ok := false
	defer func() {
		if !ok {
			sp.discard()
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The walk goes from the top layer down, so a lower layer's opaque
	// marker turns up after upper layers' entries in its directory. The
	// walk writes everything but whiteouts to a temporary file and keeps
	// the whiteouts (headers only) aside; a second pass over that file
	// writes the layer with each directory's whiteouts before its entries.
	tmp, err := os.CreateTemp(o.tempDir, "layerslim-merged-*")
	if err != nil {
		return layerOut{}, fmt.Errorf("creating merge file: %w", err)
	}
	defer func() { tmp.Close(); os.Remove(tmp.Name()) }()
	tmpw := bufio.NewWriterSize(tmp, 1<<20)
	m := &merger{
		ctx: ctx, o: o, spec: spec, platform: platform,
		out:     tarfilter.NewArchiveWriter(tmpw),
		shadow:  whiteout.NewShadow(),
		opaque:  map[string]bool{},
		changes: &changeList{},
	}
	m.sink = &whiteoutTap{next: m.out}
	m.f = o.chain(m.changes, nil, func(d DebugFile) { m.debug = append(m.debug, d) })
	defer func() {
		if !ok {
			closeDebug(m.debug)
		}
	}()
	// While one layer is walked, the blobs of the next ones down (as many
	// as --jobs) are downloaded into temporary files (a blob that is a
	// local file is read in place), so a slow registry is read while the
	// walk, which must go layer by layer, works. The blobs stay compressed:
	// decompressed ahead into files, the layers cost more CPU in file
	// system calls than the overlap saved on 2 cores (see bench/README.md,
	// "The squash read-ahead").
	ahead := map[int]<-chan prefetched{}
	defer func() {
		cancel()
		for _, ch := range ahead {
			(<-ch).close()
		}
	}()
	for i := len(spec.all) - 1; i >= spec.from; i-- {
		for j := i - 1; j >= spec.from && j >= i-o.jobs; j-- {
			if _, ok := ahead[j]; !ok && spec.all[j].Desc.Size > 0 {
				ahead[j] = m.prefetch(j)
			}
		}
		pre := ahead[i]
		delete(ahead, i)
		if err := m.layer(i, pre); err != nil {
			if i == len(spec.all)-1 {
				return layerOut{}, err // the merge's task is named by its top layer
			}
			return layerOut{}, fmt.Errorf("layer %s: %w", spec.all[i].Desc.Digest, err)
		}
	}
	if err := m.finish(); err != nil {
		return layerOut{}, err
	}
	entries, err := m.ordered(tmp, tmpw, sp.tar)
	if err != nil {
		return layerOut{}, err
	}
	diffID := sp.diffID()
	out, err := sp.close(diffID)
	if err != nil {
		return layerOut{}, err
	}
	ok = true
	rep := LayerReport{
		Source:            Blob{Digest: top.Desc.Digest, Size: srcSize, MediaType: top.Desc.MediaType},
		Output:            Blob{Digest: out.digest, Size: out.size, MediaType: out.mediaType, Codec: o.codec, DiffID: diffID},
		Action:            Squashed,
		UncompressedBytes: m.read,
		Duration:          time.Since(start),
		Changes:           m.changes.changes,
		Empty:             entries == 0,
	}
	for _, l := range spec.all[spec.from:] {
		rep.Merged = append(rep.Merged, l.Desc.Digest)
	}
	o.reporter.Report(Event{Kind: LayerDone, Platform: platform, Digest: top.Desc.Digest, Layer: &rep})
	return layerOut{layer: out, report: rep, debug: m.debug}, nil
}

// ordered writes the merged layer from the walk's file to w, each
// directory's whiteouts before the entries under it, and returns the
// number of entries written.
func (m *merger) ordered(tmp *os.File, tmpw *bufio.Writer, w io.Writer) (int, error) {
	if err := tmpw.Flush(); err != nil {
		return 0, fmt.Errorf("writing merge file: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("reading merge file: %w", err)
	}
	r := bufio.NewReaderSize(tmp, 1<<20)
	if len(m.sink.whiteouts) == 0 {
		if _, err := io.Copy(w, r); err != nil {
			return 0, fmt.Errorf("reading merge file: %w", err)
		}
		return m.out.Entries(), nil
	}
	st, err := tarfilter.Copy(m.ctx, r, w, newWhiteoutsFirst(m.sink.whiteouts))
	if err != nil {
		return 0, fmt.Errorf("reading merge file: %w", err)
	}
	return st.EntriesOut, nil
}

// prefetched is a merged layer's blob read ahead of the walk: the blob
// itself when it is a local file, else a temporary file that the walk reads
// as it fills.
type prefetched struct {
	file *os.File
	pipe *filePipe
	err  error
}

func (p prefetched) close() {
	if p.file != nil {
		p.file.Close()
	}
	if p.pipe != nil {
		p.pipe.Close()
	}
}

// prefetch starts downloading the blob of merged layer i (whose descriptor
// gives its size) into a temporary file, in the background. A blob that is
// a local file already is only opened.
func (m *merger) prefetch(i int) <-chan prefetched {
	ch := make(chan prefetched, 1)
	go func() {
		l := m.spec.all[i]
		rc, err := l.Layer.Compressed()
		if err != nil {
			ch <- prefetched{err: fmt.Errorf("opening blob: %w", err)}
			return
		}
		if f, ok := rc.(*os.File); ok {
			ch <- prefetched{file: f}
			return
		}
		defer rc.Close()
		f, err := os.CreateTemp(m.o.tempDir, "layerslim-merge-*")
		if err != nil {
			ch <- prefetched{err: err}
			return
		}
		p := newFilePipe(f)
		ch <- prefetched{pipe: p}
		// One byte more than the descriptor says is enough for the walk's
		// check to fail: a blob that never ends must not fill the disk.
		r := io.LimitReader(&ctxReader{ctx: m.ctx, r: rc}, l.Desc.Size+1)
		bw := bufio.NewWriterSize(p, 1<<20)
		_, err = io.Copy(bw, r)
		if err == nil {
			err = bw.Flush()
		}
		p.finish(err)
	}()
	return ch
}

// ctxReader reads r until ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

// filePipe is a pipe with a file for a buffer: the writer never waits for
// the reader, and the reader waits only for bytes not yet written.
type filePipe struct {
	f       *os.File
	mu      sync.Mutex
	cond    *sync.Cond
	written int64
	done    bool
	err     error
	off     int64 // the reader's
}

func newFilePipe(f *os.File) *filePipe {
	p := &filePipe{f: f}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *filePipe) Write(b []byte) (int, error) {
	n, err := p.f.WriteAt(b, p.written)
	p.mu.Lock()
	p.written += int64(n)
	p.cond.Broadcast()
	p.mu.Unlock()
	return n, err
}

// finish ends the writing; err, if any, is what the reader gets at the end.
func (p *filePipe) finish(err error) {
	p.mu.Lock()
	p.done, p.err = true, err
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *filePipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	for p.off >= p.written && !p.done {
		p.cond.Wait()
	}
	avail, done, err := p.written-p.off, p.done, p.err
	p.mu.Unlock()
	if avail == 0 && done {
		if err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	n, rerr := p.f.ReadAt(b[:min(int64(len(b)), avail)], p.off)
	p.off += int64(n)
	if rerr == io.EOF && n > 0 {
		rerr = nil
	}
	return n, rerr
}

// Close waits for the writer to stop and removes the file.
func (p *filePipe) Close() error {
	p.mu.Lock()
	for !p.done {
		p.cond.Wait()
	}
	p.mu.Unlock()
	p.f.Close()
	return os.Remove(p.f.Name())
}

func (m *merger) progress(i int) func(int64) {
	d := m.spec.all[i].Desc.Digest
	return func(n int64) {
		m.o.reporter.Report(Event{Kind: LayerProgress, Platform: m.platform, Digest: d, Bytes: n})
	}
}

// layer walks merged layer i, from pre when its blob was read ahead.
func (m *merger) layer(i int, pre <-chan prefetched) error {
	var s *blob.Layer
	if pre == nil {
		var err error
		if s, err = openLayer(m.ctx, m.spec.all[i], m.progress(i)); err != nil {
			return err
		}
	} else {
		p := <-pre
		if p.err != nil {
			return p.err
		}
		defer p.close()
		var r io.Reader = p.file
		if p.pipe != nil {
			r = bufio.NewReaderSize(p.pipe, 1<<20)
		}
		var err error
		if s, err = blob.OpenReader(m.ctx, io.NopCloser(r), m.spec.all[i].Desc, m.progress(i)); err != nil {
			return err
		}
	}
	defer s.Close()
	counted := &iocount.Reader{R: m.o.layerReader(s.Tar)}
	er := tarfilter.NewReader(counted)
	er.LimitBodies(m.o.maxLayer())
	m.linksTo = map[string][]int{}
	for idx := 0; ; idx++ {
		if err := m.ctx.Err(); err != nil {
			return err
		}
		e, err := er.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := m.entry(e, i, idx); err != nil {
			return fmt.Errorf("%s: %w", e.Header.Name, err)
		}
		if err := er.SkipBody(); err != nil {
			return err
		}
	}
	if _, err := io.Copy(io.Discard, er.Rest()); err != nil {
		return err
	}
	if err := s.Blob.Finish(); err != nil {
		return err
	}
	m.read += counted.N
	m.shadow.Commit()
	return nil
}

func (m *merger) entry(e tarfilter.Entry, layer, idx int) error {
	h := e.Header
	p := whiteout.Clean(h.Name)
	isDir := h.Typeflag == tar.TypeDir
	if p == "" {
		// The root directory ("./", or "/" or ".." as a hostile layer
		// names it): the topmost entry sets its metadata, as for any
		// directory.
		if isDir && !m.rootDone {
			m.rootDone = true
			return m.f.Filter(m.ctx, e, m.sink)
		}
		return nil
	}
	if target, opaque, ok := whiteout.Parse(p); ok {
		if err := whiteout.Check(p); err != nil {
			return err
		}
		defer m.shadow.Mark(p, false)
		if m.shadow.AncestorHidden(target) {
			return nil
		}
		k := m.shadow.Upper(target)
		switch {
		case opaque:
			if k&(whiteout.File|whiteout.Deleted) != 0 || m.opaque[target] {
				return nil
			}
			m.opaque[target] = true
			return m.f.Filter(m.ctx, e, m.sink)
		case k&(whiteout.File|whiteout.Deleted) != 0:
			return nil // replaced or deleted above anyway
		case k&(whiteout.Dir|whiteout.Implied|whiteout.Opaque) != 0:
			// Deleted, then made again as a directory above: whatever
			// the base has below it must stay hidden.
			if m.opaque[target] {
				return nil
			}
			m.opaque[target] = true
			marker := &tar.Header{Name: path.Join(target, whiteout.OpaqueMarker), Typeflag: tar.TypeReg, Mode: 0o644, ModTime: h.ModTime, Format: h.Format}
			return m.f.Filter(m.ctx, tarfilter.Entry{Header: marker, Body: strings.NewReader("")}, m.sink)
		default:
			c := *h
			m.deletes = append(m.deletes, &c)
			return nil
		}
	}
	if m.shadow.Hidden(p, isDir) || (isDir && m.shadow.DirReplaced(p)) {
		return nil
	}
	m.shadow.Mark(p, isDir)
	// Duplicate entries: this one replaces an earlier entry of the layer
	// at p, which earlier links of the layer keep as it was.
	for _, j := range m.linksTo[p] {
		m.links[j].hidden = true
	}
	delete(m.linksTo, p)
	if h.Typeflag == tar.TypeLink {
		c := tarfilter.CloneHeader(h)
		target := whiteout.Clean(h.Linkname)
		m.links = append(m.links, pendingLink{hdr: &c, layer: layer, index: idx, hidden: m.shadow.Hidden(target, false)})
		m.linksTo[target] = append(m.linksTo[target], len(m.links)-1)
		return nil
	}
	return m.f.Filter(m.ctx, e, m.sink)
}

// finish writes the hardlinks, the whiteouts that aim at the base, and the
// end of the archive.
func (m *merger) finish() error {
	// Links in the order the layers made them, so a link to a link finds
	// its target.
	sort.SliceStable(m.links, func(i, j int) bool {
		a, b := m.links[i], m.links[j]
		if a.layer != b.layer {
			return a.layer < b.layer
		}
		return a.index < b.index
	})
	made := map[string]string{} // target@layer → path now holding its content
	dropped, err := m.droppedFiles()
	if err != nil {
		return err
	}
	rescued := map[string]string{} // dropped target → the link now holding its content
	for _, l := range m.links {
		if target := whiteout.Clean(l.hdr.Linkname); !l.hidden && dropped[target] {
			// The drop rules took the link's target, here or in the base:
			// the first link gets the content, the others link to it.
			if err := m.rescue(l, target, rescued); err != nil {
				return fmt.Errorf("%s: keeping the content of dropped %s: %w", l.hdr.Name, l.hdr.Linkname, err)
			}
			continue
		}
		if !l.hidden {
			if err := m.f.Filter(m.ctx, tarfilter.Entry{Header: l.hdr, Body: strings.NewReader("")}, m.sink); err != nil {
				return fmt.Errorf("%s: %w", l.hdr.Name, err)
			}
			continue
		}
		// The target changed after the link was made: the link keeps the
		// old content, which now lives only in the link.
		target := whiteout.Clean(l.hdr.Linkname)
		key := fmt.Sprintf("%s@%d", target, l.layer)
		if holder, ok := made[key]; ok {
			h := *l.hdr
			h.Linkname = holder
			if err := m.f.Filter(m.ctx, tarfilter.Entry{Header: &h, Body: strings.NewReader("")}, m.sink); err != nil {
				return err
			}
			continue
		}
		if err := m.materialize(l, target); err != nil {
			return fmt.Errorf("%s: resolving hardlink to %s: %w", l.hdr.Name, l.hdr.Linkname, err)
		}
		made[key] = l.hdr.Name
	}
	if len(m.deletes) > 0 {
		base, known, err := m.basePaths()
		if err != nil {
			return err
		}
		for _, h := range m.deletes {
			target, _, _ := whiteout.Parse(whiteout.Clean(h.Name))
			if known && !base[target] {
				continue // it deleted only merged content
			}
			if err := m.f.Filter(m.ctx, tarfilter.Entry{Header: h, Body: strings.NewReader("")}, m.sink); err != nil {
				return err
			}
		}
	}
	if fl, ok := m.f.(tarfilter.Flusher); ok {
		if err := fl.Flush(m.ctx, m.sink); err != nil {
			return err
		}
	}
	return m.out.Close()
}

// droppedFiles is every path the filters dropped in the merge and in the
// base layers' outputs, but hardlinks dropped with their target.
func (m *merger) droppedFiles() (map[string]bool, error) {
	out := map[string]bool{}
	add := func(cs []Change) {
		for _, c := range cs {
			if c.Action == ActionDropped && !strings.HasPrefix(c.Reason, linkToDropped) {
				out[whiteout.Clean(c.Path)] = true
			}
		}
	}
	add(m.changes.changes)
	for _, t := range m.spec.base {
		select {
		case <-t.done:
		case <-m.ctx.Done():
			return nil, m.ctx.Err()
		}
		add(t.out.report.Changes)
	}
	return out, nil
}

// rescue writes link l, whose target the drop rules took: the first link
// to target gets its content (read again from the layers), a later one
// links to that first one. A link the rules drop by its own name stays
// dropped.
func (m *merger) rescue(l pendingLink, target string, rescued map[string]string) error {
	if holder, ok := rescued[target]; ok {
		h := *l.hdr
		h.Linkname = holder
		return m.f.Filter(m.ctx, tarfilter.Entry{Header: &h, Body: strings.NewReader("")}, m.sink)
	}
	n := len(m.changes.changes)
	if err := m.materialize(l, target); err != nil {
		return err
	}
	for _, c := range m.changes.changes[n:] {
		if c.Action == ActionDropped && whiteout.Clean(c.Path) == whiteout.Clean(l.hdr.Name) {
			return nil // named by a rule itself
		}
	}
	rescued[target] = l.hdr.Name
	return nil
}

// basePaths is every path the base layers' outputs hold (directories
// implied by deeper paths included), once their tasks are done.
func (m *merger) basePaths() (map[string]bool, bool, error) {
	all := map[string]bool{}
	for _, t := range m.spec.base {
		select {
		case <-t.done:
		case <-m.ctx.Done():
			return nil, false, m.ctx.Err()
		}
		if t.paths == nil {
			return nil, false, nil
		}
		for p := range t.paths {
			all[p] = true
		}
	}
	return all, true, nil
}

// materialize writes the content a link pointed to when it was made, found
// by reading its layer again up to the link, then the layers below. This
// second read happens only for links whose target a later layer replaced.
func (m *merger) materialize(l pendingLink, target string) error {
	layer, limit := l.layer, l.index
	for hops := 0; layer >= 0; hops++ {
		if hops > 64 {
			return errors.New("hardlink chain too long")
		}
		h, idx, body, err := m.find(layer, target, limit)
		if err != nil {
			return err
		}
		if h == nil {
			layer, limit = layer-1, -1
			continue
		}
		if h.Typeflag == tar.TypeLink {
			limit, target = idx, whiteout.Clean(h.Linkname)
			continue
		}
		var r io.Reader = strings.NewReader("")
		if body != nil {
			defer func() { body.Close(); os.Remove(body.Name()) }()
			r = body
		}
		out := tarfilter.CloneHeader(h)
		out.Name = l.hdr.Name
		return m.f.Filter(m.ctx, tarfilter.Entry{Header: &out, Body: r}, m.sink)
	}
	return fmt.Errorf("%s does not exist where the link is made", target)
}

// find reads layer i up to entry limit (the whole layer when limit < 0)
// and returns the last entry named target, its index, and for a regular
// file its body in a temporary file positioned at the start.
func (m *merger) find(i int, target string, limit int) (*tar.Header, int, *os.File, error) {
	s, err := openLayer(m.ctx, m.spec.all[i], func(int64) {})
	if err != nil {
		return nil, 0, nil, err
	}
	defer s.Close()
	er := tarfilter.NewReader(m.o.layerReader(s.Tar))
	er.LimitBodies(m.o.maxLayer())
	var found *tar.Header
	var at int
	var body *os.File
	drop := func() {
		if body != nil {
			body.Close()
			os.Remove(body.Name())
			body = nil
		}
	}
	for idx := 0; limit < 0 || idx < limit; idx++ {
		e, err := er.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			drop()
			return nil, 0, nil, err
		}
		if whiteout.Clean(e.Header.Name) != target {
			// Read past the body here: left to the next header's read, it
			// would count as header bytes.
			if err := er.SkipBody(); err != nil {
				drop()
				return nil, 0, nil, err
			}
			continue
		}
		drop()
		c := tarfilter.CloneHeader(e.Header)
		found, at = &c, idx
		if e.Header.Typeflag == tar.TypeReg {
			if err := m.o.checkSpool(e.Header.Size); err != nil {
				drop()
				return nil, 0, nil, err
			}
			f, err := os.CreateTemp(m.o.tempDir, "layerslim-link-*")
			if err != nil {
				return nil, 0, nil, err
			}
			body = f
			if _, err := io.Copy(f, e.Body); err != nil {
				drop()
				return nil, 0, nil, err
			}
		}
	}
	if body != nil {
		if _, err := body.Seek(0, io.SeekStart); err != nil {
			drop()
			return nil, 0, nil, err
		}
	}
	return found, at, body, nil
}
