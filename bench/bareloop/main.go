// Command bareloop is the floor a Go recompressor can reach: for each gzip
// layer blob given, two at a time and the largest first, klauspost gzip
// decode → klauspost zstd encode at -level, hashing the compressed input
// with sha256 (the digest check) and writing the output to -o DIR. Nothing
// else: no tar, no diff_id, no manifests. bench/recompress.sh runs it beside
// layerslim, skopeo and the C tools.
//
// With -decode-only it does what layerslim does on a layer's reading
// goroutine and nothing more: gzip decode, sha256 of the compressed bytes
// (digest check) and of the uncompressed ones (diff_id), discarding the
// output. That is the part of a layer that cannot be spread over cores,
// the time one big layer approaches as cores are added.
package main

import (
	"bufio"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"
)

func main() {
	out := flag.String("o", "", "output directory")
	level := flag.Int("level", 3, "zstd level")
	jobs := flag.Int("jobs", 2, "layers at a time")
	decodeOnly := flag.Bool("decode-only", false, "gzip decode and hash, no encoding, no output")
	flag.Parse()
	if (*out == "" && !*decodeOnly) || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: bareloop -o DIR [-level N] [-jobs N] BLOB...")
		os.Exit(2)
	}
	files := flag.Args()
	size := func(f string) int64 {
		st, err := os.Stat(f)
		if err != nil {
			return 0
		}
		return st.Size()
	}
	sort.SliceStable(files, func(i, j int) bool { return size(files[i]) > size(files[j]) })
	if !*decodeOnly {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			fail(err)
		}
	}
	var g errgroup.Group
	g.SetLimit(*jobs)
	for _, f := range files {
		if *decodeOnly {
			g.Go(func() error { return decode(f) })
			continue
		}
		g.Go(func() error { return one(f, filepath.Join(*out, filepath.Base(f)+".zst"), *level) })
	}
	if err := g.Wait(); err != nil {
		fail(err)
	}
}

func one(src, dst string, level int) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	h := sha256.New()
	zr, err := gzip.NewReader(bufio.NewReaderSize(io.TeeReader(in, h), 1<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, err := zstd.NewWriter(bw, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)))
	if err != nil {
		return err
	}
	if _, err := io.Copy(zw, zr); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_ = h.Sum(nil)
	return f.Close()
}

func decode(src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	h := sha256.New()
	zr, err := gzip.NewReader(bufio.NewReaderSize(io.TeeReader(in, h), 1<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if _, err := io.Copy(sha256.New(), zr); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	_ = h.Sum(nil)
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bareloop:", err)
	os.Exit(1)
}
