package rewrite

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/layerslim/layerslim/drop"
	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/testenv"
)

// tarEntry is a compact description of a tar record for table tests.
type tarEntry struct {
	Name     string
	Type     byte
	Mode     int64
	Body     string
	Link     string
	PAX      map[string]string
	Uid, Gid int
}

func buildTar(t testing.TB, format tar.Format, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, e := range entries {
		typ := e.Type
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.Name, Typeflag: typ, Mode: e.Mode, Linkname: e.Link, ModTime: mt,
			Uid: e.Uid, Gid: e.Gid, PAXRecords: e.PAX, Format: format}
		if format == tar.FormatGNU {
			h.PAXRecords = nil // GNU headers cannot carry them
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if typ == tar.TypeChar || typ == tar.TypeBlock {
			h.Devmajor, h.Devminor = 1, 3
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.Body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readTar(t testing.TB, b []byte) []tarEntry {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var out []tarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("output is not a valid tar: %v", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		pax := map[string]string{}
		for k, v := range h.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") {
				pax[k] = v
			}
		}
		if len(pax) == 0 {
			pax = nil
		}
		out = append(out, tarEntry{Name: h.Name, Type: h.Typeflag, Mode: h.Mode, Body: string(body), Link: h.Linkname, PAX: pax, Uid: h.Uid, Gid: h.Gid})
	}
}

var richEntries = []tarEntry{
	{Name: "etc/", Type: tar.TypeDir, Mode: 0o755},
	{Name: "etc/passwd", Body: "root:x:0:0:root:/root:/bin/sh\n"},
	{Name: "usr/bin/ping", Mode: 0o4755, Body: "\x7fELF not really", PAX: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}},
	{Name: "usr/bin/ping6", Type: tar.TypeLink, Link: "usr/bin/ping"},
	{Name: "usr/lib/" + strings.Repeat("long-directory-name/", 8) + "file.txt", Body: strings.Repeat("x", 1000)},
	{Name: "bin", Type: tar.TypeSymlink, Link: "usr/bin"},
	{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666},
	{Name: "var/lib/.wh.old", Body: ""},
	{Name: "opt/.wh..wh..opq", Body: ""},
	{Name: "etc/passwd", Body: "duplicate entry wins\n"},
	{Name: "empty", Body: ""},
	{Name: "block", Body: strings.Repeat("b", 512)},
}

func TestCopyTarKeepIsByteIdentical(t *testing.T) {
	for _, format := range []tar.Format{tar.FormatUnknown, tar.FormatPAX, tar.FormatGNU} {
		in := buildTar(t, format, richEntries)
		// Real archives often end with more zero blocks than the two
		// required (GNU tar pads to 10 KiB records).
		in = append(in, make([]byte, 8192)...)
		var out bytes.Buffer
		st, err := copyTar(context.Background(), bytes.NewReader(in), &out, Keep())
		if err != nil {
			t.Fatalf("format %v: %v", format, err)
		}
		if !bytes.Equal(in, out.Bytes()) {
			t.Fatalf("format %v: Keep changed the bytes (%d in, %d out)", format, len(in), out.Len())
		}
		if st.changed || st.entriesIn != len(richEntries) || st.entriesOut != len(richEntries) {
			t.Errorf("format %v: stats %+v, want unchanged with %d entries", format, st, len(richEntries))
		}
	}
}

// GNU tar is an independent writer: its archives must survive Keep byte
// for byte too.
func TestCopyTarKeepGNUTar(t *testing.T) {
	gnutar, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("no tar on PATH")
	}
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "root/a/"+strings.Repeat("deep/", 30)), 0o755))
	must(os.WriteFile(filepath.Join(dir, "root/a/file"), bytes.Repeat([]byte("data"), 3000), 0o640))
	must(os.Symlink("file", filepath.Join(dir, "root/a/link")))
	must(os.Link(filepath.Join(dir, "root/a/file"), filepath.Join(dir, "root/a/hard")))
	for _, format := range []string{"gnu", "posix", "ustar"} {
		arch := filepath.Join(dir, format+".tar")
		cmd := exec.Command(gnutar, "--format="+format, "-C", filepath.Join(dir, "root"), "-cf", arch, ".")
		if format == "ustar" {
			// ustar cannot hold the long path; archive the rest.
			cmd = exec.Command(gnutar, "--format=ustar", "-C", filepath.Join(dir, "root/a"), "-cf", arch, "file", "link", "hard")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tar %s: %v\n%s", format, err, out)
		}
		in, err := os.ReadFile(arch)
		must(err)
		var out bytes.Buffer
		st, err := copyTar(context.Background(), bytes.NewReader(in), &out, Keep())
		must(err)
		if !bytes.Equal(in, out.Bytes()) || st.changed {
			t.Errorf("%s: Keep did not reproduce GNU tar's archive (changed=%v)", format, st.changed)
		}
	}
}

func TestCopyTarFilters(t *testing.T) {
	in := buildTar(t, tar.FormatPAX, richEntries)
	tests := []struct {
		name    string
		filter  Filter
		want    []tarEntry
		changed bool
	}{
		{
			name:    "keep",
			filter:  Keep(),
			want:    readTar(t, in),
			changed: false,
		},
		{
			name: "drop one path",
			filter: FilterFunc(func(ctx context.Context, e Entry, next Writer) error {
				if e.Header.Name == "etc/passwd" {
					return nil
				}
				return next.WriteEntry(ctx, e)
			}),
			want: func() []tarEntry {
				var out []tarEntry
				for _, e := range readTar(t, in) {
					if e.Name != "etc/passwd" {
						out = append(out, e)
					}
				}
				return out
			}(),
			changed: true,
		},
		{
			name: "rewrite a body keeps the header",
			filter: FilterFunc(func(ctx context.Context, e Entry, next Writer) error {
				if e.Header.Name != "usr/bin/ping" {
					return next.WriteEntry(ctx, e)
				}
				h := *e.Header
				h.Size = 4
				return next.WriteEntry(ctx, Entry{Header: &h, Body: strings.NewReader("ELF!")})
			}),
			want: func() []tarEntry {
				out := readTar(t, in)
				for i := range out {
					if out[i].Name == "usr/bin/ping" {
						out[i].Body = "ELF!"
					}
				}
				return out
			}(),
			changed: true,
		},
		{
			name: "header changed in place is written anew",
			filter: FilterFunc(func(ctx context.Context, e Entry, next Writer) error {
				if e.Header.Name == "empty" {
					e.Header.Mode = 0o600
				}
				return next.WriteEntry(ctx, e)
			}),
			want: func() []tarEntry {
				out := readTar(t, in)
				for i := range out {
					if out[i].Name == "empty" {
						out[i].Mode = 0o600
					}
				}
				return out
			}(),
			changed: true,
		},
		{
			name: "split adds an entry after the original",
			filter: FilterFunc(func(ctx context.Context, e Entry, next Writer) error {
				if err := next.WriteEntry(ctx, e); err != nil {
					return err
				}
				if e.Header.Name != "block" {
					return nil
				}
				h := &tar.Header{Name: "block.debug", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3, ModTime: e.Header.ModTime}
				return next.WriteEntry(ctx, Entry{Header: h, Body: strings.NewReader("dbg")})
			}),
			want:    append(readTar(t, in), tarEntry{Name: "block.debug", Type: tar.TypeReg, Mode: 0o644, Body: "dbg"}),
			changed: true,
		},
		{
			name: "chain applies filters in order",
			filter: Chain(
				FilterFunc(func(ctx context.Context, e Entry, next Writer) error {
					if strings.HasPrefix(e.Header.Name, "usr/") {
						return nil
					}
					return next.WriteEntry(ctx, e)
				}),
				FilterFunc(func(ctx context.Context, e Entry, next Writer) error {
					if e.Header.Typeflag == tar.TypeChar {
						return nil
					}
					return next.WriteEntry(ctx, e)
				}),
			),
			want: func() []tarEntry {
				var out []tarEntry
				for _, e := range readTar(t, in) {
					if !strings.HasPrefix(e.Name, "usr/") && e.Type != tar.TypeChar {
						out = append(out, e)
					}
				}
				return out
			}(),
			changed: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			st, err := copyTar(context.Background(), bytes.NewReader(in), &out, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, readTar(t, out.Bytes())); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			if st.changed != tc.changed {
				t.Errorf("changed = %v, want %v", st.changed, tc.changed)
			}
			if !tc.changed && !bytes.Equal(in, out.Bytes()) {
				t.Error("unchanged stream is not byte-identical")
			}
		})
	}
}

type flushFilter struct{ seen int }

func (f *flushFilter) Filter(ctx context.Context, e Entry, next Writer) error {
	f.seen++
	return next.WriteEntry(ctx, e)
}

func (f *flushFilter) Flush(ctx context.Context, next Writer) error {
	body := strings.Repeat("n", f.seen)
	return next.WriteEntry(ctx, Entry{Header: &tar.Header{Name: "count", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}, Body: strings.NewReader(body)})
}

func TestCopyTarFlush(t *testing.T) {
	in := buildTar(t, tar.FormatPAX, richEntries[:3])
	var out bytes.Buffer
	// The flushed entry goes through the filters after the flusher: the
	// second filter drops it, so the stream stays as it was.
	drop := FilterFunc(func(ctx context.Context, e Entry, next Writer) error {
		if e.Header.Name == "count" {
			return nil
		}
		return next.WriteEntry(ctx, e)
	})
	st, err := copyTar(context.Background(), bytes.NewReader(in), &out, Chain(&flushFilter{}, drop))
	if err != nil {
		t.Fatal(err)
	}
	if st.changed || !bytes.Equal(in, out.Bytes()) {
		t.Error("a flushed entry that a later filter drops changed the stream")
	}
	out.Reset()
	if _, err := copyTar(context.Background(), bytes.NewReader(in), &out, &flushFilter{}); err != nil {
		t.Fatal(err)
	}
	got := readTar(t, out.Bytes())
	if last := got[len(got)-1]; last.Name != "count" || last.Body != "nnn" {
		t.Errorf("last entry = %+v, want the flushed count of 3", last)
	}
}

func TestCopyTarMalformed(t *testing.T) {
	good := buildTar(t, tar.FormatPAX, richEntries)
	corrupt := bytes.Clone(good)
	corrupt[512+148] ^= 0xff // break the checksum of the second header
	tests := []struct {
		name string
		in   []byte
	}{
		{"truncated in a body", good[:1024+10]},
		{"no end-of-archive marker", good[:len(good)-1024]},
		{"bad header checksum", corrupt},
		{"garbage", bytes.Repeat([]byte("not a tar archive "), 100)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := copyTar(context.Background(), bytes.NewReader(tc.in), io.Discard, Keep())
			if err == nil {
				t.Fatal("no error for a malformed stream")
			}
			var te *TarError
			if !errors.As(err, &te) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("error %v is neither a TarError nor an unexpected EOF", err)
			}
		})
	}
}

func TestCopyTarEmptyStream(t *testing.T) {
	var out bytes.Buffer
	st, err := copyTar(context.Background(), bytes.NewReader(nil), &out, Keep())
	if err != nil {
		t.Fatal(err)
	}
	if !st.changed || out.Len() != 1024 || !allZero(out.Bytes()) {
		t.Errorf("empty input gave %d bytes (changed=%v), want a 1024-byte end-of-archive marked changed", out.Len(), st.changed)
	}
}

// FuzzCopyTar runs arbitrary bytes as a tar stream through copyTar with
// the filter chains a rewrite builds: keep-all, drop, and drop then ELF
// split. Nothing may panic; a stream reported unchanged must come out byte
// for byte; any output must be a tar stream of the entries written.
func FuzzCopyTar(f *testing.F) {
	f.Add(buildTar(f, tar.FormatPAX, richEntries))
	f.Add(buildTar(f, tar.FormatGNU, richEntries[:4]))
	f.Add([]byte{})
	obj, err := os.ReadFile("../elf/testdata/hello-x86_64.o")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(buildTar(f, tar.FormatPAX, []tarEntry{
		{Name: "usr/lib/hello.o", Body: string(obj)},
		{Name: "../../tmp/cache", Body: "x"},
		{Name: "usr/lib/hello2.o", Type: tar.TypeLink, Link: "usr/lib/hello.o"},
	}))
	f.Add(buildTar(f, tar.FormatPAX, richEntries[:2])[:1024+100]) // truncated
	f.Add(testenv.SparseBomb(1 << 40))                            // 3 KiB, one 1 TiB file
	f.Add(paxChain(f, 2, 100))
	m, err := drop.New([]string{"default"}, []string{"tmp/**", "etc/passwd"}, nil)
	if err != nil {
		f.Fatal(err)
	}
	tmp := f.TempDir()
	// A sparse entry's body is its holes expanded: a few bytes of input
	// can ask for exabytes. Bodies are bounded as a rewrite bounds them.
	const maxBody = 1 << 20
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		st, err := copyTarLimit(context.Background(), bytes.NewReader(in), &out, Keep(), maxBody)
		if err == nil {
			if !st.changed && !bytes.Equal(in, out.Bytes()) {
				t.Fatal("reported unchanged but bytes differ")
			}
			checkTarOut(t, out.Bytes(), st.entriesOut)
		}
		for _, chain := range []Filter{
			Drop(m, nil),
			Chain(Drop(m, nil), SplitELF(elf.Unneeded, tmp, nopRecorder{}, func(d DebugFile) { d.Close() })),
		} {
			out.Reset()
			st, err := copyTarLimit(context.Background(), bytes.NewReader(in), &out, chain, maxBody)
			if err != nil {
				continue
			}
			checkTarOut(t, out.Bytes(), st.entriesOut)
		}
	})
}

type nopRecorder struct{}

func (nopRecorder) Record(Change) {}

// checkTarOut reads a copyTar output: it must hold n entries and read to
// its end without error. (Its bodies are read through, so a header that
// promises more than follows fails here.)
func checkTarOut(t *testing.T, b []byte, n int) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	got := 0
	for {
		_, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("output entry %d: %v", got+1, err)
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			t.Fatalf("output entry %d body: %v", got+1, err)
		}
		got++
	}
	if got != n {
		t.Fatalf("output holds %d entries, copyTar wrote %d", got, n)
	}
}

func TestPeekAndWithBodyKeepBytes(t *testing.T) {
	in := buildTar(t, tar.FormatPAX, richEntries)
	var out bytes.Buffer
	f := FilterFunc(func(ctx context.Context, e Entry, next Writer) error {
		head, err := e.Peek(4)
		if err != nil {
			return err
		}
		if string(head) == "\x7fELF" {
			body, _ := io.ReadAll(e.Body)
			return next.WriteEntry(ctx, e.WithBody(bytes.NewReader(body)))
		}
		return next.WriteEntry(ctx, e)
	})
	st, err := copyTar(context.Background(), bytes.NewReader(in), &out, f)
	if err != nil {
		t.Fatal(err)
	}
	if st.changed || !bytes.Equal(in, out.Bytes()) {
		t.Error("peeking and re-supplying the same body changed the stream")
	}
}
