package verify

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/blob"
	"github.com/layerslim/layerslim/internal/limit"
	"github.com/layerslim/layerslim/internal/tarentry"
	"github.com/layerslim/layerslim/internal/whiteout"
)

// ErrDigestMismatch is returned when a layer blob's bytes do not hash to
// the digest its descriptor gives.
var ErrDigestMismatch = blob.ErrDigestMismatch

// node is what the merged filesystem holds at one path.
type node struct {
	typ          byte // tar.TypeReg (also for hardlinks), TypeDir, TypeSymlink, TypeChar, TypeBlock, TypeFifo…
	implicit     bool // a directory no entry describes, made for a path below it
	mode         int64
	uid, gid     int
	mtime        time.Time
	xattrs       map[string]string
	link         string // symlink target
	major, minor int64
	size         int64
	sum          [sha256.Size]byte  // content of a regular file
	elf          *[sha256.Size]byte // the part of an ELF file stripping must keep; nil if not ELF or not checkable
	inode        int                // hardlink group within one tree; 0 when never linked
	debugFile    bool               // a separate debug file (elf.IsDebugFile), which a rewrite moves to the debug image
}

// op is what a layer entry does to the tree.
type op uint8

const (
	opPut      op = iota // create or replace the path
	opLink               // hardlink the path to target
	opWhiteout           // delete the path and its subtree from lower layers
	opOpaque             // delete the children of the directory from lower layers
)

// record is one tar entry, reduced to what the merged filesystem keeps.
type record struct {
	name   string
	op     op
	target string // opLink: the clean path linked to
	node   node
}

// layerScan is what one layer holds: its records sorted by path in a
// temporary file (see spill.go).
type layerScan struct {
	file string
	// linkNames are the paths hardlinks name: each one's own and its
	// target's (see links.go).
	linkNames []string
	diffID    v1.Hash
	// late are the whiteouts that come after entries under their
	// directory, unclean the names that climb out of the root, as the
	// layer spells them (see internal/whiteout).
	late, unclean []string
}

// scanLayer reads one layer blob once: it checks the blob's digest, hashes
// the uncompressed stream (the diff_id) and every file body, and spools
// ELF files to o.TempDir one at a time, within o's limits (resolved by
// withDefaults: 0 is none).
func scanLayer(ctx context.Context, l v1.Layer, desc v1.Descriptor, o Options) (*layerScan, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("opening blob: %w", err)
	}
	defer rc.Close()
	b := blob.NewReader(ctx, rc, desc.Digest, desc.Size, nil)
	codec, r, err := compress.Detect(b)
	if err != nil {
		return nil, fmt.Errorf("reading blob: %w", err)
	}
	dr, err := compress.NewReader(codec, r)
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	// The uncompressed stream, hashed into the diff_id (a blob.Reader with
	// no digest to check: sha256).
	stream := blob.NewReader(ctx, limit.Reader(dr, o.MaxLayerSize, limit.Layer(o.MaxLayerSize)), v1.Hash{}, 0, nil)
	tr := tar.NewReader(stream)
	// Sparse files' bodies are their holes expanded: bound them all.
	bodies := limit.Reader(tr, o.MaxLayerSize, limit.Files(o.MaxLayerSize))
	s := &layerScan{}
	sorted := &sorter{dir: o.TempDir}
	defer sorted.remove()
	var order whiteout.OrderCheck
	last := ""
	var seq uint64
	prev := "\x00"              // the name of the last entry (not whiteout) added
	buf := make([]byte, 32<<10) // for hashing file bodies: one, not one per file
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if last != "" {
				return nil, fmt.Errorf("reading tar after %s: %w", last, err)
			}
			return nil, fmt.Errorf("reading tar: %w", err)
		}
		last = h.Name
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue // PAX defaults, not a file
		}
		s.noteNames(&order, h)
		rec, err := readEntry(tarentry.Body(bodies, h.Size), h, o, buf)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.Name, err)
		}
		seq++
		if rec.op == opLink && rec.name != rec.target {
			s.linkNames = append(s.linkNames, rec.name, rec.target)
		}
		if err := s.add(sorted, rec, seq, &prev); err != nil {
			return nil, err
		}
	}
	// The diff_id covers the end-of-archive blocks and any padding after
	// them, and the blob digest every byte of the blob.
	if _, err := io.Copy(io.Discard, stream); err != nil {
		return nil, fmt.Errorf("reading tar: %w", err)
	}
	if err := b.Finish(); err != nil {
		return nil, err
	}
	if s.file, err = sorted.finish(); err != nil {
		return nil, err
	}
	s.diffID = stream.Digest()
	return s, nil
}

// add sorts rec, the seq-th entry of the layer, in. An entry (not a
// whiteout) also adds a touch record for each of its parents (not the
// root) that it may turn into a directory: those the previous entry,
// *prev, was not below, since nothing but entries changes the tree
// between two entries.
func (s *layerScan) add(sorted *sorter, rec record, seq uint64, prev *string) error {
	switch {
	case rec.op == opWhiteout || rec.op == opOpaque:
		return sorted.add(srec{pos: pos{phase: 0, seq: seq}, record: rec})
	case rec.op == opLink && rec.name == rec.target:
		return nil // tree.link: a no-op
	}
	at := pos{phase: 1, seq: seq}
	for dir := parentDir(rec.name); dir != "" && !under(*prev, dir); dir = parentDir(dir) {
		if err := sorted.add(srec{pos: at, record: record{name: dir, op: opTouch}}); err != nil {
			return err
		}
	}
	*prev = rec.name
	return sorted.add(srec{pos: at, record: rec})
}

// parentDir is the directory of clean path p, "" for the root.
func parentDir(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return ""
}

// remove deletes the scan's record file.
func (s *layerScan) remove() {
	if s.file != "" {
		os.Remove(s.file)
		s.file = ""
	}
}

// checkBlob reads a layer blob whose content was scanned from another
// copy and checks its digest.
func checkBlob(ctx context.Context, l v1.Layer, desc v1.Descriptor) error {
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("opening blob: %w", err)
	}
	defer rc.Close()
	return blob.NewReader(ctx, rc, desc.Digest, desc.Size, nil).Finish()
}

var elfMagic = []byte("\x7fELF")

// readEntry turns one tar header (and its body) into a record.
func readEntry(tr io.Reader, h *tar.Header, o Options, buf []byte) (record, error) {
	name := whiteout.Clean(h.Name)
	if target, opaque, ok := whiteout.Parse(name); ok {
		if err := whiteout.Check(name); err != nil {
			return record{}, err
		}
		if opaque {
			return record{name: target, op: opOpaque}, nil
		}
		return record{name: target, op: opWhiteout}, nil
	}
	n := node{
		typ:   h.Typeflag,
		mode:  h.Mode & 0o7777,
		uid:   h.Uid,
		gid:   h.Gid,
		mtime: h.ModTime,
	}
	for k, v := range h.PAXRecords {
		if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if n.xattrs == nil {
				n.xattrs = map[string]string{}
			}
			n.xattrs[x] = v
		}
	}
	switch h.Typeflag {
	case tar.TypeLink:
		return record{name: name, op: opLink, target: whiteout.Clean(h.Linkname)}, nil
	case tar.TypeSymlink:
		n.link = h.Linkname
	case tar.TypeChar, tar.TypeBlock:
		n.major, n.minor = h.Devmajor, h.Devminor
	case tar.TypeDir, tar.TypeFifo:
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeCont:
		n.typ = tar.TypeReg
		var err error
		if n.size, n.sum, n.elf, n.debugFile, err = readBody(tr, name, h.Size, o, buf); err != nil {
			return record{}, err
		}
	}
	return record{name: name, op: opPut, node: n}, nil
}

// readBody hashes a file body as it streams. An ELF file is spooled to a
// temporary file, removed before readBody returns, to digest its loadable
// segments.
func readBody(r io.Reader, name string, hdrSize int64, o Options, buf []byte) (size int64, sum [sha256.Size]byte, elfSum *[sha256.Size]byte, debugFile bool, err error) {
	var head [4]byte
	n, err := io.ReadFull(r, head[:])
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return 0, sum, nil, false, err
	}
	h := sha256.New()
	h.Write(head[:n])
	if n < len(head) || !bytes.Equal(head[:], elfMagic) {
		m, err := io.CopyBuffer(h, r, buf)
		if err != nil {
			return 0, sum, nil, false, err
		}
		h.Sum(sum[:0])
		return int64(n) + m, sum, nil, false, nil
	}

	if o.MaxSpool > 0 && hdrSize > o.MaxSpool {
		return 0, sum, nil, false, limit.Spool(hdrSize, o.MaxSpool)
	}
	f, err := os.CreateTemp(o.TempDir, "layerslim-verify-*.elf")
	if err != nil {
		return 0, sum, nil, false, fmt.Errorf("spooling ELF file: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	size, err = io.Copy(io.MultiWriter(f, h), io.MultiReader(bytes.NewReader(head[:]), r))
	if err != nil {
		return 0, sum, nil, false, err
	}
	h.Sum(sum[:0])
	elfSum, err = elfDigest(f, size)
	if err != nil {
		return 0, sum, nil, false, fmt.Errorf("reading spooled ELF file: %w", err)
	}
	return size, sum, elfSum, elf.IsDebugFile(name, f, size), nil
}
