package rewrite

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/layerslim/layerslim/drop"
	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/limit"
	"github.com/layerslim/layerslim/internal/spool"
	"github.com/layerslim/layerslim/internal/whiteout"
	"github.com/layerslim/layerslim/tarfilter"
)

// DebugDir is where debug files go in the debug image.
const DebugDir = elf.DebugDir

// memSpool is how much of an ELF file is kept in memory before it goes to
// a temporary file.
const memSpool = 1 << 20

// DefaultStripSkip are the paths whose ELF files are never split: test
// data is not a program (the Go toolchain's debug/elf tests read their
// testdata files' debug sections).
var DefaultStripSkip = elf.DefaultStripSkip

// The Change actions of the ELF splitter.
const (
	// ActionStripped: an ELF file lost its debug sections to the debug image.
	ActionStripped ChangeAction = "stripped"
	// ActionMovedDebug: a separate debug file (under /usr/lib/debug, or
	// shaped like objcopy --only-keep-debug output) went whole to the
	// debug image, at the same path.
	ActionMovedDebug ChangeAction = "moved-to-debug-image"
	// ActionKeptDebug: an ELF file (or static archive) still carries debug
	// sections after the rewrite; the reason says why.
	ActionKeptDebug ChangeAction = "elf-kept-debug"
	// ActionLeftUnchanged: a file that looks like ELF but is malformed.
	ActionLeftUnchanged ChangeAction = "elf-left-unchanged"
)

// DebugFile is the debug half of an ELF file, bound for the debug image.
type DebugFile struct {
	Name    string // path in the debug layer: usr/lib/debug/.build-id/xx/rest.debug or usr/lib/debug/<path>.debug
	Source  string // the stripped file's path in the image
	BuildID string
	ModTime time.Time
	// CRC is the CRC32 of the file, as a .gnu_debuglink carries it.
	CRC uint32
	// Sections are the non-allocated sections with contents it holds.
	Sections []string
	// Moved is set for a separate debug file of the source image, moved
	// whole (its Name is its own path).
	Moved bool
	data  *spool.Spool
}

// Size is the debug file's size.
func (d DebugFile) Size() int64 { return d.data.Size() }

// Open returns the debug file's bytes.
func (d DebugFile) Open() io.Reader { return d.data.Reader() }

// Close removes the debug file's spool.
func (d DebugFile) Close() error { return d.data.Close() }

// DebugPath is where the debug file of the ELF file at clean path p with
// build-id id lives in the debug image: elf.DebugPath.
func DebugPath(p, id string) string { return elf.DebugPath(p, id) }

// SplitELF strips the ELF files it sees (found by their magic bytes, not
// their names) and hands each debug file to debug. Files with nothing to
// strip, and files that only look like ELF, go through byte for byte; the
// latter are noted in the report. Hardlinks need nothing: they follow
// their target.
//
// Left byte-identical, and named in the report when they carry debug
// sections: relocatable objects other than kernel modules and static
// archives (inputs to later links, which need their debug information),
// files under DefaultStripSkip, and programs with bytes after their ELF
// data (an appended payload). Separate debug files are not split: they
// go whole to debug, at their own path.
//
// An ELF file larger than DefaultMaxSpool is an error; WithMaxSpool sets
// another limit for the filter that Image and Index make.
func SplitELF(mode elf.Mode, tempDir string, rec Recorder, debug func(DebugFile)) tarfilter.Filter {
	return splitELF(splitConfig{mode: mode, tempDir: tempDir, maxSpool: DefaultMaxSpool, skip: mustGlobs(DefaultStripSkip)}, rec, debug)
}

// splitConfig is what the ELF splitter of one run needs.
type splitConfig struct {
	mode     elf.Mode
	tempDir  string
	maxSpool int64 // 0: none
	skip     []*drop.Pattern
	// links maps the name of a build-id debug file to the CRC of the copy
	// the debug image ships; stripped copies of that build-id carry it.
	links map[string]uint32
}

func mustGlobs(gs []string) []*drop.Pattern {
	ps, err := compileGlobs(gs)
	if err != nil {
		panic(err)
	}
	return ps
}

func compileGlobs(gs []string) ([]*drop.Pattern, error) {
	var ps []*drop.Pattern
	for _, g := range gs {
		p, err := drop.Glob(g)
		if err != nil {
			return nil, fmt.Errorf("--strip-skip %q: %w", g, err)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func splitELF(c splitConfig, rec Recorder, debug func(DebugFile)) tarfilter.Filter {
	mode, tempDir, maxSpool := c.mode, c.tempDir, c.maxSpool
	// moved are the separate debug files this layer moved, by path: a
	// hardlink to one of them goes with it, as a copy in the debug layer.
	var moved map[string]DebugFile
	return tarfilter.FilterFunc(func(ctx context.Context, e tarfilter.Entry, next tarfilter.Writer) error {
		if mode != elf.None && e.Header.Typeflag == tar.TypeLink {
			if m, ok := moved[whiteout.Clean(e.Header.Linkname)]; ok {
				p := whiteout.Clean(e.Header.Name)
				d, err := movedDebugFile(m.data, m.Size(), p, tempDir, e.Header.ModTime)
				if err != nil {
					return err
				}
				debug(d)
				rec.Record(Change{Path: e.Header.Name, Action: ActionMovedDebug, Reason: "hardlink to the moved " + m.Name})
				return nil
			}
		}
		if mode == elf.None || e.Header.Typeflag != tar.TypeReg || e.Header.Size < 16 {
			return next.WriteEntry(ctx, e)
		}
		head, err := e.Peek(8)
		if err != nil {
			return err
		}
		isELF := bytes.HasPrefix(head, []byte("\x7fELF"))
		isAr := bytes.Equal(head, []byte("!<arch>\n"))
		if !isELF && !isAr {
			return next.WriteEntry(ctx, e)
		}
		if maxSpool > 0 && e.Header.Size > maxSpool {
			return limit.Spool(e.Header.Size, maxSpool)
		}
		in := spool.New(tempDir, memSpool, maxSpool)
		defer in.Close()
		// ReadFrom, not io.Copy: the body (a Peek's MultiReader) would
		// take over through WriteTo with a buffer of its own per file.
		if _, err := in.ReadFrom(e.Body); err != nil {
			if errors.Is(err, spool.ErrTooLarge) {
				return limit.Spool(-1, maxSpool)
			}
			return err
		}
		size := in.Size()
		p := whiteout.Clean(e.Header.Name)
		original := func() error { return next.WriteEntry(ctx, e.WithBody(in.Reader())) }
		keptDebug := func(reason string) error {
			rec.Record(Change{Path: e.Header.Name, Action: ActionKeptDebug, Reason: reason})
			return original()
		}
		if isAr {
			if elf.ArchiveHasDebug(in, size) {
				return keptDebug("static archive (an input to later links: its debug information is kept)")
			}
			return original()
		}
		if elf.IsDebugFile(p, in, size) {
			d, err := movedDebugFile(in, size, p, tempDir, e.Header.ModTime)
			if err != nil {
				return err
			}
			debug(d)
			if moved == nil {
				moved = map[string]DebugFile{}
			}
			moved[p] = d
			rec.Record(Change{Path: e.Header.Name, Action: ActionMovedDebug, Bytes: size, Reason: "separate debug file"})
			return nil
		}
		info, err := elf.Inspect(in, size, mode)
		if err != nil {
			var fe *elf.FormatError
			if errors.As(err, &fe) || errors.Is(err, elf.ErrNotELF) {
				rec.Record(Change{Path: e.Header.Name, Action: ActionLeftUnchanged, Reason: err.Error()})
			}
			return original()
		}
		keep := func(reason string) error {
			if info.HasDebug {
				return keptDebug(reason)
			}
			return original()
		}
		for _, g := range c.skip {
			if g.Match(p) {
				return keep("matches strip-skip glob " + g.String())
			}
		}
		if info.LinkInput() {
			return keep("relocatable object (an input to later links: its debug information is kept)")
		}
		name := DebugPath(p, info.BuildID)
		stripped := spool.New(tempDir, memSpool, 0)
		defer func() { stripped.Close() }()
		dbg := spool.New(tempDir, 0, 0)
		res, err := elf.Split(in, size, mode, elf.DebugLinkName(p, info.BuildID), stripped, dbg)
		if err == nil && info.BuildID != "" {
			if crc, ok := c.links[name]; ok && crc != res.DebugCRC {
				// Another copy of this build-id has the richer debug
				// file, which the debug image ships: point at it.
				dbg.Close()
				dbg = nil
				stripped.Close()
				stripped = spool.New(tempDir, memSpool, 0)
				res, err = elf.SplitLinked(in, size, mode, path.Base(name), crc, stripped)
			}
		}
		closeDbg := func() {
			if dbg != nil {
				dbg.Close()
			}
		}
		if errors.Is(err, elf.ErrUnchanged) {
			closeDbg()
			return keep(strings.TrimPrefix(err.Error(), "elf: file left unchanged: "))
		}
		if err != nil {
			closeDbg()
			return fmt.Errorf("splitting debug info: %w", err)
		}
		// The stripped file must be the same ELF file but its debug
		// information, by the definition verify checks.
		if same, err := sameKept(in, size, stripped); err != nil || !same {
			closeDbg()
			if err != nil {
				return err
			}
			return keep("the stripped file would not be the same ELF file (elf.Kept differs)")
		}
		if dbg != nil {
			debug(DebugFile{Name: name, Source: p, BuildID: info.BuildID, ModTime: e.Header.ModTime, CRC: res.DebugCRC, Sections: res.DebugSections, data: dbg})
		}
		h := tarfilter.CloneHeader(e.Header)
		h.Size = stripped.Size()
		rec.Record(Change{Path: e.Header.Name, Action: ActionStripped, Bytes: size - h.Size, Reason: "strip=" + mode.String()})
		return next.WriteEntry(ctx, tarfilter.Entry{Header: &h, Body: stripped.Reader()})
	})
}

// sameKept reports whether in and out are the same ELF file but their
// debug information.
func sameKept(in io.ReaderAt, size int64, out *spool.Spool) (bool, error) {
	a, ok, err := elf.Kept(in, size)
	if err != nil || !ok {
		return false, err
	}
	b, ok, err := elf.Kept(out, out.Size())
	if err != nil || !ok {
		return false, err
	}
	return a == b, nil
}

// movedDebugFile is a separate debug file of the source, bound for the
// debug image at its own path.
func movedDebugFile(in *spool.Spool, size int64, p, tempDir string, mtime time.Time) (DebugFile, error) {
	// in stays valid: the moved file's spool lives until the debug layer
	// is written.
	d := DebugFile{Name: p, Source: p, ModTime: mtime, Moved: true}
	if info, err := elf.Inspect(in, size, elf.Debug); err == nil {
		d.BuildID = info.BuildID
	}
	d.Sections = elf.DebugSections(in, size)
	d.data = spool.New(tempDir, 0, 0)
	crc := crc32.NewIEEE()
	if _, err := io.Copy(io.MultiWriter(d.data, crc), in.Reader()); err != nil {
		d.data.Close()
		return DebugFile{}, err
	}
	d.CRC = crc.Sum32()
	return d, nil
}

// writeDebugLayer writes the debug layer's tar stream: the debug files
// sorted by path under entries for every parent directory (mode 0755,
// root, the newest debug file's time). Of two debug files with one name
// the last wins (debugFiles leaves one per name).
func writeDebugLayer(ctx context.Context, w io.Writer, files []DebugFile) error {
	byName := map[string]DebugFile{}
	var names []string
	var newest time.Time
	for _, f := range files {
		if _, dup := byName[f.Name]; !dup {
			names = append(names, f.Name)
		}
		byName[f.Name] = f
		if f.ModTime.After(newest) {
			newest = f.ModTime
		}
	}
	sort.Strings(names)
	tw := tarfilter.NewArchiveWriter(w)
	dirs := map[string]bool{}
	var mkdirs func(d string) error
	mkdirs = func(d string) error {
		// Every parent gets an entry, usr and usr/lib included, with the
		// same fixed metadata as the rest: without one, a runtime makes
		// it with the time of the pull.
		if d == "." || dirs[d] {
			return nil
		}
		if err := mkdirs(path.Dir(d)); err != nil {
			return err
		}
		dirs[d] = true
		return tw.WriteEntry(ctx, tarfilter.Entry{Header: &tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: newest, Format: tar.FormatPAX}})
	}
	for _, n := range names {
		f := byName[n]
		if err := mkdirs(path.Dir(n)); err != nil {
			return err
		}
		h := &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: f.Size(), ModTime: f.ModTime, Format: tar.FormatPAX}
		if err := tw.WriteEntry(ctx, tarfilter.Entry{Header: h, Body: f.Open()}); err != nil {
			return err
		}
	}
	return tw.Close()
}
