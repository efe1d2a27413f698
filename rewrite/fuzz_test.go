package rewrite

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"testing"

	"github.com/layerslim/layerslim/drop"
	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/tarfilter"
)

// FuzzCopyTar runs arbitrary bytes as a tar stream through tarfilter.CopyLimit with
// the filter chains a rewrite builds: drop, and drop then ELF split.
// Nothing may panic; any output must be a tar stream of the entries
// written. (The byte-exact copy of a chain that keeps everything is
// tarfilter's own property, fuzzed by tarfilter.FuzzCopy.)
func FuzzCopyTar(f *testing.F) {
	rich := testenv.TarLayer(f, testenv.EveryKind())
	f.Add(rich)
	f.Add(testenv.TarLayer(f, testenv.InFormat(tar.FormatGNU, testenv.EveryKind()[:4])))
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
	f.Add(testenv.TarLayer(f, testenv.EveryKind()[:2])[:1024+100]) // truncated
	f.Add(testenv.SparseBomb(1 << 40))                             // 3 KiB, one 1 TiB file
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
