package rewrite

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// paxHeader is one PAX extended header entry ('x') of about size bytes.
func paxHeader(t testing.TB, size int) []byte {
	t.Helper()
	body := paxRecord("comment", strings.Repeat("p", size))
	var buf bytes.Buffer
	// tar.Writer does not write a TypeXHeader entry itself: build the
	// block by hand.
	buf.Write(ustarBlock(t, &tar.Header{Name: "PaxHeaders/f", Typeflag: tar.TypeXHeader, Size: int64(len(body)), Mode: 0o644}))
	buf.WriteString(body)
	buf.Write(make([]byte, (-len(body))&(blockSize-1)))
	return buf.Bytes()
}

// paxChain is a tar whose one file is preceded by n PAX extended headers
// of about size bytes each. archive/tar reads each one in turn and keeps
// only the last.
func paxChain(t testing.TB, n, size int) []byte {
	t.Helper()
	var buf bytes.Buffer
	for range n {
		buf.Write(paxHeader(t, size))
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

// paxRecord is one "LEN key=value\n" record.
func paxRecord(k, v string) string {
	n := len(k) + len(v) + 3
	for {
		s := strconv(n) + " " + k + "=" + v + "\n"
		if len(s) == n {
			return s
		}
		n = len(s)
	}
}

func strconv(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// ustarBlock is the 512-byte ustar header block of h (name, mode, size,
// typeflag and checksum; the rest zero).
func ustarBlock(t testing.TB, h *tar.Header) []byte {
	t.Helper()
	b := make([]byte, blockSize)
	copy(b[0:100], h.Name)
	copy(b[100:108], octal(h.Mode, 8))
	copy(b[108:116], octal(0, 8))
	copy(b[116:124], octal(0, 8))
	copy(b[124:136], octal(h.Size, 12))
	copy(b[136:148], octal(0, 12))
	b[156] = h.Typeflag
	copy(b[257:263], "ustar\x00")
	copy(b[263:265], "00")
	for i := 148; i < 156; i++ {
		b[i] = ' '
	}
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	copy(b[148:156], octal(sum, 7))
	b[155] = ' '
	return b
}

func octal(v int64, width int) string {
	s := ""
	for ; v > 0; v /= 8 {
		s = string(rune('0'+v%8)) + s
	}
	for len(s) < width-1 {
		s = "0" + s
	}
	return s + "\x00"
}

// A chain of PAX headers is what archive/tar reads without bound before an
// entry; the raw copy of them must not grow with it.
func TestCopyTarPAXChain(t *testing.T) {
	// A few records: read and copied byte for byte.
	small := paxChain(t, 3, 1000)
	var out bytes.Buffer
	if st, err := copyTar(context.Background(), bytes.NewReader(small), &out, Keep()); err != nil || st.changed || !bytes.Equal(out.Bytes(), small) {
		t.Fatalf("3 small PAX headers: changed=%v err=%v", st.changed, err)
	}
	// An endless chain of 1 MiB records: it stops at the limit.
	_, err := copyTar(context.Background(), &endless{b: paxHeader(t, 1<<20-64)}, io.Discard, Keep())
	var te *TarError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "header records of one entry take more than 4 MiB") {
		t.Fatalf("error %v, want a TarError about the header records", err)
	}
	// One record larger than archive/tar's 1 MiB: its own error.
	huge := paxChain(t, 1, 2<<20)
	if _, err := copyTar(context.Background(), bytes.NewReader(huge), io.Discard, Keep()); !errors.As(err, &te) || !errors.Is(err, tar.ErrFieldTooLong) {
		t.Errorf("a 2 MiB PAX header: error %v, want a TarError wrapping tar.ErrFieldTooLong", err)
	}
}
