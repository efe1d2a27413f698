package tarfilter

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

	"github.com/google/go-cmp/cmp"
	"github.com/layerslim/layerslim/internal/testenv"
)

// buildTar is the tar of files in format, by testenv.TarLayer.
func buildTar(t testing.TB, format tar.Format, files []testenv.File) []byte {
	t.Helper()
	return testenv.TarLayer(t, testenv.InFormat(format, files))
}

// readTar is testenv.ReadTar of b.
func readTar(t testing.TB, b []byte) []testenv.File {
	t.Helper()
	return testenv.ReadTar(t, bytes.NewReader(b))
}

// richEntries is a layer of every kind of entry.
var richEntries = testenv.EveryKind()

func TestCopyKeepIsByteIdentical(t *testing.T) {
	for _, format := range []tar.Format{tar.FormatUnknown, tar.FormatPAX, tar.FormatGNU} {
		in := buildTar(t, format, richEntries)
		// Real archives often end with more zero blocks than the two
		// required (GNU tar pads to 10 KiB records).
		in = append(in, make([]byte, 8192)...)
		var out bytes.Buffer
		st, err := Copy(context.Background(), bytes.NewReader(in), &out, Keep())
		if err != nil {
			t.Fatalf("format %v: %v", format, err)
		}
		if !bytes.Equal(in, out.Bytes()) {
			t.Fatalf("format %v: Keep changed the bytes (%d in, %d out)", format, len(in), out.Len())
		}
		if st.Changed || st.EntriesIn != len(richEntries) || st.EntriesOut != len(richEntries) {
			t.Errorf("format %v: stats %+v, want unchanged with %d entries", format, st, len(richEntries))
		}
	}
}

// GNU tar is an independent writer: its archives must survive Keep byte
// for byte too.
func TestCopyKeepGNUTar(t *testing.T) {
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
		st, err := Copy(context.Background(), bytes.NewReader(in), &out, Keep())
		must(err)
		if !bytes.Equal(in, out.Bytes()) || st.Changed {
			t.Errorf("%s: Keep did not reproduce GNU tar's archive (changed=%v)", format, st.Changed)
		}
	}
}

func TestCopyFilters(t *testing.T) {
	in := buildTar(t, tar.FormatPAX, richEntries)
	tests := []struct {
		name    string
		filter  Filter
		want    []testenv.File
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
			want: func() []testenv.File {
				var out []testenv.File
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
			want: func() []testenv.File {
				out := readTar(t, in)
				for i := range out {
					if out[i].Name == "usr/bin/ping" {
						out[i].Body = []byte("ELF!")
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
			want: func() []testenv.File {
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
			want:    append(readTar(t, in), testenv.File{Name: "block.debug", Typeflag: tar.TypeReg, Mode: 0o644, Body: []byte("dbg"), ModTime: testenv.DefaultModTime}),
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
			want: func() []testenv.File {
				var out []testenv.File
				for _, e := range readTar(t, in) {
					if !strings.HasPrefix(e.Name, "usr/") && e.Typeflag != tar.TypeChar {
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
			st, err := Copy(context.Background(), bytes.NewReader(in), &out, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, readTar(t, out.Bytes())); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			if st.Changed != tc.changed {
				t.Errorf("changed = %v, want %v", st.Changed, tc.changed)
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

func TestCopyFlush(t *testing.T) {
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
	st, err := Copy(context.Background(), bytes.NewReader(in), &out, Chain(&flushFilter{}, drop))
	if err != nil {
		t.Fatal(err)
	}
	if st.Changed || !bytes.Equal(in, out.Bytes()) {
		t.Error("a flushed entry that a later filter drops changed the stream")
	}
	out.Reset()
	if _, err := Copy(context.Background(), bytes.NewReader(in), &out, &flushFilter{}); err != nil {
		t.Fatal(err)
	}
	got := readTar(t, out.Bytes())
	if last := got[len(got)-1]; last.Name != "count" || string(last.Body) != "nnn" {
		t.Errorf("last entry = %+v, want the flushed count of 3", last)
	}
}

func TestCopyMalformed(t *testing.T) {
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
			_, err := Copy(context.Background(), bytes.NewReader(tc.in), io.Discard, Keep())
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

func TestCopyEmptyStream(t *testing.T) {
	var out bytes.Buffer
	st, err := Copy(context.Background(), bytes.NewReader(nil), &out, Keep())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Changed || out.Len() != 1024 || !allZero(out.Bytes()) {
		t.Errorf("empty input gave %d bytes (changed=%v), want a 1024-byte end-of-archive marked changed", out.Len(), st.Changed)
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
	st, err := Copy(context.Background(), bytes.NewReader(in), &out, f)
	if err != nil {
		t.Fatal(err)
	}
	if st.Changed || !bytes.Equal(in, out.Bytes()) {
		t.Error("peeking and re-supplying the same body changed the stream")
	}
}

// The parts of Copy, in a loop of the caller's own (as a squash walks
// several layers): a Reader's entries written unchanged to an
// ArchiveWriter come out byte for byte, a cloned and changed header is
// written anew.
func TestReaderArchiveWriterLoop(t *testing.T) {
	in := buildTar(t, tar.FormatPAX, richEntries)
	var out bytes.Buffer
	r, w := NewReader(bytes.NewReader(in)), NewArchiveWriter(&out)
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.Header.Name == "empty" {
			h := CloneHeader(e.Header)
			h.Mode = 0o600
			e = Entry{Header: &h, Body: e.Body}
		}
		if err := w.WriteEntry(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		if err := r.SkipBody(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Entries() != len(richEntries) {
		t.Errorf("Entries() = %d, want %d", w.Entries(), len(richEntries))
	}
	want := readTar(t, in)
	for i := range want {
		if want[i].Name == "empty" {
			want[i].Mode = 0o600
		}
	}
	if diff := cmp.Diff(want, readTar(t, out.Bytes())); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	// Everything before the changed entry is the input's bytes.
	var head bytes.Buffer
	if _, err := Copy(context.Background(), bytes.NewReader(in), &head, FilterFunc(func(ctx context.Context, e Entry, next Writer) error {
		if e.Header.Name == "empty" {
			return errStop
		}
		return next.WriteEntry(ctx, e)
	})); err == nil {
		t.Fatal("the stop filter did not stop")
	}
	if !bytes.HasPrefix(out.Bytes(), head.Bytes()) || head.Len() == 0 {
		t.Error("entries passed on unchanged are not the input's bytes")
	}
}

var errStop = errors.New("stop")

// A directory, link or device header may give a size (a writer's mistake
// that archive/tar and GNU tar read past: these types have no body). Keep
// copies such entries byte for byte, and a filter that writes their header
// anew writes no body for them. (Both used to fail, "body ends after 0 of
// 33 bytes"; found by FuzzCopy.)
func TestCopyHeaderOnlyTypesWithSize(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755, Size: 33},
		{Name: "bin", Typeflag: tar.TypeSymlink, Linkname: "usr/bin", Mode: 0o777, Size: 7},
		{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3, Size: 512},
		{Name: "etc/hosts", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, "hosts")
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	in := buf.Bytes()
	var out bytes.Buffer
	st, err := Copy(context.Background(), bytes.NewReader(in), &out, Keep())
	if err != nil || st.Changed || !bytes.Equal(in, out.Bytes()) {
		t.Fatalf("Keep: %v, changed %v, identical %v", err, st.Changed, bytes.Equal(in, out.Bytes()))
	}
	out.Reset()
	chmod := FilterFunc(func(ctx context.Context, e Entry, next Writer) error {
		h := CloneHeader(e.Header)
		h.Mode |= 0o1000
		return next.WriteEntry(ctx, Entry{Header: &h, Body: e.Body})
	})
	if _, err := Copy(context.Background(), bytes.NewReader(in), &out, chmod); err != nil {
		t.Fatalf("a filter that writes the headers anew: %v", err)
	}
	want := readTar(t, in)
	for i := range want {
		want[i].Mode |= 0o1000
	}
	if diff := cmp.Diff(want, readTar(t, out.Bytes())); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}
