package tarentry

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestBodyTellsHowMuchWasThere(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1000})
	tw.Write(bytes.Repeat([]byte("x"), 1000))
	tw.Close()
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()[:512+300]))
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(Body(tr, h.Size))
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "unexpected EOF (tar header says 1000 bytes, 300 present)") {
		t.Errorf("error %v", err)
	}
	// A whole body reads to a clean end.
	tr = tar.NewReader(bytes.NewReader(buf.Bytes()))
	h, _ = tr.Next()
	if b, err := io.ReadAll(Body(tr, h.Size)); err != nil || len(b) != 1000 {
		t.Errorf("read %d bytes, error %v", len(b), err)
	}
}
