package zstdchunked

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/vbatts/tar-split/archive/tar"
)

// tocEntry is one entry of the TOC, field for field containers/storage's
// minimal.FileMetadata (pkg/chunked/internal/minimal), whose JSON names
// its parser reads. A regular file split into chunks is a "reg" entry
// followed by one "chunk" entry per further chunk; then the Chunk* fields
// are set in all of them.
type tocEntry struct {
	Type       string            `json:"type"`
	Name       string            `json:"name"`
	Linkname   string            `json:"linkName,omitempty"`
	Mode       int64             `json:"mode,omitempty"`
	Size       int64             `json:"size,omitempty"`
	UID        int               `json:"uid,omitempty"`
	GID        int               `json:"gid,omitempty"`
	ModTime    *time.Time        `json:"modtime,omitempty"`
	AccessTime *time.Time        `json:"accesstime,omitempty"`
	ChangeTime *time.Time        `json:"changetime,omitempty"`
	Devmajor   int64             `json:"devMajor,omitempty"`
	Devminor   int64             `json:"devMinor,omitempty"`
	Xattrs     map[string]string `json:"xattrs,omitempty"`
	// Digest is the sha256 of the file's contents; empty for empty files.
	Digest string `json:"digest,omitempty"`
	// Offset and EndOffset delimit, in the blob, the frames that hold the
	// file's contents (or, for a chunk, where its frames start). They may
	// hold bytes after the contents: the parser reads Size bytes.
	Offset    int64 `json:"offset,omitempty"`
	EndOffset int64 `json:"endOffset,omitempty"`

	ChunkSize   int64  `json:"chunkSize,omitempty"`
	ChunkOffset int64  `json:"chunkOffset,omitempty"`
	ChunkDigest string `json:"chunkDigest,omitempty"`
	ChunkType   string `json:"chunkType,omitempty"`
}

// The TOC entry types, and the chunk type of a run of zeros (a hole the
// puller need not fetch).
const (
	typeReg        = "reg"
	typeChunk      = "chunk"
	chunkTypeZeros = "zeros"
)

// toc is the table of contents, version 1.
type toc struct {
	Version        int        `json:"version"`
	Entries        []tocEntry `json:"entries"`
	TarSplitDigest string     `json:"tarSplitDigest,omitempty"`
}

var tarTypes = map[byte]string{
	tar.TypeReg:     typeReg,
	tar.TypeLink:    "hardlink",
	tar.TypeChar:    "char",
	tar.TypeBlock:   "block",
	tar.TypeDir:     "dir",
	tar.TypeFifo:    "fifo",
	tar.TypeSymlink: "symlink",
}

// paxXattr prefixes the PAX records that hold extended attributes.
const paxXattr = "SCHILY.xattr."

// newTOCEntry is the entry of a tar header, as containers/storage's
// minimal.NewFileMetadata makes it: its parser compares the TOC with the
// tar-split data through that function, so every field must agree.
func newTOCEntry(h *tar.Header) (tocEntry, error) {
	typ, ok := tarTypes[h.Typeflag]
	if !ok {
		return tocEntry{}, fmt.Errorf("%s: tar entry type %q has no zstd:chunked TOC type", h.Name, h.Typeflag)
	}
	xattrs := map[string]string{}
	for k, v := range h.PAXRecords {
		if name, ok := strings.CutPrefix(k, paxXattr); ok {
			xattrs[name] = base64.StdEncoding.EncodeToString([]byte(v))
		}
	}
	return tocEntry{
		Type:       typ,
		Name:       h.Name,
		Linkname:   h.Linkname,
		Mode:       h.Mode,
		Size:       h.Size,
		UID:        h.Uid,
		GID:        h.Gid,
		ModTime:    nonZero(h.ModTime),
		AccessTime: nonZero(h.AccessTime),
		ChangeTime: nonZero(h.ChangeTime),
		Devmajor:   h.Devmajor,
		Devminor:   h.Devminor,
		Xattrs:     xattrs,
	}, nil
}

func nonZero(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// skippableFrame is a zstd skippable frame holding data: every zstd
// decoder passes over it.
func skippableFrame(data []byte) []byte {
	f := append([]byte{0x50, 0x2a, 0x4d, 0x18}, binary.LittleEndian.AppendUint32(nil, uint32(len(data)))...)
	return append(f, data...)
}

// footer is the 64-byte content of the blob's last skippable frame: the
// positions of the TOC (with its manifest type, 1) and of the tar-split
// data, then FooterMagic.
func footer(tocOff, tocLen, tocRaw, tsOff, tsLen, tsRaw uint64) []byte {
	var b []byte
	for _, v := range []uint64{tocOff, tocLen, tocRaw, manifestTypeCRFS, tsOff, tsLen, tsRaw} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return append(b, FooterMagic...)
}

// manifestTypeCRFS is the only TOC type: containers/storage's
// ManifestTypeCRFS.
const manifestTypeCRFS = 1
