package verify

import (
	"crypto/sha256"
	"os"

	"github.com/layerslim/layerslim/elf"
)

// elfDigest returns the digest of what stripping must keep of the ELF file
// f (size bytes long), or nil when only identical bytes may pass. The
// definition is elf.Kept, the one the rewrite checks its own output with.
// Only errors reading f are returned.
func elfDigest(f *os.File, size int64) (*[sha256.Size]byte, error) {
	sum, ok, err := elf.Kept(f, size)
	if err != nil || !ok {
		return nil, err
	}
	return &sum, nil
}
