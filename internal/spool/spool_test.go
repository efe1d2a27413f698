package spool

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

func TestSpool(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int
		mem    int64
		inFile bool
	}{
		{"small stays in memory", 100, 1024, false},
		{"large goes to a file", 5000, 1024, true},
		{"exactly the threshold", 1024, 1024, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			data := bytes.Repeat([]byte("0123456789abcdef"), tc.size/16+1)[:tc.size]
			s := New(dir, tc.mem, 0)
			if _, err := io.Copy(s, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			if s.InFile() != tc.inFile || s.Size() != int64(tc.size) {
				t.Fatalf("inFile=%v size=%d", s.InFile(), s.Size())
			}
			got, _ := io.ReadAll(s.Reader())
			if !bytes.Equal(got, data) {
				t.Fatal("read back differs")
			}
			p := make([]byte, 10)
			if _, err := s.ReadAt(p, int64(tc.size-10)); err != nil || !bytes.Equal(p, data[tc.size-10:]) {
				t.Fatalf("ReadAt: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("Close left %d files", len(ents))
			}
		})
	}
}

func TestSpoolLimit(t *testing.T) {
	s := New(t.TempDir(), 10, 100)
	defer s.Close()
	_, err := io.Copy(s, strings.NewReader(strings.Repeat("x", 101)))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}
