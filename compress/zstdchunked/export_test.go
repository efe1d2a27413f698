package zstdchunked

import "io"

// NewSmallChunkWriter is NewWriter with the chunking of containers/storage's
// own compressor (a split point every 64 KiB on average, holes from 1 KiB),
// so that small test inputs have files of many chunks.
func NewSmallChunkWriter(w io.Writer, level int) (*Writer, error) {
	return newWriter(w, level, params{splitMask: 1<<16 - 1, minChunk: 16 << 10, maxChunk: 1 << 20, holeMin: 1 << 10})
}
