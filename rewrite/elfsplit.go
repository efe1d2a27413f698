package rewrite

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"time"

	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/layerfs"
	"github.com/layerslim/layerslim/internal/limit"
	"github.com/layerslim/layerslim/internal/spool"
)

// DebugDir is where debug files go in the debug image.
const DebugDir = "usr/lib/debug"

// memSpool is how much of an ELF file is kept in memory before it goes to
// a temporary file.
const memSpool = 1 << 20

// DebugFile is the debug half of an ELF file, bound for the debug image.
type DebugFile struct {
	Name    string // path in the debug layer: usr/lib/debug/.build-id/xx/rest.debug or usr/lib/debug/<path>.debug
	Source  string // the stripped file's path in the image
	BuildID string
	ModTime time.Time
	data    *spool.Spool
}

// Size is the debug file's size.
func (d DebugFile) Size() int64 { return d.data.Size() }

// Open returns the debug file's bytes.
func (d DebugFile) Open() io.Reader { return d.data.Reader() }

// Close removes the debug file's spool.
func (d DebugFile) Close() error { return d.data.Close() }

// DebugPath is where the debug file of the ELF file at clean path p with
// build-id id lives: the build-id layout gdb, perf and debuginfod read, or
// the path layout for files without a build-id.
func DebugPath(p, id string) string {
	if len(id) > 2 {
		return path.Join(DebugDir, ".build-id", id[:2], id[2:]+".debug")
	}
	return path.Join(DebugDir, p+".debug")
}

// SplitELF strips the ELF files it sees (found by their magic bytes, not
// their names) and hands each debug file to debug. Files with nothing to
// strip, and files that only look like ELF, go through byte for byte; the
// latter are noted in the report. Static archives lose their members'
// debug sections. Hardlinks need nothing: they follow their target.
//
// An ELF file larger than DefaultMaxSpool is an error; WithLimits sets
// another limit for the filter that Image and Index make.
func SplitELF(mode elf.Mode, tempDir string, rec Recorder, debug func(DebugFile)) Filter {
	return splitELF(mode, tempDir, DefaultMaxSpool, rec, debug)
}

// splitELF is SplitELF with maxSpool (0: none) bounding the file it spools.
func splitELF(mode elf.Mode, tempDir string, maxSpool int64, rec Recorder, debug func(DebugFile)) Filter {
	return FilterFunc(func(ctx context.Context, e Entry, next Writer) error {
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
		if _, err := io.Copy(in, e.Body); err != nil {
			if errors.Is(err, spool.ErrTooLarge) {
				return limit.Spool(-1, maxSpool)
			}
			return err
		}
		size := in.Size()
		p := layerfs.Clean(e.Header.Name)
		keep := func(why error) error {
			var fe *elf.FormatError
			if errors.As(why, &fe) || errors.Is(why, elf.ErrNotELF) {
				rec.Record(Change{Path: e.Header.Name, Action: "elf-left-unchanged", Reason: why.Error()})
			}
			return next.WriteEntry(ctx, e.WithBody(in.Reader()))
		}
		stripped := spool.New(tempDir, memSpool, 0)
		defer stripped.Close()
		var dbg *spool.Spool
		if isAr {
			_, err = elf.SplitArchive(in, size, stripped)
		} else {
			info, ierr := elf.Inspect(in, size, mode)
			if ierr != nil {
				return keep(ierr)
			}
			name := DebugPath(p, info.BuildID)
			dbg = spool.New(tempDir, 0, 0)
			_, err = elf.Split(in, size, mode, path.Base(name), stripped, dbg)
			if err == nil {
				debug(DebugFile{Name: name, Source: p, BuildID: info.BuildID, ModTime: e.Header.ModTime, data: dbg})
				dbg = nil
			}
		}
		if dbg != nil {
			dbg.Close()
		}
		if errors.Is(err, elf.ErrUnchanged) {
			return keep(err)
		}
		if err != nil {
			return fmt.Errorf("splitting debug info: %w", err)
		}
		h := cloneHeader(e.Header)
		h.Size = stripped.Size()
		rec.Record(Change{Path: e.Header.Name, Action: "stripped", Bytes: size - h.Size, Reason: "strip=" + mode.String()})
		return next.WriteEntry(ctx, Entry{Header: &h, Body: stripped.Reader()})
	})
}

// writeDebugLayer writes the debug layer's tar stream: the debug files
// sorted by path under directories made for them. Of two debug files with
// one name (an ELF file without a build-id at a path that a later entry or
// layer writes again) the last wins, as its ELF file does.
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
	tw := newTarWriter(w)
	dirs := map[string]bool{}
	var mkdirs func(d string) error
	mkdirs = func(d string) error {
		// usr and usr/lib exist in the image; entries for them would
		// replace their metadata.
		if d == "." || d == "usr" || d == "usr/lib" || dirs[d] {
			return nil
		}
		if err := mkdirs(path.Dir(d)); err != nil {
			return err
		}
		dirs[d] = true
		return tw.WriteEntry(ctx, Entry{Header: &tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: newest, Format: tar.FormatPAX}})
	}
	for _, n := range names {
		f := byName[n]
		if err := mkdirs(path.Dir(n)); err != nil {
			return err
		}
		h := &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: f.Size(), ModTime: f.ModTime, Format: tar.FormatPAX}
		if err := tw.WriteEntry(ctx, Entry{Header: h, Body: f.Open()}); err != nil {
			return err
		}
	}
	return tw.finish(nil)
}
