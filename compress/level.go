package compress

import "fmt"

// ValidLevel reports whether level n is one that NewWriter accepts for c
// (0 always is: it means the codec's default).
func ValidLevel(c Codec, n int) error {
	lo, hi := 0, 0
	switch c {
	case Gzip:
		lo, hi = 1, 9
	case Zstd:
		lo, hi = 1, 22
	case None:
		if n == 0 {
			return nil
		}
		return fmt.Errorf("level %d: uncompressed output has no level", n)
	default:
		return unsupportedCodec(c)
	}
	if n != 0 && (n < lo || n > hi) {
		return fmt.Errorf("%s level %d: want %d to %d, or 0 for the default", c, n, lo, hi)
	}
	return nil
}
