package rewrite

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/internal/blob"
	"github.com/layerslim/layerslim/internal/layerfs"
)

// squashSpec is the work of merging the layers [from, len(all)) of an
// image into one.
type squashSpec struct {
	all  []layerIn    // every layer of the image, bottom to top
	from int          // the first merged layer
	base []*layerTask // the tasks of layers [0, from), for their paths
}

func openLayer(ctx context.Context, in layerIn, progress func(int64)) (*blob.Layer, error) {
	return blob.Open(ctx, in.layer, in.desc, progress)
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
	f        Filter
	out      *tarWriter
	shadow   *layerfs.Shadow
	opaque   map[string]bool // directories given an opaque marker
	links    []pendingLink
	deletes  []*tar.Header // whiteouts that may aim at the base
	changes  *changeList
	debug    []DebugFile
	read     int64 // uncompressed bytes read
}

// processSquash merges the layers of spec into one layer, through the
// filters, into a spool file.
func processSquash(ctx context.Context, spec *squashSpec, o *options, platform string) (layerOut, error) {
	start := time.Now()
	top := spec.all[len(spec.all)-1]
	var srcSize int64
	for _, l := range spec.all[spec.from:] {
		srcSize += l.desc.Size
	}
	o.reporter.Report(Event{Kind: LayerStarted, Platform: platform, Digest: top.desc.Digest, Size: srcSize})

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
	uncompressed := &hashWriter{w: sp.enc, h: sha256.New()}
	m := &merger{
		ctx: ctx, o: o, spec: spec, platform: platform,
		out:     newTarWriter(uncompressed),
		shadow:  layerfs.NewShadow(),
		opaque:  map[string]bool{},
		changes: &changeList{},
	}
	m.f = o.chain(m.changes, nil, func(d DebugFile) { m.debug = append(m.debug, d) })
	defer func() {
		if !ok {
			closeDebug(m.debug)
		}
	}()
	for i := len(spec.all) - 1; i >= spec.from; i-- {
		if err := m.layer(i); err != nil {
			return layerOut{}, fmt.Errorf("layer %s: %w", spec.all[i].desc.Digest, err)
		}
	}
	if err := m.finish(); err != nil {
		return layerOut{}, err
	}
	diffID := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", uncompressed.h.Sum(nil))}
	out, err := sp.close(diffID)
	if err != nil {
		return layerOut{}, err
	}
	ok = true
	rep := LayerReport{
		Source:            Blob{Digest: top.desc.Digest, Size: srcSize, MediaType: top.desc.MediaType},
		Output:            Blob{Digest: out.digest, Size: out.size, MediaType: out.mediaType, Codec: o.codec, DiffID: diffID},
		Action:            Squashed,
		UncompressedBytes: m.read,
		Duration:          time.Since(start),
		Changes:           m.changes.changes,
		Empty:             m.out.entries == 0,
	}
	for _, l := range spec.all[spec.from:] {
		rep.Merged = append(rep.Merged, l.desc.Digest)
	}
	o.reporter.Report(Event{Kind: LayerDone, Platform: platform, Digest: top.desc.Digest, Layer: &rep})
	return layerOut{layer: out, report: rep, debug: m.debug}, nil
}

// layer walks merged layer i.
func (m *merger) layer(i int) error {
	in := m.spec.all[i]
	s, err := openLayer(m.ctx, in, func(n int64) {
		m.o.reporter.Report(Event{Kind: LayerProgress, Platform: m.platform, Digest: in.desc.Digest, Bytes: n})
	})
	if err != nil {
		return err
	}
	defer s.Close()
	counted := &countReader{r: s.Tar}
	er := newEntryReader(counted)
	for idx := 0; ; idx++ {
		if err := m.ctx.Err(); err != nil {
			return err
		}
		e, err := er.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := m.entry(e, i, idx); err != nil {
			return fmt.Errorf("%s: %w", e.Header.Name, err)
		}
		if err := er.skipBody(); err != nil {
			return err
		}
	}
	if _, err := io.Copy(io.Discard, er.rest()); err != nil {
		return err
	}
	if err := s.Blob.Finish(); err != nil {
		return err
	}
	m.read += counted.n
	m.shadow.Commit()
	return nil
}

func (m *merger) entry(e Entry, layer, idx int) error {
	h := e.Header
	p := layerfs.Clean(h.Name)
	isDir := h.Typeflag == tar.TypeDir
	if p == "" {
		return nil // the root directory itself: nothing to merge
	}
	if target, opaque, ok := layerfs.Whiteout(p); ok {
		defer m.shadow.Mark(p, false)
		if m.shadow.AncestorHidden(target) {
			return nil
		}
		k := m.shadow.Upper(target)
		switch {
		case opaque:
			if k&(layerfs.File|layerfs.Deleted) != 0 || m.opaque[target] {
				return nil
			}
			m.opaque[target] = true
			return m.f.Filter(m.ctx, e, m.out)
		case k&(layerfs.File|layerfs.Deleted) != 0:
			return nil // replaced or deleted above anyway
		case k&(layerfs.Dir|layerfs.Implied|layerfs.Opaque) != 0:
			// Deleted, then made again as a directory above: whatever
			// the base has below it must stay hidden.
			if m.opaque[target] {
				return nil
			}
			m.opaque[target] = true
			marker := &tar.Header{Name: path.Join(target, layerfs.OpaqueMarker), Typeflag: tar.TypeReg, Mode: 0o644, ModTime: h.ModTime, Format: h.Format}
			return m.f.Filter(m.ctx, Entry{Header: marker, Body: strings.NewReader("")}, m.out)
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
	if h.Typeflag == tar.TypeLink {
		c := cloneHeader(h)
		target := layerfs.Clean(h.Linkname)
		m.links = append(m.links, pendingLink{hdr: &c, layer: layer, index: idx, hidden: m.shadow.Hidden(target, false)})
		return nil
	}
	return m.f.Filter(m.ctx, e, m.out)
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
	for _, l := range m.links {
		if !l.hidden {
			if err := m.f.Filter(m.ctx, Entry{Header: l.hdr, Body: strings.NewReader("")}, m.out); err != nil {
				return fmt.Errorf("%s: %w", l.hdr.Name, err)
			}
			continue
		}
		// The target changed after the link was made: the link keeps the
		// old content, which now lives only in the link.
		target := layerfs.Clean(l.hdr.Linkname)
		key := fmt.Sprintf("%s@%d", target, l.layer)
		if holder, ok := made[key]; ok {
			h := *l.hdr
			h.Linkname = holder
			if err := m.f.Filter(m.ctx, Entry{Header: &h, Body: strings.NewReader("")}, m.out); err != nil {
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
			target, _, _ := layerfs.Whiteout(layerfs.Clean(h.Name))
			if known && !base[target] {
				continue // it deleted only merged content
			}
			if err := m.f.Filter(m.ctx, Entry{Header: h, Body: strings.NewReader("")}, m.out); err != nil {
				return err
			}
		}
	}
	if fl, ok := m.f.(Flusher); ok {
		if err := fl.Flush(m.ctx, m.out); err != nil {
			return err
		}
	}
	return m.out.finish(nil)
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
			limit, target = idx, layerfs.Clean(h.Linkname)
			continue
		}
		var r io.Reader = strings.NewReader("")
		if body != nil {
			defer func() { body.Close(); os.Remove(body.Name()) }()
			r = body
		}
		out := cloneHeader(h)
		out.Name = l.hdr.Name
		return m.f.Filter(m.ctx, Entry{Header: &out, Body: r}, m.out)
	}
	return fmt.Errorf("no content for %s below the link", target)
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
	er := newEntryReader(s.Tar)
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
		e, err := er.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			drop()
			return nil, 0, nil, err
		}
		if layerfs.Clean(e.Header.Name) != target {
			continue
		}
		drop()
		c := cloneHeader(e.Header)
		found, at = &c, idx
		if e.Header.Typeflag == tar.TypeReg {
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
