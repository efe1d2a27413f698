package limit

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReader(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 1000)
	tests := []struct {
		limit   int64
		wantN   int
		wantErr bool
	}{
		{limit: 0, wantN: 1000},
		{limit: -1, wantN: 1000},
		{limit: 1000, wantN: 1000},
		{limit: 1001, wantN: 1000},
		{limit: 999, wantN: 999, wantErr: true},
		{limit: 1, wantN: 1, wantErr: true},
	}
	for _, tc := range tests {
		for _, name := range []string{"whole", "one byte at a time"} {
			var r io.Reader = bytes.NewReader(data)
			if name != "whole" {
				r = iotest.OneByteReader(r)
			}
			got, err := io.ReadAll(Reader(r, tc.limit, Layer(tc.limit)))
			if len(got) != tc.wantN {
				t.Errorf("limit %d, %s: read %d bytes, want %d", tc.limit, name, len(got), tc.wantN)
			}
			if (err != nil) != tc.wantErr {
				t.Errorf("limit %d, %s: error %v, want error %v", tc.limit, name, err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrExceeded) {
				t.Errorf("limit %d: error %v does not wrap ErrExceeded", tc.limit, err)
			}
		}
	}
}

func TestErrorNamesLimitAndFlag(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want []string
	}{
		{Layer(64 << 30), []string{"uncompressed layer", "64 GiB", "--max-layer-size"}},
		{Spool(20<<30, 16<<30), []string{"file of 20 GiB", "16 GiB", "--max-spool"}},
		{Spool(-1, 1536<<10), []string{"file to spool", "1.5 MiB", "--max-spool"}},
	} {
		msg := tc.err.Error()
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%q does not say %q", msg, w)
			}
		}
	}
}

func TestResolve(t *testing.T) {
	if got := Resolve(0, 7); got != 7 {
		t.Errorf("Resolve(0, 7) = %d, want the default", got)
	}
	if got := Resolve(-1, 7); got != 0 {
		t.Errorf("Resolve(-1, 7) = %d, want 0 (none)", got)
	}
	if got := Resolve(5, 7); got != 5 {
		t.Errorf("Resolve(5, 7) = %d, want 5", got)
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{
		512: "512 bytes", 1024: "1 KiB", 1536 << 10: "1.5 MiB", 64 << 30: "64 GiB", 16 << 30: "16 GiB",
	} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
