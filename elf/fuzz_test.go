package elf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	stdelf "debug/elf"
)

// FuzzSplit feeds arbitrary bytes to Split: it must not panic, must wrap
// ErrUnchanged whenever it fails, and when it succeeds the stripped file
// must parse with debug/elf and keep every PT_LOAD byte.
func FuzzSplit(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "hello-*"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(Unneeded))
		f.Add(b, uint8(Debug))
		f.Add(b[:len(b)/2], uint8(Unneeded))
		f.Add(b[:len(b)-1], uint8(All))
		f.Add(b[:64], uint8(Debug))
	}
	f.Add([]byte("\x7fELF\x02\x01\x01"), uint8(Unneeded))
	f.Add([]byte("!<arch>\n"), uint8(Unneeded))
	f.Fuzz(func(t *testing.T, in []byte, m uint8) {
		mode := Mode(m % 4)
		if _, err := Inspect(bytes.NewReader(in), int64(len(in)), mode); err != nil && !errors.Is(err, ErrUnchanged) {
			t.Fatalf("Inspect: %v does not wrap ErrUnchanged", err)
		}
		var s, d bytes.Buffer
		res, err := Split(bytes.NewReader(in), int64(len(in)), mode, "f.debug", &s, &d)
		if err != nil {
			if !errors.Is(err, ErrUnchanged) {
				t.Fatalf("Split: %v does not wrap ErrUnchanged", err)
			}
			if s.Len() != 0 || d.Len() != 0 {
				t.Fatalf("Split failed but wrote output")
			}
			return
		}
		if res.StrippedSize != int64(s.Len()) || res.DebugSize != int64(d.Len()) {
			t.Fatalf("sizes %d/%d, wrote %d/%d", res.StrippedSize, res.DebugSize, s.Len(), d.Len())
		}
		fi, err := stdelf.NewFile(bytes.NewReader(in))
		if err != nil {
			return // we accepted something debug/elf does not; nothing to compare with
		}
		fs, err := stdelf.NewFile(bytes.NewReader(s.Bytes()))
		if err != nil {
			t.Fatalf("stripped output does not parse: %v", err)
		}
		if _, err := stdelf.NewFile(bytes.NewReader(d.Bytes())); err != nil {
			t.Fatalf("debug output does not parse: %v", err)
		}
		// Compare with the three header fields that may change cleared.
		ma, mb := bytes.Clone(in), bytes.Clone(s.Bytes())
		for _, r := range headerFieldsThatMayChange(fi.Class) {
			if r[1] <= len(ma) && r[1] <= len(mb) {
				clear(ma[r[0]:r[1]])
				clear(mb[r[0]:r[1]])
			}
		}
		for i, p := range fi.Progs {
			if p.Type != stdelf.PT_LOAD || p.Filesz == 0 {
				continue
			}
			q := fs.Progs[i]
			if p.ProgHeader != q.ProgHeader {
				t.Fatalf("program header %d changed", i)
			}
			if p.Off+p.Filesz > uint64(len(mb)) {
				t.Fatalf("PT_LOAD %d past the end of the stripped file", i)
			}
			a, b := ma[p.Off:p.Off+p.Filesz], mb[p.Off:p.Off+p.Filesz]
			if !bytes.Equal(a, b) {
				t.Fatalf("PT_LOAD %d changed", i)
			}
		}
	})
}

// FuzzSplitArchive feeds arbitrary bytes after the ar magic to SplitArchive.
func FuzzSplitArchive(f *testing.F) {
	obj, err := os.ReadFile(filepath.Join("testdata", "hello-x86_64.o"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(buildArchive(map[string][]byte{"hello.o": obj}))
	f.Add(buildArchive(map[string][]byte{"a-rather-long-member-name.o": obj, "x.txt": []byte("x")}))
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		res, err := SplitArchive(bytes.NewReader(in), int64(len(in)), &out)
		if err != nil {
			if !errors.Is(err, ErrUnchanged) {
				t.Fatalf("SplitArchive: %v does not wrap ErrUnchanged", err)
			}
			if out.Len() != 0 {
				t.Fatal("SplitArchive failed but wrote output")
			}
			return
		}
		if res.StrippedSize != int64(out.Len()) {
			t.Fatalf("StrippedSize %d, wrote %d", res.StrippedSize, out.Len())
		}
		if _, err := readArchive(bytes.NewReader(out.Bytes()), int64(out.Len())); err != nil {
			t.Fatalf("output archive does not parse: %v", err)
		}
	})
}

// FuzzKept feeds arbitrary bytes to Kept, IsDebugFile, DebugSections and
// ArchiveHasDebug: they must not panic, and whatever Split writes must be
// the same file by Kept as its input.
func FuzzKept(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "hello-*"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(append(bytes.Clone(b), "PK\x05\x06"...))
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte("!<arch>\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, n := bytes.NewReader(in), int64(len(in))
		a, ok, err := Kept(r, n)
		if err != nil {
			t.Fatalf("Kept: %v", err)
		}
		IsDebugFile("usr/bin/x", r, n)
		DebugSections(r, n)
		ArchiveHasDebug(r, n)
		var s, d bytes.Buffer
		if _, err := Split(r, n, Unneeded, "f.debug", &s, &d); err != nil || !ok {
			return
		}
		b, ok, err := Kept(bytes.NewReader(s.Bytes()), int64(s.Len()))
		if err != nil || !ok || a != b {
			t.Fatalf("the stripped file is not the same by Kept: %v %v", ok, err)
		}
	})
}
