package testenv

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression of the layers an ImageSpec builds.
type Compression int

const (
	Gzip         Compression = iota // tar+gzip (Docker or OCI media types)
	Zstd                            // tar+zstd (always OCI media types)
	Uncompressed                    // plain tar
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	case Uncompressed:
		return "none"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// DefaultCreated is the creation time of images and history entries that set none.
var DefaultCreated = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// DefaultConfig is the runtime config of images that set none.
var DefaultConfig = v1.Config{
	Entrypoint: []string{"/app"},
	Cmd:        []string{"--serve"},
	Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	WorkingDir: "/",
	Labels:     map[string]string{"org.example.layerslim-test": "true"},
}

// ImageSpec describes an image for Image. Zero fields get defaults.
type ImageSpec struct {
	Platform    v1.Platform // zero: linux/amd64
	Layers      [][]byte    // uncompressed tar streams, bottom first
	Compression Compression
	Level       int  // compression level; 0: gzip 6, zstd 3
	OCI         bool // OCI media types; Docker schema 2 otherwise (Zstd forces OCI)

	Config  *v1.Config   // nil: DefaultConfig
	History []v1.History // nil: one "ADD" entry per layer, then empty-layer entries for the config
	Created time.Time    // zero: DefaultCreated

	Annotations map[string]string // manifest annotations (OCI manifests only)
}

// GzipImage is a Docker schema 2 image with gzip layers and DefaultConfig.
func GzipImage(t testing.TB, platform v1.Platform, layers ...[]byte) v1.Image {
	t.Helper()
	return Image(t, ImageSpec{Platform: platform, Layers: layers})
}

// ZstdImage is an OCI image with zstd layers and DefaultConfig.
func ZstdImage(t testing.TB, platform v1.Platform, layers ...[]byte) v1.Image {
	t.Helper()
	return Image(t, ImageSpec{Platform: platform, Layers: layers, Compression: Zstd})
}

// Image builds the image spec describes, all in memory. The same spec always
// gives the same digests.
func Image(t testing.TB, spec ImageSpec) v1.Image {
	t.Helper()
	img, err := buildImage(spec)
	if err != nil {
		t.Fatalf("testenv.Image: %v", err)
	}
	return img
}

func buildImage(spec ImageSpec) (*memImage, error) {
	if spec.Platform.OS == "" {
		spec.Platform.OS = "linux"
	}
	if spec.Platform.Architecture == "" {
		spec.Platform.Architecture = "amd64"
	}
	if spec.Created.IsZero() {
		spec.Created = DefaultCreated
	}
	cfg := DefaultConfig
	if spec.Config != nil {
		cfg = *spec.Config
	}
	oci := spec.OCI || spec.Compression == Zstd

	manifestType, configType := types.DockerManifestSchema2, types.DockerConfigJSON
	if oci {
		manifestType, configType = types.OCIManifestSchema1, types.OCIConfigJSON
	}
	var layerType types.MediaType
	switch {
	case spec.Compression == Gzip && oci:
		layerType = types.OCILayer
	case spec.Compression == Gzip:
		layerType = types.DockerLayer
	case spec.Compression == Zstd:
		layerType = types.OCILayerZStd
	case spec.Compression == Uncompressed && oci:
		layerType = types.OCIUncompressedLayer
	case spec.Compression == Uncompressed:
		layerType = types.DockerUncompressedLayer
	default:
		return nil, fmt.Errorf("unknown compression %v", spec.Compression)
	}

	img := &memImage{mediaType: manifestType, configType: configType}
	var diffIDs []v1.Hash
	for i, tarball := range spec.Layers {
		blob, err := compress(tarball, spec.Compression, spec.Level)
		if err != nil {
			return nil, fmt.Errorf("compressing layer %d: %w", i, err)
		}
		l := &memLayer{
			blob:      blob,
			tar:       tarball,
			digest:    sha256Hash(blob),
			diffID:    sha256Hash(tarball),
			mediaType: layerType,
		}
		img.layers = append(img.layers, l)
		diffIDs = append(diffIDs, l.diffID)
	}

	history := spec.History
	if history == nil {
		for i := range spec.Layers {
			history = append(history, v1.History{
				Created:   v1.Time{Time: spec.Created},
				CreatedBy: fmt.Sprintf("/bin/sh -c #(nop) ADD file:layer%d in / ", i),
			})
		}
		if len(cfg.Entrypoint) > 0 {
			history = append(history, emptyHistory(spec.Created, "ENTRYPOINT", cfg.Entrypoint))
		}
		if len(cfg.Cmd) > 0 {
			history = append(history, emptyHistory(spec.Created, "CMD", cfg.Cmd))
		}
	}

	cf := v1.ConfigFile{
		Architecture: spec.Platform.Architecture,
		Variant:      spec.Platform.Variant,
		OS:           spec.Platform.OS,
		OSVersion:    spec.Platform.OSVersion,
		OSFeatures:   spec.Platform.OSFeatures,
		Created:      v1.Time{Time: spec.Created},
		History:      history,
		RootFS:       v1.RootFS{Type: "layers", DiffIDs: diffIDs},
		Config:       cfg,
	}
	rawConfig, err := json.Marshal(cf)
	if err != nil {
		return nil, err
	}
	img.rawConfig = rawConfig

	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     manifestType,
		Config: v1.Descriptor{
			MediaType: configType,
			Size:      int64(len(rawConfig)),
			Digest:    sha256Hash(rawConfig),
		},
		Layers: []v1.Descriptor{},
	}
	if oci {
		m.Annotations = spec.Annotations
	} else if len(spec.Annotations) > 0 {
		return nil, fmt.Errorf("annotations need OCI media types (set OCI)")
	}
	for _, l := range img.layers {
		m.Layers = append(m.Layers, v1.Descriptor{
			MediaType: l.mediaType,
			Size:      int64(len(l.blob)),
			Digest:    l.digest,
		})
	}
	rawManifest, err := json.MarshalIndent(m, "", "   ")
	if err != nil {
		return nil, err
	}
	img.rawManifest = rawManifest
	return img, nil
}

func emptyHistory(created time.Time, instr string, args []string) v1.History {
	j, _ := json.Marshal(args)
	return v1.History{
		Created:    v1.Time{Time: created},
		CreatedBy:  fmt.Sprintf("/bin/sh -c #(nop)  %s %s", instr, j),
		EmptyLayer: true,
	}
}

// compress returns tarball compressed with c; the same input gives the same bytes.
func compress(tarball []byte, c Compression, level int) ([]byte, error) {
	var buf bytes.Buffer
	var w io.WriteCloser
	switch c {
	case Uncompressed:
		return bytes.Clone(tarball), nil
	case Gzip:
		if level == 0 {
			level = gzip.DefaultCompression
		}
		gw, err := gzip.NewWriterLevel(&buf, level)
		if err != nil {
			return nil, err
		}
		w = gw
	case Zstd:
		if level == 0 {
			level = 3
		}
		zw, err := zstd.NewWriter(&buf,
			zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
			zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		w = zw
	default:
		return nil, fmt.Errorf("unknown compression %v", c)
	}
	if _, err := w.Write(tarball); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// memLayer is a layer held in memory with precomputed digests.
type memLayer struct {
	blob, tar      []byte
	digest, diffID v1.Hash
	mediaType      types.MediaType
}

var _ v1.Layer = (*memLayer)(nil)

func (l *memLayer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *memLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *memLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.blob)), nil
}
func (l *memLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.tar)), nil
}
func (l *memLayer) Size() (int64, error)                { return int64(len(l.blob)), nil }
func (l *memLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

// memImage is an image held in memory; every accessor returns stored bytes.
type memImage struct {
	mediaType   types.MediaType
	configType  types.MediaType
	rawConfig   []byte
	rawManifest []byte
	layers      []*memLayer
}

var _ v1.Image = (*memImage)(nil)

func (i *memImage) Layers() ([]v1.Layer, error) {
	ls := make([]v1.Layer, len(i.layers))
	for n, l := range i.layers {
		ls[n] = l
	}
	return ls, nil
}
func (i *memImage) MediaType() (types.MediaType, error) { return i.mediaType, nil }
func (i *memImage) Size() (int64, error)                { return int64(len(i.rawManifest)), nil }
func (i *memImage) ConfigName() (v1.Hash, error)        { return sha256Hash(i.rawConfig), nil }
func (i *memImage) ConfigFile() (*v1.ConfigFile, error) {
	return v1.ParseConfigFile(bytes.NewReader(i.rawConfig))
}
func (i *memImage) RawConfigFile() ([]byte, error) { return bytes.Clone(i.rawConfig), nil }
func (i *memImage) Digest() (v1.Hash, error)       { return sha256Hash(i.rawManifest), nil }
func (i *memImage) Manifest() (*v1.Manifest, error) {
	return v1.ParseManifest(bytes.NewReader(i.rawManifest))
}
func (i *memImage) RawManifest() ([]byte, error) { return bytes.Clone(i.rawManifest), nil }

func (i *memImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	if h == sha256Hash(i.rawConfig) {
		return &memLayer{blob: i.rawConfig, tar: i.rawConfig, digest: h, diffID: h, mediaType: i.configType}, nil
	}
	for _, l := range i.layers {
		if l.digest == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("no layer with digest %s", h)
}

func (i *memImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	for _, l := range i.layers {
		if l.diffID == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("no layer with diff ID %s", h)
}

// BadConfig is img serving a config blob that is not the one its manifest
// names (a space appended), for tests that a reader checks the config's
// digest.
func BadConfig(img v1.Image) v1.Image { return badConfig{img} }

type badConfig struct{ v1.Image }

func (b badConfig) RawConfigFile() ([]byte, error) {
	raw, err := b.Image.RawConfigFile()
	return append(raw, ' '), err
}
