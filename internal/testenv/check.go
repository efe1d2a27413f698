package testenv

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/layerslim/layerslim/internal/iocount"
)

// CheckImageBlobs fails t unless every blob of img is what its manifest and
// config say. It reads each layer once, as a stream:
//   - the manifest hashes to img.Digest() and has img.Size() bytes;
//   - the config hashes to the manifest's config digest and size, and its
//     media type belongs to the manifest's family (Docker or OCI);
//   - each layer's Compressed() bytes hash to its digest (the manifest's and
//     Digest()) and count to its size; the codec found in the bytes (gzip,
//     zstd or none) matches the media type, which belongs to the manifest's
//     family;
//   - each layer decompresses to a well-formed tar stream whose sha256 is the
//     config's rootfs.diff_ids entry and DiffID();
//   - the history has one non-empty entry per layer (when it has any);
//   - ggcr's validate.Image with validate.Fast passes. (Without Fast it
//     fails valid zstd layers with "gzip: invalid header" in ggcr v0.22.1.)
func CheckImageBlobs(t testing.TB, img v1.Image) {
	t.Helper()
	for _, err := range imageProblems(img) {
		t.Errorf("testenv.CheckImageBlobs: %v", err)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// CheckIndexBlobs checks idx's manifest digest, that every descriptor matches
// its child (digest, size, media type, platform), and CheckImageBlobs on each
// child image; child indexes are checked the same way.
func CheckIndexBlobs(t testing.TB, idx v1.ImageIndex) {
	t.Helper()
	for _, err := range indexProblems(idx) {
		t.Errorf("testenv.CheckIndexBlobs: %v", err)
	}
	if t.Failed() {
		t.FailNow()
	}
}

func indexProblems(idx v1.ImageIndex) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	raw, err := idx.RawManifest()
	if err != nil {
		return []error{fmt.Errorf("index manifest: %w", err)}
	}
	if d, err := idx.Digest(); err != nil || d != sha256Hash(raw) {
		bad("index digest %v (err %v), manifest hashes to %s", d, err, sha256Hash(raw))
	}
	if n, err := idx.Size(); err != nil || n != int64(len(raw)) {
		bad("index size %d (err %v), manifest has %d bytes", n, err, len(raw))
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return append(errs, fmt.Errorf("parsing index manifest: %w", err))
	}
	mt, err := idx.MediaType()
	if err != nil {
		bad("index media type: %v", err)
	} else if !mt.IsIndex() {
		bad("index media type %q is not an index type", mt)
	} else if im.MediaType != "" && im.MediaType != mt {
		bad("index manifest says mediaType %q, MediaType() says %q", im.MediaType, mt)
	}
	for i, desc := range im.Manifests {
		where := fmt.Sprintf("manifests[%d] %s", i, desc.Digest)
		switch {
		case desc.MediaType.IsIndex():
			child, err := idx.ImageIndex(desc.Digest)
			if err != nil {
				bad("%s: %v", where, err)
				continue
			}
			errs = append(errs, checkChild(where, desc, child)...)
			for _, err := range indexProblems(child) {
				bad("%s: %w", where, err)
			}
		case desc.MediaType.IsImage():
			child, err := idx.Image(desc.Digest)
			if err != nil {
				bad("%s: %v", where, err)
				continue
			}
			errs = append(errs, checkChild(where, desc, child)...)
			if desc.Platform != nil {
				if cf, err := child.ConfigFile(); err == nil {
					p := desc.Platform
					if p.OS != cf.OS || p.Architecture != cf.Architecture || p.Variant != cf.Variant {
						bad("%s: descriptor platform %s/%s/%s, config says %s/%s/%s", where,
							p.OS, p.Architecture, p.Variant, cf.OS, cf.Architecture, cf.Variant)
					}
				}
			}
			for _, err := range imageProblems(child) {
				bad("%s: %w", where, err)
			}
		default:
			// Artifacts and attestations: only the descriptor is checked.
		}
	}
	if len(errs) == 0 {
		if err := validate.Index(idx, validate.Fast); err != nil {
			bad("validate.Index: %v", err)
		}
	}
	return errs
}

type manifestLike interface {
	Digest() (v1.Hash, error)
	Size() (int64, error)
	MediaType() (types.MediaType, error)
	RawManifest() ([]byte, error)
}

func checkChild(where string, desc v1.Descriptor, child manifestLike) []error {
	var errs []error
	raw, err := child.RawManifest()
	if err != nil {
		return []error{fmt.Errorf("%s: %w", where, err)}
	}
	if got := sha256Hash(raw); got != desc.Digest {
		errs = append(errs, fmt.Errorf("%s: manifest hashes to %s", where, got))
	}
	if int64(len(raw)) != desc.Size {
		errs = append(errs, fmt.Errorf("%s: descriptor size %d, manifest has %d bytes", where, desc.Size, len(raw)))
	}
	if mt, err := child.MediaType(); err != nil || mt != desc.MediaType {
		errs = append(errs, fmt.Errorf("%s: descriptor media type %q, child says %q (err %v)", where, desc.MediaType, mt, err))
	}
	return errs
}

// codec is what a blob's first bytes say it is.
type codec string

const (
	codecGzip codec = "gzip"
	codecZstd codec = "zstd"
	codecNone codec = "none"
)

func sniff(b []byte) codec {
	switch {
	case len(b) >= 3 && b[0] == 0x1f && b[1] == 0x8b && b[2] == 8:
		return codecGzip
	case len(b) >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd:
		return codecZstd
	}
	return codecNone
}

// layerCodec is the codec a layer media type promises, and whether the type
// is Docker's (else OCI's).
func layerCodec(mt types.MediaType) (c codec, docker bool, ok bool) {
	switch mt {
	case types.DockerLayer, types.DockerForeignLayer:
		return codecGzip, true, true
	case types.DockerUncompressedLayer:
		return codecNone, true, true
	case types.OCILayer, types.OCIRestrictedLayer:
		return codecGzip, false, true
	case types.OCILayerZStd:
		return codecZstd, false, true
	case types.OCIUncompressedLayer, types.OCIUncompressedRestrictedLayer:
		return codecNone, false, true
	}
	return "", false, false
}

func imageProblems(img v1.Image) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	rawManifest, err := img.RawManifest()
	if err != nil {
		return []error{fmt.Errorf("manifest: %w", err)}
	}
	if d, err := img.Digest(); err != nil || d != sha256Hash(rawManifest) {
		bad("image digest %v (err %v), manifest hashes to %s", d, err, sha256Hash(rawManifest))
	}
	if n, err := img.Size(); err != nil || n != int64(len(rawManifest)) {
		bad("image size %d (err %v), manifest has %d bytes", n, err, len(rawManifest))
	}
	m, err := v1.ParseManifest(bytes.NewReader(rawManifest))
	if err != nil {
		return append(errs, fmt.Errorf("parsing manifest: %w", err))
	}
	var docker bool
	switch mt, err := img.MediaType(); {
	case err != nil:
		bad("media type: %v", err)
	case mt == types.DockerManifestSchema2:
		docker = true
	case mt == types.OCIManifestSchema1:
	default:
		bad("manifest media type %q is not an image manifest type", mt)
	}
	if m.MediaType != "" {
		if mt, _ := img.MediaType(); m.MediaType != mt {
			bad("manifest says mediaType %q, MediaType() says %q", m.MediaType, mt)
		}
	}

	// Config.
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return append(errs, fmt.Errorf("config: %w", err))
	}
	if got := sha256Hash(rawConfig); got != m.Config.Digest {
		bad("config hashes to %s, manifest says %s", got, m.Config.Digest)
	}
	if int64(len(rawConfig)) != m.Config.Size {
		bad("config has %d bytes, manifest says %d", len(rawConfig), m.Config.Size)
	}
	if cn, err := img.ConfigName(); err != nil || cn != m.Config.Digest {
		bad("ConfigName() %v (err %v), manifest says %s", cn, err, m.Config.Digest)
	}
	if want := map[bool]types.MediaType{true: types.DockerConfigJSON, false: types.OCIConfigJSON}[docker]; m.Config.MediaType != want {
		bad("config media type %q in a %s manifest (want %q)", m.Config.MediaType, family(docker), want)
	}
	var cf v1.ConfigFile
	if err := json.Unmarshal(rawConfig, &cf); err != nil {
		return append(errs, fmt.Errorf("parsing config: %w", err))
	}
	if cf.RootFS.Type != "layers" {
		bad("config rootfs.type %q, want \"layers\"", cf.RootFS.Type)
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		bad("config has %d diff_ids, manifest has %d layers", len(cf.RootFS.DiffIDs), len(m.Layers))
	}
	if len(cf.History) > 0 {
		nonEmpty := 0
		for _, h := range cf.History {
			if !h.EmptyLayer {
				nonEmpty++
			}
		}
		if nonEmpty != len(m.Layers) {
			bad("history has %d non-empty entries, manifest has %d layers", nonEmpty, len(m.Layers))
		}
	}

	// Layers.
	layers, err := img.Layers()
	if err != nil {
		return append(errs, fmt.Errorf("layers: %w", err))
	}
	if len(layers) != len(m.Layers) {
		return append(errs, fmt.Errorf("Layers() has %d layers, manifest has %d", len(layers), len(m.Layers)))
	}
	for i, l := range layers {
		desc := m.Layers[i]
		where := fmt.Sprintf("layer %d (%s)", i, desc.Digest)
		if d, err := l.Digest(); err != nil || d != desc.Digest {
			bad("%s: Digest() %v (err %v)", where, d, err)
		}
		if n, err := l.Size(); err != nil || n != desc.Size {
			bad("%s: Size() %d (err %v), manifest says %d", where, n, err, desc.Size)
		}
		if mt, err := l.MediaType(); err != nil || mt != desc.MediaType {
			bad("%s: MediaType() %q (err %v), manifest says %q", where, mt, err, desc.MediaType)
		}
		want, dockerType, known := layerCodec(desc.MediaType)
		if !known {
			bad("%s: unknown layer media type %q", where, desc.MediaType)
		} else if dockerType != docker {
			bad("%s: %s layer media type %q in a %s manifest", where, family(dockerType), desc.MediaType, family(docker))
		}

		got, err := readLayer(l)
		if err != nil {
			bad("%s: %v", where, err)
			continue
		}
		if got.digest != desc.Digest {
			bad("%s: compressed bytes hash to %s", where, got.digest)
		}
		if got.size != desc.Size {
			bad("%s: %d compressed bytes, manifest says %d", where, got.size, desc.Size)
		}
		if known && got.codec != want {
			bad("%s: bytes are %s, media type %q says %s", where, got.codec, desc.MediaType, want)
		}
		if got.decompressErr != nil {
			// The diffID and tar checks would only repeat this.
			bad("%s: %v", where, got.decompressErr)
			continue
		}
		if i < len(cf.RootFS.DiffIDs) && got.diffID != cf.RootFS.DiffIDs[i] {
			bad("%s: uncompressed bytes hash to %s, config diff_ids[%d] is %s", where, got.diffID, i, cf.RootFS.DiffIDs[i])
		}
		if d, err := l.DiffID(); err != nil || d != got.diffID {
			bad("%s: DiffID() %v (err %v), uncompressed bytes hash to %s", where, d, err, got.diffID)
		}
		if got.tarErr != nil {
			bad("%s: not a well-formed tar stream: %v", where, got.tarErr)
		}
	}

	if len(errs) == 0 {
		if err := validate.Image(img, validate.Fast); err != nil {
			bad("validate.Image: %v", err)
		}
	}
	return errs
}

func family(docker bool) string {
	if docker {
		return "Docker"
	}
	return "OCI"
}

type layerRead struct {
	digest, diffID v1.Hash
	size           int64
	codec          codec
	entries        int
	tarErr         error // the tar stream is malformed
	decompressErr  error // the compressed stream is broken (diffID is then meaningless)
}

// readLayer reads l's compressed stream once: hashing and counting it,
// decompressing it by its magic bytes, hashing the result and walking it as
// tar. Only a failure to read the compressed stream is returned as an error;
// decompression and tar problems are recorded in the result.
func readLayer(l v1.Layer) (layerRead, error) {
	var res layerRead
	rc, err := l.Compressed()
	if err != nil {
		return res, fmt.Errorf("opening compressed stream: %w", err)
	}
	defer rc.Close()

	compHash, count := sha256.New(), &iocount.Writer{}
	br := bufio.NewReaderSize(io.TeeReader(rc, io.MultiWriter(compHash, count)), 1<<16)
	magic, _ := br.Peek(4)
	res.codec = sniff(magic)

	var ur io.Reader
	switch res.codec {
	case codecGzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			res.decompressErr = fmt.Errorf("gzip: %w", err)
			break
		}
		defer zr.Close()
		ur = zr
	case codecZstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			res.decompressErr = fmt.Errorf("zstd: %w", err)
			break
		}
		defer zr.Close()
		ur = zr
	default:
		ur = br
	}

	if ur != nil {
		diffHash := sha256.New()
		tr := tar.NewReader(io.TeeReader(ur, diffHash))
		for {
			_, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err == nil {
				_, err = io.Copy(io.Discard, tr)
			}
			if err != nil {
				res.tarErr = fmt.Errorf("entry %d: %w", res.entries, err)
				break
			}
			res.entries++
		}
		// The diffID covers the whole stream, padding after the end marker included.
		if _, err := io.Copy(diffHash, ur); err != nil {
			res.decompressErr = fmt.Errorf("decompressing (%s): %w", res.codec, err)
		}
		res.diffID = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(diffHash.Sum(nil))}
	}
	// The digest covers every byte, also past a broken or finished compressed stream.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return res, fmt.Errorf("reading compressed stream: %w", err)
	}
	res.digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(compHash.Sum(nil))}
	res.size = count.N
	return res, nil
}
