// Package manifest builds the manifests, configs and indexes of rewritten
// images. It is pure data: no network, no files.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Format is a manifest family.
type Format int

const (
	// OCI is the OCI image spec.
	OCI Format = iota
	// Docker is Docker image manifest schema 2.
	Docker
)

func (f Format) String() string {
	if f == Docker {
		return "docker"
	}
	return "oci"
}

// FormatOf tells the family of a manifest or index media type.
func FormatOf(mt types.MediaType) Format {
	switch mt {
	case types.DockerManifestSchema2, types.DockerManifestList, types.DockerConfigJSON:
		return Docker
	}
	return OCI
}

// OutputFormat is the format an output of a source in format f is written
// in. Docker schema 2 has no zstd or uncompressed-in-OCI layer types
// (dockerLayers: the output layers are gzip) and defines no annotations
// field (annotated: the output carries annotations, as layerslim's
// provenance always does): either makes the output OCI. layerslim never
// writes a Docker manifest or manifest list with annotations.
func OutputFormat(f Format, dockerLayers, annotated bool) Format {
	if f == Docker && dockerLayers && !annotated {
		return Docker
	}
	return OCI
}

// ErrDockerAnnotations is returned for a Docker schema 2 manifest or
// manifest list that would carry annotations, which that schema does not
// define.
var ErrDockerAnnotations = errors.New("docker schema 2 defines no annotations: write OCI")

// ManifestType, IndexType and ConfigType give the media types of format f.
func (f Format) ManifestType() types.MediaType {
	if f == Docker {
		return types.DockerManifestSchema2
	}
	return types.OCIManifestSchema1
}

// IndexType is the media type of an index in format f.
func (f Format) IndexType() types.MediaType {
	if f == Docker {
		return types.DockerManifestList
	}
	return types.OCIImageIndex
}

// ConfigType is the media type of an image config in format f.
func (f Format) ConfigType() types.MediaType {
	if f == Docker {
		return types.DockerConfigJSON
	}
	return types.OCIConfigJSON
}

// Provenance annotations recorded on every output manifest and index.
const (
	AnnotationSourceDigest = "dev.layerslim.source.digest"
	AnnotationOptions      = "dev.layerslim.options"
	AnnotationVersion      = "dev.layerslim.version"
	// AnnotationDebugFor, on a debug image or index, names the slim one.
	AnnotationDebugFor = "dev.layerslim.debug-for"
)

// Provenance returns the annotations that record where an output came from.
func Provenance(source v1.Hash, options, version string) map[string]string {
	return map[string]string{
		AnnotationSourceDigest: source.String(),
		AnnotationOptions:      options,
		AnnotationVersion:      version,
	}
}

// Image is the input for an image manifest.
type Image struct {
	Source *v1.Manifest // the source manifest
	// SourceRaw is the source manifest as written, if known: its fields
	// that layerslim does not write (unknown to it) are kept.
	SourceRaw []byte
	Config    []byte // the source config blob, as it was
	Format    Format
	Layers    []v1.Descriptor // the output layers, in order
	// DiffIDs are the output layers' diff_ids. When they equal the
	// source config's, the config blob is kept byte for byte.
	DiffIDs     []v1.Hash
	Annotations map[string]string // added to the source manifest's
	// EmptyLayers are source layers (by index) that no longer have a
	// layer of their own: their history entries get empty_layer set.
	EmptyLayers map[int]bool
	// AddHistory, when set, is the created_by of a history entry appended
	// for the merge: with Merged, the entry of the merged layer; without,
	// an empty_layer entry.
	AddHistory string
	// Merged are the source layers (by index) merged into the last output
	// layer. Their history entries get empty_layer set, and the AddHistory
	// entry becomes that layer's own, created when the newest of them was
	// (a time from the input, so the output stays reproducible).
	Merged []int
	// AddLayerHistory, when set, is the created_by of a history entry
	// appended for a layer added on top, created when the newest entry of
	// the history was.
	AddLayerHistory string
}

// Built is a serialized manifest and its config.
type Built struct {
	Manifest    []byte
	Config      []byte
	ConfigDesc  v1.Descriptor
	Descriptor  v1.Descriptor // of the manifest
	ManifestObj *v1.Manifest
}

// BuildImage returns the manifest and config for in. The config changes only
// where the diff_ids do; everything else in it (entrypoint, env, labels,
// history) is kept as it was.
func BuildImage(in Image) (*Built, error) {
	if err := checkDigests("layer", in.Layers); err != nil {
		return nil, err
	}
	cfg, err := configWithDiffIDs(in.Config, in.DiffIDs)
	if err != nil {
		return nil, err
	}
	if len(in.EmptyLayers) > 0 || len(in.Merged) > 0 || in.AddHistory != "" || in.AddLayerHistory != "" {
		if cfg, err = configWithHistory(cfg, in.EmptyLayers, in.Merged, in.AddHistory, in.AddLayerHistory); err != nil {
			return nil, err
		}
	}
	cd, _, err := v1.SHA256(bytes.NewReader(cfg))
	if err != nil {
		return nil, err
	}
	if in.Format == Docker && len(mergeAnnotations(in.Source.Annotations, in.Annotations)) > 0 {
		return nil, ErrDockerAnnotations
	}
	layers := in.Layers
	if layers == nil {
		layers = []v1.Descriptor{} // "layers": [], never null
	}
	m := &v1.Manifest{
		SchemaVersion: 2,
		MediaType:     in.Format.ManifestType(),
		Config: v1.Descriptor{
			MediaType:   in.Format.ConfigType(),
			Size:        int64(len(cfg)),
			Digest:      cd,
			Annotations: in.Source.Config.Annotations,
		},
		Layers:       layers,
		Annotations:  mergeAnnotations(in.Source.Annotations, in.Annotations),
		Subject:      in.Source.Subject,
		ArtifactType: in.Source.ArtifactType,
	}
	if in.Source.Config.MediaType != "" && !isImageConfig(in.Source.Config.MediaType) {
		// An artifact's config keeps its own type.
		m.Config.MediaType = in.Source.Config.MediaType
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	extras, err := extraFields(in.SourceRaw, manifestKeys)
	if err != nil {
		return nil, err
	}
	if raw, err = withExtras(raw, extras); err != nil {
		return nil, err
	}
	md, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return &Built{
		Manifest:    raw,
		Config:      cfg,
		ConfigDesc:  m.Config,
		Descriptor:  v1.Descriptor{MediaType: m.MediaType, Size: int64(len(raw)), Digest: md},
		ManifestObj: m,
	}, nil
}

func isImageConfig(mt types.MediaType) bool {
	return mt == types.DockerConfigJSON || mt == types.OCIConfigJSON
}

// configWithDiffIDs returns config with rootfs.diff_ids replaced, or config
// itself when they are unchanged. Unknown fields survive.
func configWithDiffIDs(config []byte, diffIDs []v1.Hash) ([]byte, error) {
	doc, err := configObject(config)
	if err != nil {
		return nil, err
	}
	var rootfs map[string]json.RawMessage
	if raw, ok := doc["rootfs"]; ok {
		if err := json.Unmarshal(raw, &rootfs); err != nil {
			return nil, fmt.Errorf("parsing config rootfs: %w", err)
		}
	}
	var old []v1.Hash
	if raw, ok := rootfs["diff_ids"]; ok {
		if err := json.Unmarshal(raw, &old); err != nil {
			return nil, fmt.Errorf("parsing config diff_ids: %w", err)
		}
	}
	if equalHashes(old, diffIDs) {
		return config, nil
	}
	if rootfs == nil {
		rootfs = map[string]json.RawMessage{"type": json.RawMessage(`"layers"`)}
	}
	ids := diffIDs
	if ids == nil {
		ids = []v1.Hash{}
	}
	b, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	rootfs["diff_ids"] = b
	if doc["rootfs"], err = json.Marshal(rootfs); err != nil {
		return nil, err
	}
	return json.Marshal(doc)
}

// configWithHistory marks the history entries of the given source layers
// (empty and merged) empty and appends entries. History entries that are
// not empty_layer belong to the layers in order; when their count does not
// match the layers the history is left as it was, but for the appended
// entries, which are then empty_layer ones.
func configWithHistory(config []byte, empty map[int]bool, merged []int, add, addLayer string) ([]byte, error) {
	doc, err := configObject(config)
	if err != nil {
		return nil, err
	}
	var hist []map[string]json.RawMessage
	if raw, ok := doc["history"]; ok {
		if err := json.Unmarshal(raw, &hist); err != nil {
			return nil, fmt.Errorf("parsing config history: %w", err)
		}
	}
	var layerEntries []int
	for i, h := range hist {
		if h == nil { // a null entry
			h = map[string]json.RawMessage{}
			hist[i] = h
		}
		var isEmpty bool
		if raw, ok := h["empty_layer"]; ok {
			json.Unmarshal(raw, &isEmpty)
		}
		if !isEmpty {
			layerEntries = append(layerEntries, i)
		}
	}
	maxLayer := -1
	for l := range empty {
		maxLayer = max(maxLayer, l)
	}
	for _, l := range merged {
		maxLayer = max(maxLayer, l)
	}
	consistent := maxLayer < len(layerEntries)
	var mergedAt json.RawMessage // the newest created of the merged steps
	if consistent {
		for l := range empty {
			hist[layerEntries[l]]["empty_layer"] = json.RawMessage("true")
		}
		var newest []map[string]json.RawMessage
		for _, l := range merged {
			h := hist[layerEntries[l]]
			newest = append(newest, h)
			h["empty_layer"] = json.RawMessage("true")
		}
		mergedAt = newestCreated(newest)
	}
	if add != "" {
		cb, _ := json.Marshal(add)
		e := map[string]json.RawMessage{
			"created_by": cb,
			"comment":    json.RawMessage(`"layerslim"`),
		}
		if consistent && len(merged) > 0 {
			if mergedAt != nil {
				e["created"] = mergedAt
			}
		} else {
			e["empty_layer"] = json.RawMessage("true")
		}
		hist = append(hist, e)
	}
	if addLayer != "" {
		cb, _ := json.Marshal(addLayer)
		e := map[string]json.RawMessage{
			"created_by": cb,
			"comment":    json.RawMessage(`"layerslim"`),
		}
		if at := newestCreated(hist); at != nil {
			e["created"] = at
		}
		hist = append(hist, e)
	}
	b, err := json.Marshal(hist)
	if err != nil {
		return nil, err
	}
	doc["history"] = b
	return json.Marshal(doc)
}

// newestCreated returns the latest "created" of the entries, as it was
// written, or nil when none has a time.
func newestCreated(entries []map[string]json.RawMessage) json.RawMessage {
	var at json.RawMessage
	var newest time.Time
	for _, h := range entries {
		raw, ok := h["created"]
		if !ok {
			continue
		}
		var t time.Time
		if err := json.Unmarshal(raw, &t); err != nil || t.IsZero() {
			continue
		}
		if at == nil || t.After(newest) {
			at, newest = raw, t
		}
	}
	return at
}

// checkDigests refuses descriptors without a digest: they would not
// parse back.
func checkDigests(what string, ds []v1.Descriptor) error {
	for i, d := range ds {
		if d.Digest.Algorithm == "" || d.Digest.Hex == "" {
			return fmt.Errorf("%s %d has no digest", what, i+1)
		}
	}
	return nil
}

// configObject parses a config blob, which must be a JSON object.
func configObject(config []byte) (map[string]json.RawMessage, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(config, &doc); err != nil {
		return nil, fmt.Errorf("parsing config: %w", err)
	}
	if doc == nil {
		return nil, errors.New("parsing config: null, not a JSON object")
	}
	return doc, nil
}

func equalHashes(a, b []v1.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func mergeAnnotations(base, add map[string]string) map[string]string {
	if len(base) == 0 && len(add) == 0 {
		return nil
	}
	out := make(map[string]string, len(base)+len(add))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range add {
		out[k] = v
	}
	return out
}

// Index is the input for an index.
type Index struct {
	Source *v1.IndexManifest
	// SourceRaw is the source index as written, if known: its unknown
	// fields are kept, and so is each entry that comes out unchanged, as
	// it was written.
	SourceRaw   []byte
	Format      Format
	Manifests   []v1.Descriptor // the output children, in order
	Annotations map[string]string
}

// BuildIndex returns the serialized index and its descriptor.
func BuildIndex(in Index) ([]byte, v1.Descriptor, error) {
	if err := checkDigests("index entry", in.Manifests); err != nil {
		return nil, v1.Descriptor{}, err
	}
	if in.Format == Docker && len(mergeAnnotations(in.Source.Annotations, in.Annotations)) > 0 {
		return nil, v1.Descriptor{}, ErrDockerAnnotations
	}
	im := &indexJSON{
		SchemaVersion: 2,
		MediaType:     in.Format.IndexType(),
		Manifests:     []json.RawMessage{},
		Annotations:   mergeAnnotations(in.Source.Annotations, in.Annotations),
		Subject:       in.Source.Subject,
		ArtifactType:  in.Source.ArtifactType,
	}
	src, err := sourceEntries(in.SourceRaw)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	for _, d := range in.Manifests {
		e, err := entryJSON(d, src)
		if err != nil {
			return nil, v1.Descriptor{}, err
		}
		im.Manifests = append(im.Manifests, e)
	}
	raw, err := json.Marshal(im)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	extras, err := extraFields(in.SourceRaw, indexKeys)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	if raw, err = withExtras(raw, extras); err != nil {
		return nil, v1.Descriptor{}, err
	}
	d, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	return raw, v1.Descriptor{MediaType: im.MediaType, Size: int64(len(raw)), Digest: d}, nil
}
