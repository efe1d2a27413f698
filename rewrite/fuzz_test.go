package rewrite

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/drop"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/tarfilter"
)

// fuzzRich is a layer of every kind of entry, a seed of FuzzCopyTar.
var fuzzRich = []testenv.File{
	testenv.Dir("etc"),
	testenv.Reg("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
	{Name: "usr/bin/ping", Mode: 0o4755, Body: []byte("\x7fELF not really"), Xattrs: map[string]string{"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}},
	testenv.Hardlink("usr/bin/ping6", "usr/bin/ping"),
	testenv.Reg("usr/lib/"+strings.Repeat("long-directory-name/", 8)+"file.txt", strings.Repeat("x", 1000)),
	testenv.Symlink("bin", "usr/bin"),
	{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
	testenv.Whiteout("var/lib/old"),
	testenv.Opaque("opt"),
	testenv.Reg("etc/passwd", "duplicate entry wins\n"),
	testenv.Reg("empty", ""),
	testenv.Reg("block", strings.Repeat("b", 512)),
}

// gnuTar is files as a GNU-format tar (no PAX records).
func gnuTar(t testing.TB, files []testenv.File) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range testenv.ReadTar(t, bytes.NewReader(testenv.TarLayer(t, files))) {
		h := &tar.Header{Name: f.Name, Typeflag: f.Typeflag, Mode: f.Mode, Linkname: f.Linkname, Size: int64(len(f.Body)),
			ModTime: f.ModTime, Devmajor: f.Devmajor, Devminor: f.Devminor, Format: tar.FormatGNU}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.Body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzCopyTar runs arbitrary bytes as a tar stream through tarfilter.CopyLimit with
// the filter chains a rewrite builds: drop, and drop then ELF split.
// Nothing may panic; any output must be a tar stream of the entries
// written. (The byte-exact copy of a chain that keeps everything is
// tarfilter's own property, fuzzed by tarfilter.FuzzCopy.)
func FuzzCopyTar(f *testing.F) {
	rich := testenv.TarLayer(f, fuzzRich)
	f.Add(rich)
	f.Add(gnuTar(f, fuzzRich[:4]))
	f.Add([]byte{})
	obj, err := os.ReadFile("../elf/testdata/hello-x86_64.o")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(testenv.TarLayer(f, []testenv.File{
		{Name: "usr/lib/hello.o", Body: obj},
		{Name: "../../tmp/cache", Body: []byte("x")},
		testenv.Hardlink("usr/lib/hello2.o", "usr/lib/hello.o"),
	}))
	f.Add(testenv.TarLayer(f, fuzzRich[:2])[:1024+100]) // truncated
	f.Add(testenv.SparseBomb(1 << 40))                  // 3 KiB, one 1 TiB file
	f.Add(append(append(testenv.PAXHeader(100), testenv.PAXHeader(100)...), testenv.TarLayer(f, []testenv.File{testenv.Reg("f", "hi")})...))
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
		for _, chain := range []tarfilter.Filter{
			Drop(m, nil),
			tarfilter.Chain(Drop(m, nil), SplitELF(elf.Unneeded, tmp, nopRecorder{}, func(d DebugFile) { d.Close() })),
		} {
			out.Reset()
			st, err := tarfilter.CopyLimit(context.Background(), bytes.NewReader(in), &out, chain, maxBody)
			if err != nil {
				continue
			}
			checkTarOut(t, out.Bytes(), st.EntriesOut)
		}
	})
}

type nopRecorder struct{}

func (nopRecorder) Record(Change) {}

// checkTarOut reads a tarfilter.Copy output: it must hold n entries and read to
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
		t.Fatalf("output holds %d entries, the copy wrote %d", got, n)
	}
}
