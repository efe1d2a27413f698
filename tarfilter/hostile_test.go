package tarfilter

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/layerslim/layerslim/internal/testenv"
)

// paxChain is a tar whose one file is preceded by n PAX extended headers
// of about size bytes each. archive/tar reads each one in turn and keeps
// only the last.
func paxChain(t testing.TB, n, size int) []byte {
	t.Helper()
	var buf bytes.Buffer
	for range n {
		buf.Write(testenv.PAXHeader(size))
	}
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2, Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("hi"))
	tw.Close()
	return buf.Bytes()
}

// endless repeats b for ever.
type endless struct {
	b   []byte
	off int
}

func (e *endless) Read(p []byte) (int, error) {
	n := copy(p, e.b[e.off:])
	e.off = (e.off + n) % len(e.b)
	return n, nil
}

// A chain of PAX headers is what archive/tar reads without bound before an
// entry; the raw copy of them must not grow with it.
func TestCopyPAXChain(t *testing.T) {
	// A few records: read and copied byte for byte.
	small := paxChain(t, 3, 1000)
	var out bytes.Buffer
	if st, err := Copy(context.Background(), bytes.NewReader(small), &out, Keep()); err != nil || st.Changed || !bytes.Equal(out.Bytes(), small) {
		t.Fatalf("3 small PAX headers: changed=%v err=%v", st.Changed, err)
	}
	// An endless chain of 1 MiB records: it stops at the limit.
	_, err := Copy(context.Background(), &endless{b: testenv.PAXHeader(1<<20 - 64)}, io.Discard, Keep())
	var te *TarError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "header records of one entry take more than 4 MiB") {
		t.Fatalf("error %v, want a TarError about the header records", err)
	}
	// One record larger than archive/tar's 1 MiB: its own error.
	huge := paxChain(t, 1, 2<<20)
	if _, err := Copy(context.Background(), bytes.NewReader(huge), io.Discard, Keep()); !errors.As(err, &te) || !errors.Is(err, tar.ErrFieldTooLong) {
		t.Errorf("a 2 MiB PAX header: error %v, want a TarError wrapping tar.ErrFieldTooLong", err)
	}
}
