package dockerarchive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/internal/imageref/refio"
)

// tarEntry is what the header scan keeps of one archive member.
type tarEntry struct {
	typeflag byte
	linkname string
	size     int64
	magic    []byte // the first compress.SniffLen bytes of a regular file
}

// checkArchiveFile refuses, with a message that says why, what cannot be
// read as a `docker save` tarball: anything but a regular file (a pipe
// such as /dev/stdin: the archive is read more than once), and an archive
// that is compressed as a whole (`docker save | gzip`).
func checkArchiveFile(file string) error {
	f, err := refio.OpenRegular(file)
	if errors.Is(err, refio.ErrNotRegular) {
		return fmt.Errorf("%w; layerslim reads a docker-archive more than once, so it must be a file: save it to one first (docker save -o FILE)", err)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	magic := make([]byte, compress.SniffLen)
	n, _ := io.ReadFull(f, magic)
	c, err := compress.Sniff(magic[:n])
	switch {
	case err != nil:
		return fmt.Errorf("%s is compressed as a whole, not a docker save tarball: %w", file, err)
	case c == compress.Gzip:
		return fmt.Errorf("%s is a gzip-compressed archive, not a docker save tarball: decompress it first (gunzip -c %s > FILE.tar)", file, file)
	case c == compress.Zstd:
		return fmt.Errorf("%s is a zstd-compressed archive, not a docker save tarball: decompress it first (zstd -d %s -o FILE.tar)", file, file)
	}
	return nil
}

// scanArchive reads the tar headers of file once, and the first
// compress.SniffLen bytes of each regular file. Member bodies are skipped (the tar reader seeks over
// them in an *os.File).
func scanArchive(file string) (map[string]tarEntry, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries := map[string]tarEntry{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return entries, nil
		}
		if err != nil {
			return nil, err
		}
		e := tarEntry{typeflag: hdr.Typeflag, linkname: hdr.Linkname, size: hdr.Size}
		if hdr.Typeflag == tar.TypeReg {
			magic := make([]byte, compress.SniffLen)
			n, err := io.ReadFull(tr, magic)
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				return nil, err
			}
			e.magic = magic[:n]
		}
		entries[cleanMember(hdr.Name)] = e
	}
}

func cleanMember(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

// resolve follows symbolic and hard links (legacy `docker save` links
// duplicate layers to the first copy) to a regular file.
func resolve(entries map[string]tarEntry, member string) (string, tarEntry, error) {
	p := cleanMember(member)
	for range 64 {
		e, ok := entries[p]
		if !ok {
			return "", tarEntry{}, fmt.Errorf("%s is not in the archive", member)
		}
		switch e.typeflag {
		case tar.TypeReg:
			return p, e, nil
		case tar.TypeSymlink:
			if strings.HasPrefix(e.linkname, "/") {
				p = cleanMember(e.linkname)
			} else {
				p = cleanMember(path.Join(path.Dir(p), e.linkname))
			}
		case tar.TypeLink:
			p = cleanMember(e.linkname) // hard link names are relative to the archive root
		default:
			return "", tarEntry{}, fmt.Errorf("%s is not a regular file in the archive", member)
		}
	}
	return "", tarEntry{}, fmt.Errorf("%s: too many links", member)
}

// openMember returns the body of the regular file member of the archive.
func openMember(file, member string) (io.ReadCloser, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err != nil {
			f.Close()
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%s is not in the archive", member)
			}
			return nil, err
		}
		if hdr.Typeflag == tar.TypeReg && cleanMember(hdr.Name) == member {
			return readCloser{tr, f}, nil
		}
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// selectArchiveImage picks the manifest.json entry that tag names (compared
// as ggcr does, by fully qualified name), or the only one when tag is nil.
func selectArchiveImage(m tarball.Manifest, tag *name.Tag) (*tarball.Descriptor, error) {
	if tag == nil {
		switch len(m) {
		case 0:
			return nil, fmt.Errorf("%w: the archive holds no image", refio.ErrNotFound)
		case 1:
			return &m[0], nil
		}
		return nil, fmt.Errorf("%w: the archive holds %d images, name one with docker-archive:FILE:REPO:TAG (available: %s)", refio.ErrAmbiguous, len(m), repoTags(m))
	}
	var found []int
	for i := range m {
		for _, rt := range m[i].RepoTags {
			if t, err := name.NewTag(rt); err == nil && t.Name() == tag.Name() {
				found = append(found, i)
				break
			}
		}
	}
	switch {
	case len(found) == 0:
		return nil, fmt.Errorf("%w: tag %s is not in the archive (available: %s)", refio.ErrNotFound, tag, repoTags(m))
	case len(found) > 1:
		// `docker load` would give the tag to the last; no reader agrees
		// on which is meant.
		var cfgs []string
		for _, i := range found {
			cfgs = append(cfgs, m[i].Config)
		}
		return nil, fmt.Errorf("%w: tag %s names %d images in the archive (configs %s)", refio.ErrAmbiguous, tag, len(found), strings.Join(cfgs, ", "))
	}
	return &m[found[0]], nil
}

func repoTags(m tarball.Manifest) string {
	var tags []string
	for _, d := range m {
		if len(d.RepoTags) == 0 {
			tags = append(tags, "<untagged "+d.Config+">")
		}
		tags = append(tags, d.RepoTags...)
	}
	if len(tags) == 0 {
		return "none"
	}
	return strings.Join(tags, ", ")
}

// Open returns the image tagged tag (or the only image) in the `docker save`
// tarball file, presented with its layer blobs exactly as stored (see the
// package doc): a `docker save` layer is uncompressed and stays so, no gzip
// on the fly. Errors wrap refio.refio.ErrNotFound or refio.refio.ErrAmbiguous when tag
// names no image or several.
func Open(file, tag string) (v1.Image, error) {
	var t *name.Tag
	if tag != "" {
		nt, err := name.NewTag(tag)
		if err != nil {
			return nil, err
		}
		t = &nt
	}
	if err := checkArchiveFile(file); err != nil {
		return nil, err
	}
	entries, err := scanArchive(file)
	if err != nil {
		return nil, err
	}
	if e, ok := entries["manifest.json"]; ok && e.size > refio.MaxIndexJSONSize {
		return nil, fmt.Errorf("manifest.json: %w: %d bytes, more than the %d allowed", refio.ErrTooLarge, e.size, refio.MaxIndexJSONSize)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	if err != nil {
		return nil, err
	}
	desc, err := selectArchiveImage(m, t)
	if err != nil {
		return nil, err
	}
	if _, e, err := resolve(entries, desc.Config); err == nil && e.size > refio.MaxConfigSize {
		return nil, fmt.Errorf("config %s: %w: %d bytes, more than the %d allowed", desc.Config, refio.ErrTooLarge, e.size, refio.MaxConfigSize)
	}
	base, err := tarball.ImageFromPath(file, t)
	if err != nil {
		return nil, err
	}
	rawConfig, err := base.RawConfigFile()
	if err != nil {
		return nil, err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawConfig))
	if err != nil {
		return nil, fmt.Errorf("parsing image config: %w", err)
	}
	if len(cfg.RootFS.DiffIDs) != len(desc.Layers) {
		return nil, fmt.Errorf("manifest.json lists %d layers but the config has %d diff_ids", len(desc.Layers), len(cfg.RootFS.DiffIDs))
	}
	configName, _, err := v1.SHA256(bytes.NewReader(rawConfig))
	if err != nil {
		return nil, err
	}

	img := &archiveImage{rawConfig: rawConfig, configName: configName}
	ociTypes := false
	for i, member := range desc.Layers {
		resolved, e, err := resolve(entries, member)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		c, err := compress.Sniff(e.magic)
		if err != nil {
			return nil, fmt.Errorf("layer %d (%s): %w", i, resolved, err)
		}
		l := &archiveLayer{
			file:   file,
			member: resolved,
			size:   e.size,
			diffID: cfg.RootFS.DiffIDs[i],
			codec:  c,
		}
		src, listed := desc.LayerSources[l.diffID]
		switch {
		case listed && !src.MediaType.IsDistributable():
			// A foreign layer: keep its descriptor as given.
			l.desc = src
			l.size = src.Size
		case listed && l.codec != compress.None && src.Digest != (v1.Hash{}):
			// A compressed blob whose digest is recorded. (Docker 25+ lists its
			// uncompressed layers too; those take the diff_id below.)
			l.desc = v1.Descriptor{Digest: src.Digest}
			l.verify = true
		case l.codec == compress.None:
			l.desc = v1.Descriptor{Digest: l.diffID}
			l.verify = true
		default:
			if h, ok := digestFromName(resolved); ok {
				l.desc = v1.Descriptor{Digest: h}
				l.verify = true
			}
		}
		if l.codec == compress.Zstd || strings.HasPrefix(string(l.desc.MediaType), "application/vnd.oci.") {
			ociTypes = true
		}
		img.layers = append(img.layers, l)
	}

	img.mediaType, img.configType = types.DockerManifestSchema2, types.DockerConfigJSON
	if ociTypes {
		img.mediaType, img.configType = types.OCIManifestSchema1, types.OCIConfigJSON
	}
	for _, l := range img.layers {
		if l.desc.MediaType == "" {
			// A zstd layer made ociTypes true: no error here.
			if l.desc.MediaType, err = compress.LayerMediaType(l.codec, ociTypes); err != nil {
				return nil, err
			}
		}
		if d := l.desc.Digest; d != (v1.Hash{}) {
			l.digest = func() (v1.Hash, error) { return d, nil }
		} else {
			l.digest = sync.OnceValues(l.hash)
		}
	}
	img.manifest = sync.OnceValues(img.buildManifest)
	img.rawManifest = sync.OnceValues(func() ([]byte, error) {
		m, err := img.manifest()
		if err != nil {
			return nil, err
		}
		return json.Marshal(m)
	})
	return img, nil
}

// digestFromName returns the digest that a content-addressed blob name
// holds: "blobs/sha256/HEX" (Docker 25+, containerd) or "HEX.tar.gz" (ggcr).
func digestFromName(member string) (v1.Hash, bool) {
	base := path.Base(member)
	for _, ext := range []string{".tar.gz", ".tar.zst", ".tgz", ".gz", ".zst", ".tar"} {
		if s, ok := strings.CutSuffix(base, ext); ok {
			base = s
			break
		}
	}
	h, err := v1.NewHash("sha256:" + base)
	if err != nil {
		return v1.Hash{}, false
	}
	return h, true
}

// archiveImage is a v1.Image over one image of a docker-archive; see the
// comment at the top of this file.
type archiveImage struct {
	rawConfig   []byte
	configName  v1.Hash
	mediaType   types.MediaType
	configType  types.MediaType
	layers      []*archiveLayer
	manifest    func() (*v1.Manifest, error) // built once, on first use
	rawManifest func() ([]byte, error)
}

var _ v1.Image = (*archiveImage)(nil)

func (i *archiveImage) buildManifest() (*v1.Manifest, error) {
	m := &v1.Manifest{
		SchemaVersion: 2,
		MediaType:     i.mediaType,
		Config: v1.Descriptor{
			MediaType: i.configType,
			Size:      int64(len(i.rawConfig)),
			Digest:    i.configName,
		},
	}
	for _, l := range i.layers {
		d, err := l.Descriptor()
		if err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, *d)
	}
	return m, nil
}

func (i *archiveImage) Layers() ([]v1.Layer, error) {
	ls := make([]v1.Layer, len(i.layers))
	for n, l := range i.layers {
		ls[n] = l
	}
	return ls, nil
}

func (i *archiveImage) MediaType() (types.MediaType, error) { return i.mediaType, nil }
func (i *archiveImage) Size() (int64, error)                { return partial.Size(i) }
func (i *archiveImage) ConfigName() (v1.Hash, error)        { return i.configName, nil }
func (i *archiveImage) RawConfigFile() ([]byte, error)      { return i.rawConfig, nil }
func (i *archiveImage) Digest() (v1.Hash, error)            { return partial.Digest(i) }
func (i *archiveImage) RawManifest() ([]byte, error)        { return i.rawManifest() }

func (i *archiveImage) ConfigFile() (*v1.ConfigFile, error) {
	return v1.ParseConfigFile(bytes.NewReader(i.rawConfig))
}

func (i *archiveImage) Manifest() (*v1.Manifest, error) {
	m, err := i.manifest()
	if err != nil {
		return nil, err
	}
	return m.DeepCopy(), nil
}

func (i *archiveImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	if h == i.configName {
		return partial.ConfigLayer(i)
	}
	for _, l := range i.layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		if d == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("%w: no layer with digest %s", refio.ErrNotFound, h)
}

func (i *archiveImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	for _, l := range i.layers {
		if l.diffID == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("%w: no layer with diff_id %s", refio.ErrNotFound, h)
}

// archiveLayer is one layer blob of a docker-archive, presented as stored.
type archiveLayer struct {
	file   string // the archive
	member string // the blob's regular file in the archive, links resolved
	size   int64
	diffID v1.Hash
	codec  compress.Codec
	// desc holds the media type, the digest when known without reading the
	// blob, and, for a foreign layer, its whole descriptor.
	desc   v1.Descriptor
	verify bool // check desc.Digest as the blob is read
	digest func() (v1.Hash, error)
}

var _ v1.Layer = (*archiveLayer)(nil)

func (l *archiveLayer) Digest() (v1.Hash, error)            { return l.digest() }
func (l *archiveLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *archiveLayer) Size() (int64, error)                { return l.size, nil }
func (l *archiveLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

// Descriptor lets partial.Descriptor, and so the manifests that ggcr builds
// over this layer, keep a foreign layer's URLs and annotations.
func (l *archiveLayer) Descriptor() (*v1.Descriptor, error) {
	d := *l.desc.DeepCopy()
	h, err := l.digest()
	if err != nil {
		return nil, err
	}
	d.Digest, d.Size = h, l.size
	return &d, nil
}

// Compressed returns the blob as stored in the archive.
func (l *archiveLayer) Compressed() (io.ReadCloser, error) {
	rc, err := openMember(l.file, l.member)
	if err != nil {
		return nil, err
	}
	if l.verify && l.desc.Digest.Algorithm == "sha256" {
		return &verifyingReader{rc: rc, h: sha256.New(), want: l.desc.Digest, member: l.member}, nil
	}
	return rc, nil
}

// Uncompressed returns the layer's tar stream: the blob itself when it is
// not compressed, else the blob decompressed by compress.NewReader (the one
// decoder of layerslim: it knows zstd skippable frames, ggcr's does not).
func (l *archiveLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Compressed()
	if err != nil || l.codec == compress.None {
		return rc, err
	}
	dr, err := compress.NewReader(l.codec, rc)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return &decompressed{ReadCloser: dr, blob: rc}, nil
}

// decompressed is a blob's decompressor that closes the blob too.
type decompressed struct {
	io.ReadCloser
	blob io.Closer
}

func (d *decompressed) Close() error {
	d.ReadCloser.Close()
	return d.blob.Close()
}

// hash computes the digest of a blob whose name does not tell it.
func (l *archiveLayer) hash() (v1.Hash, error) {
	rc, err := openMember(l.file, l.member)
	if err != nil {
		return v1.Hash{}, err
	}
	defer rc.Close()
	h, _, err := v1.SHA256(rc)
	return h, err
}

// verifyingReader fails at the end of a blob whose digest is not want.
type verifyingReader struct {
	rc     io.ReadCloser
	h      hash.Hash
	want   v1.Hash
	member string
}

func (r *verifyingReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if got := hex.EncodeToString(r.h.Sum(nil)); got != r.want.Hex {
			return n, fmt.Errorf("%s in the archive: digest is sha256:%s, expected %s", r.member, got, r.want)
		}
	}
	return n, err
}

func (r *verifyingReader) Close() error { return r.rc.Close() }
