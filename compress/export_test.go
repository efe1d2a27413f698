package compress

// WithFrameSize sets the frame (zstd) or block (gzip) size, so that tests
// see many frames in little data and measurements can compare sizes.
// gzip blocks must be at least 32 KiB.
func WithFrameSize(n int) WriterOption {
	return func(o *writerOptions) error { o.frameSize = n; return nil }
}
