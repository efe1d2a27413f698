package tarfilter

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/layerslim/layerslim/internal/limit"
	"github.com/layerslim/layerslim/internal/testenv"
)

// fuzzMaxBody bounds the bodies of one copy, as a rewrite bounds them: a
// sparse entry's body is its holes expanded, and a few bytes of input can
// ask for exabytes.
const fuzzMaxBody = 1 << 20

// fuzzSeeds are the tar streams FuzzCopy starts from: every kind of entry
// in each header format, and the hostile shapes tarfilter has met (chained
// PAX headers, sparse files, truncation, bad padding, data after the end).
func fuzzSeeds(t testing.TB) [][]byte {
	pax := buildTar(t, tar.FormatPAX, richEntries)
	gnu := buildTar(t, tar.FormatGNU, richEntries)
	ustar := buildTar(t, tar.FormatUSTAR, []testenv.File{testenv.Reg("a", "hello"), testenv.Dir("d")})
	dirtyPad := bytes.Clone(ustar)
	dirtyPad[512+5] = 'x' // in the padding after "hello"
	return [][]byte{
		pax,
		gnu,
		ustar,
		dirtyPad,
		{},
		make([]byte, 1024), // only the end-of-archive blocks
		append(bytes.Clone(ustar), "trailing"...), // data after the end
		pax[:len(pax)-1024],                       // no end-of-archive blocks
		pax[:512+100],                             // cut inside a body
		ustar[:100],                               // cut inside a header
		testenv.SparseBomb(1000),                  // a small sparse file
		testenv.SparseBomb(1 << 40),               // one 1 TiB file
		append(append(testenv.PAXHeader(100), testenv.PAXHeader(100)...), ustar...),
		paxChain(t, 3, 600),
	}
}

// FuzzCopy feeds arbitrary bytes, a tar stream from a stranger, through
// CopyLimit with filter chains of three kinds. Nothing may panic or hang,
// and an error must be one a hostile stream may give. Keep fails only on
// what archive/tar cannot read (or a stream without its end-of-archive
// blocks, or over a limit). Keep, and a filter that rebuilds every entry
// from its parts, must either fail or write a stream that reads back as
// the same entries as the input;
// Keep's output is the input byte for byte unless the stats say it
// changed. A chain that drops and adds entries must write a tar stream of
// as many entries as it reports.
func FuzzCopy(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ctx := context.Background()
		var out bytes.Buffer
		st, err := CopyLimit(ctx, bytes.NewReader(in), &out, Keep(), fuzzMaxBody)
		if err != nil {
			checkCopyError(t, err)
			// Keep refuses only what archive/tar cannot read, a stream
			// without its end-of-archive blocks, or one over a limit.
			if _, rerr := readFuzzEntries(in); rerr == nil && !errors.Is(err, limit.ErrExceeded) && !strings.Contains(err.Error(), "end-of-archive") {
				t.Fatalf("archive/tar reads the stream, but Keep fails: %v", err)
			}
		} else {
			if !st.Changed && !bytes.Equal(in, out.Bytes()) {
				t.Fatal("Keep reported the stream unchanged but the bytes differ")
			}
			if st.EntriesIn != st.EntriesOut {
				t.Fatalf("Keep read %d entries and wrote %d", st.EntriesIn, st.EntriesOut)
			}
			checkSameEntries(t, in, out.Bytes())
		}

		out.Reset()
		st, err = CopyLimit(ctx, bytes.NewReader(in), &out, rebuild, fuzzMaxBody)
		if err != nil {
			checkCopyError(t, err)
		} else {
			checkSameEntries(t, in, out.Bytes())
		}

		out.Reset()
		st, err = CopyLimit(ctx, bytes.NewReader(in), &out, Chain(dropEveryOther(), &flushFilter{}), fuzzMaxBody)
		if err != nil {
			checkCopyError(t, err)
		} else if got := len(fuzzEntries(t, out.Bytes())); got != st.EntriesOut {
			t.Fatalf("output holds %d entries, the copy wrote %d", got, st.EntriesOut)
		}
	})
}

// rebuild passes on a new entry made of a copy of each entry's header and
// its body behind another reader, so nothing is copied raw.
var rebuild = FilterFunc(func(ctx context.Context, e Entry, next Writer) error {
	h := CloneHeader(e.Header)
	return next.WriteEntry(ctx, Entry{Header: &h, Body: io.MultiReader(e.Body)})
})

// dropEveryOther drops the 2nd, 4th, ... entry.
func dropEveryOther() Filter {
	n := 0
	return FilterFunc(func(ctx context.Context, e Entry, next Writer) error {
		n++
		if n%2 == 0 {
			return nil
		}
		return next.WriteEntry(ctx, e)
	})
}

// checkCopyError fails unless err is one of the errors a copy of a hostile
// stream may give: a malformed tar, a limit, or a body that ends short.
func checkCopyError(t *testing.T, err error) {
	t.Helper()
	var te *TarError
	switch {
	case errors.As(err, &te), errors.Is(err, limit.ErrExceeded), errors.Is(err, io.ErrUnexpectedEOF):
	case strings.Contains(err.Error(), "archive/tar: "):
		// archive/tar refusing to write a header it read (a name or
		// value the chosen format cannot hold).
	default:
		t.Fatalf("copy failed with an unexpected kind of error: %v", err)
	}
}

// fuzzEntry is what checkSameEntries compares of an entry: what a layer
// applied to a file system sees.
type fuzzEntry struct {
	Name, Linkname, Uname, Gname string
	Type                         byte
	Size, Mode                   int64
	Uid, Gid                     int
	Devmajor, Devminor           int64
	ModTime                      int64
	Body                         [sha256.Size]byte
}

// fuzzEntries reads b as tar, failing the test if it is not one.
func fuzzEntries(t *testing.T, b []byte) []fuzzEntry {
	t.Helper()
	es, err := readFuzzEntries(b)
	if err != nil {
		t.Fatalf("output is not a tar stream: %v", err)
	}
	return es
}

func readFuzzEntries(b []byte) ([]fuzzEntry, error) {
	tr := tar.NewReader(bytes.NewReader(b))
	var out []fuzzEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("entry %d: %w", len(out)+1, err)
		}
		hash := sha256.New()
		if _, err := io.Copy(hash, io.LimitReader(tr, 2*fuzzMaxBody)); err != nil {
			return out, fmt.Errorf("entry %d body: %w", len(out)+1, err)
		}
		e := fuzzEntry{Name: h.Name, Linkname: h.Linkname, Uname: h.Uname, Gname: h.Gname,
			Type: h.Typeflag, Size: h.Size, Mode: h.Mode, Uid: h.Uid, Gid: h.Gid,
			Devmajor: h.Devmajor, Devminor: h.Devminor, ModTime: h.ModTime.Unix()}
		if e.Type == tar.TypeGNUSparse || e.Type == tar.TypeRegA { //nolint:staticcheck // a stranger's tar may say so
			e.Type = tar.TypeReg
		}
		copy(e.Body[:], hash.Sum(nil))
		out = append(out, e)
	}
}

// checkSameEntries fails unless out reads back as the entries of in.
func checkSameEntries(t *testing.T, in, out []byte) {
	t.Helper()
	want, err := readFuzzEntries(in)
	if err != nil {
		t.Fatalf("the copy succeeded, but archive/tar cannot read its input: %v", err)
	}
	got := fuzzEntries(t, out)
	if len(got) != len(want) {
		t.Fatalf("output has %d entries, input %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("entry %d: got %+v, want %+v", i+1, got[i], want[i])
		}
	}
}
