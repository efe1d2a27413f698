package elf

import "io"

// IsArchive reports whether r starts with the ar magic "!<arch>\n".
func IsArchive(r io.ReaderAt, size int64) bool {
	var b [8]byte
	if size < 8 {
		return false
	}
	_, err := r.ReadAt(b[:], 0)
	return err == nil && string(b[:]) == "!<arch>\n"
}

// SplitArchive is a placeholder.
func SplitArchive(r io.ReaderAt, size int64, out io.Writer) (*Result, error) {
	return nil, unchanged("archives are left as they are")
}
