package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Fields of manifests and indexes that layerslim writes itself; any other
// top-level field of a source manifest or index is kept as it was.
var (
	manifestKeys = []string{"schemaVersion", "mediaType", "config", "layers", "annotations", "subject", "artifactType"}
	indexKeys    = []string{"schemaVersion", "mediaType", "manifests", "annotations", "subject", "artifactType"}
)

// extraFields returns the top-level fields of the JSON object raw that are
// not in known (nil for none, or when raw is empty).
func extraFields(raw []byte, known []string) (map[string]json.RawMessage, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parsing source manifest: %w", err)
	}
	for _, k := range known {
		delete(doc, k)
	}
	if len(doc) == 0 {
		return nil, nil
	}
	return doc, nil
}

// withExtras adds extras, by key, at the end of the JSON object b. Without
// extras b is returned as it is, so outputs of sources without unknown
// fields do not change.
func withExtras(b []byte, extras map[string]json.RawMessage) ([]byte, error) {
	if len(extras) == 0 {
		return b, nil
	}
	var buf bytes.Buffer
	buf.Write(bytes.TrimSuffix(bytes.TrimSpace(b), []byte("}")))
	for _, k := range slices.Sorted(maps.Keys(extras)) {
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		var vb bytes.Buffer
		if err := json.Compact(&vb, extras[k]); err != nil {
			return nil, err
		}
		buf.WriteByte(',')
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb.Bytes())
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// indexJSON is an index whose entries are written as given.
type indexJSON struct {
	SchemaVersion int64             `json:"schemaVersion"`
	MediaType     types.MediaType   `json:"mediaType,omitempty"`
	Manifests     []json.RawMessage `json:"manifests"`
	Annotations   map[string]string `json:"annotations,omitempty"`
	Subject       *v1.Descriptor    `json:"subject,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
}

// sourceEntries maps the entries of the raw index (its "manifests") that
// parse as descriptors to their JSON as written.
func sourceEntries(raw []byte) (map[v1.Hash][]json.RawMessage, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var doc struct {
		Manifests []json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parsing source index: %w", err)
	}
	out := map[v1.Hash][]json.RawMessage{}
	for _, e := range doc.Manifests {
		var d v1.Descriptor
		if json.Unmarshal(e, &d) == nil {
			out[d.Digest] = append(out[d.Digest], e)
		}
	}
	return out, nil
}

// entryJSON is d as an index entry: the source's own entry, unknown fields
// and all, when d is that entry unchanged.
func entryJSON(d v1.Descriptor, src map[v1.Hash][]json.RawMessage) (json.RawMessage, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	for _, e := range src[d.Digest] {
		var sd v1.Descriptor
		if json.Unmarshal(e, &sd) != nil {
			continue
		}
		if sb, err := json.Marshal(sd); err == nil && bytes.Equal(sb, b) {
			var c bytes.Buffer
			if err := json.Compact(&c, e); err == nil {
				return c.Bytes(), nil
			}
		}
	}
	return b, nil
}

// ReplaceIndexEntries returns the index raw (an OCI layout's index.json)
// with the entries match selects replaced by desc, appended last. Every
// other entry, and every top-level field, stays as written, unknown fields
// included; the result is indented by three spaces.
func ReplaceIndexEntries(raw []byte, desc v1.Descriptor, match func(v1.Descriptor) bool) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	if doc == nil {
		return nil, fmt.Errorf("null, not a JSON object")
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(raw, &im); err != nil {
		return nil, err
	}
	var entries []json.RawMessage
	if r, ok := doc["manifests"]; ok {
		if err := json.Unmarshal(r, &entries); err != nil {
			return nil, err
		}
	}
	out := indexJSON{SchemaVersion: im.SchemaVersion, MediaType: im.MediaType, Annotations: im.Annotations, Subject: im.Subject, ArtifactType: im.ArtifactType}
	if out.SchemaVersion == 0 {
		out.SchemaVersion = 2
	}
	if out.MediaType == "" {
		out.MediaType = types.OCIImageIndex
	}
	out.Manifests = []json.RawMessage{}
	for _, e := range entries {
		var d v1.Descriptor
		if err := json.Unmarshal(e, &d); err != nil {
			return nil, err
		}
		if !match(d) {
			var c bytes.Buffer
			if err := json.Compact(&c, e); err != nil {
				return nil, err
			}
			out.Manifests = append(out.Manifests, c.Bytes())
		}
	}
	db, err := json.Marshal(desc)
	if err != nil {
		return nil, err
	}
	out.Manifests = append(out.Manifests, db)
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	extras, err := extraFields(raw, indexKeys)
	if err != nil {
		return nil, err
	}
	if b, err = withExtras(b, extras); err != nil {
		return nil, err
	}
	var ind bytes.Buffer
	if err := json.Indent(&ind, b, "", "   "); err != nil {
		return nil, err
	}
	return ind.Bytes(), nil
}
