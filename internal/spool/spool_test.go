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

// TestSpoolChunks writes and reads back across chunk boundaries, through
// Write and through ReadFrom (which reads straight into the chunks), below,
// at and above the memory threshold.
func TestSpoolChunks(t *testing.T) {
	const mem = 3*chunkSize + 100
	for _, size := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, mem, mem + 1, 5*chunkSize + 7} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*7 + i>>16)
		}
		for _, how := range []string{"Write", "ReadFrom"} {
			s := New(t.TempDir(), mem, 0)
			var err error
			if how == "Write" {
				_, err = io.Copy(struct{ io.Writer }{s}, struct{ io.Reader }{bytes.NewReader(data)})
			} else {
				// A reader that returns odd lengths.
				_, err = s.ReadFrom(io.LimitReader(iotestHalf{bytes.NewReader(data)}, int64(size)))
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Size() != int64(size) || s.InFile() != (size > mem) {
				t.Fatalf("%s %d: size %d, in file %v", how, size, s.Size(), s.InFile())
			}
			got, err := io.ReadAll(s.Reader())
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s %d: read back differs (%v)", how, size, err)
			}
			if size > 10 {
				p := make([]byte, 10)
				off := int64(size) / 2
				if _, err := s.ReadAt(p, off); err != nil || !bytes.Equal(p, data[off:off+10]) {
					t.Fatalf("%s %d: ReadAt: %v", how, size, err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if n, err := s.ReadAt(make([]byte, 1), 0); n != 0 || err == nil {
				t.Fatalf("%s %d: ReadAt after Close: %d, %v", how, size, n, err)
			}
		}
	}
}

// iotestHalf returns at most half of what is asked, and at least one byte.
type iotestHalf struct{ r io.Reader }

func (h iotestHalf) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:len(p)/2+1]
	}
	return h.r.Read(p)
}

func TestSpoolLimitReadFrom(t *testing.T) {
	for _, mem := range []int64{10, 1000} {
		s := New(t.TempDir(), mem, 100)
		_, err := s.ReadFrom(strings.NewReader(strings.Repeat("x", 101)))
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("mem %d: err = %v, want ErrTooLarge", mem, err)
		}
		s.Close()
	}
}
