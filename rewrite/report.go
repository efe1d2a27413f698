package rewrite

import (
	"encoding/json"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/compress"
)

// Action says what happened to a layer.
type Action string

const (
	// Recompressed: the same uncompressed bytes, encoded anew.
	Recompressed Action = "recompressed"
	// Rewritten: the filters changed the layer's contents.
	Rewritten Action = "rewritten"
	// Reused: the source blob is used as it is.
	Reused Action = "reused"
	// PassedThrough: a non-distributable layer, referenced as it was.
	PassedThrough Action = "passed-through"
	// Squashed: several source layers merged into this one.
	Squashed Action = "squashed"
)

// Blob describes one layer blob.
type Blob struct {
	Digest    v1.Hash         `json:"digest"`
	Size      int64           `json:"size"`
	MediaType types.MediaType `json:"mediaType"`
	Codec     compress.Codec  `json:"codec,omitempty"`
	DiffID    v1.Hash         `json:"diffID"`
}

// LayerReport is what happened to one layer.
type LayerReport struct {
	Source Blob   `json:"source"`
	Output Blob   `json:"output"`
	Action Action `json:"action"`
	// UncompressedBytes is the size of the layer's tar stream as read.
	UncompressedBytes int64 `json:"uncompressedBytes,omitempty"`
	// Shared is true when this layer's result was computed for another
	// platform of the same index and reused here.
	Shared bool `json:"shared,omitempty"`
	// Cached is true when the layer's output was found in the layer cache
	// (WithLayerCache) instead of being computed.
	Cached   bool          `json:"cached,omitempty"`
	Duration time.Duration `json:"durationNanos"`
	// Changes lists what the filters did to entries (dropped paths, split
	// ELF files), in stream order.
	Changes []Change `json:"changes,omitempty"`
	// Merged lists the source layers a squashed layer holds, bottom up.
	Merged []v1.Hash `json:"merged,omitempty"`
	// Empty is set when nothing was left in the layer, which is then left
	// out of the image.
	Empty bool `json:"empty,omitempty"`
}

// Change is one thing a filter did to one entry.
type Change struct {
	Path   string       `json:"path"`
	Action ChangeAction `json:"action"`
	Bytes  int64        `json:"bytes"`            // bytes removed from the layer's content
	Reason string       `json:"reason,omitempty"` // the preset or rule that caused it
	// To is the new name of an ActionRenamed entry (Path is the old one).
	To string `json:"to,omitempty"`
}

// ChangeAction says what a filter did to one entry (Change.Action); an
// Action says what happened to a whole layer. The ELF splitter's actions
// are with it in elfsplit.go.
type ChangeAction string

// The Change actions of the drop rules and of the name cleaning.
const (
	// ActionDropped: a drop rule took the entry (or it was a hardlink to
	// a dropped file).
	ActionDropped ChangeAction = "dropped"
	// ActionRenamed: an entry whose name (or hardlink target) climbed out
	// of the root is written under its clean name, Change.To.
	ActionRenamed ChangeAction = "renamed"
)

// A Recorder collects the changes of one layer. Filters get one when they
// are made (see WithFilter).
type Recorder interface {
	Record(Change)
}

type changeList struct{ changes []Change }

func (c *changeList) Record(ch Change) { c.changes = append(c.changes, ch) }

// ImageReport is what happened to one image (one platform).
type ImageReport struct {
	Platform string `json:"platform,omitempty"`
	// Base is the part of the image kept as separate layers under
	// --squash=auto, and why.
	Base *Base `json:"base,omitempty"`
	// Debug is the debug image of this image, with WithDebugImage.
	Debug        *DebugReport    `json:"debug,omitempty"`
	SourceDigest v1.Hash         `json:"sourceDigest"`
	OutputDigest v1.Hash         `json:"outputDigest"`
	MediaType    types.MediaType `json:"mediaType"`
	Layers       []LayerReport   `json:"layers"`
	SourceBytes  int64           `json:"sourceBytes"`
	OutputBytes  int64           `json:"outputBytes"`
}

// Report is the result of a run over an image or an index.
type Report struct {
	SourceDigest v1.Hash         `json:"sourceDigest"`
	OutputDigest v1.Hash         `json:"outputDigest"`
	MediaType    types.MediaType `json:"mediaType"`
	Options      string          `json:"options"`
	Images       []ImageReport   `json:"images"`
	// DebugDigest is the debug image or index, with WithDebugImage.
	DebugDigest *v1.Hash `json:"debugDigest,omitempty"`
	// Variants are the images in the added compression
	// (WithAddCompression), in the order of Images.
	Variants []ImageReport `json:"variants,omitempty"`
	// DroppedVariants lists entries of the source index left out because
	// they are another compression of an image it also holds.
	DroppedVariants []v1.Descriptor `json:"droppedVariants,omitempty"`
	// Kept lists index entries copied as they were (attestations and other
	// non-image manifests), by digest.
	Kept []v1.Descriptor `json:"kept,omitempty"`
	// Dropped lists the attestation entries left out of the output index:
	// they describe a source image that was replaced (BuildKit's
	// vnd.docker.reference.digest names it), not the image written.
	Dropped []v1.Descriptor `json:"droppedAttestations,omitempty"`
	// SourceBytes and OutputBytes add up the distinct layer blobs.
	SourceBytes int64         `json:"sourceBytes"`
	OutputBytes int64         `json:"outputBytes"`
	Duration    time.Duration `json:"durationNanos"`
}

// EventKind tells events apart.
type EventKind int

const (
	// LayerStarted: work on a layer began. Size is the source blob size.
	LayerStarted EventKind = iota
	// LayerProgress: Bytes more compressed bytes were read.
	LayerProgress
	// LayerDone: the layer is finished; Layer holds its report.
	LayerDone
)

// Event is a progress notification.
type Event struct {
	Kind     EventKind
	Platform string
	Digest   v1.Hash // the source layer
	Size     int64
	Bytes    int64
	Layer    *LayerReport
}

// A Reporter receives events. Report is called from many goroutines and
// must not block.
type Reporter interface {
	Report(Event)
}

// ReporterFunc adapts a function to Reporter.
type ReporterFunc func(Event)

// Report calls f(e).
func (f ReporterFunc) Report(e Event) { f(e) }

type nopReporter struct{}

func (nopReporter) Report(Event) {}

// DebugReport describes a debug image.
type DebugReport struct {
	Digest v1.Hash `json:"digest"`
	// Files is the number of files in the debug layer: one per build-id
	// (copies of one program share it), one per path for files without.
	Files int  `json:"files"`
	Layer Blob `json:"layer"`
	// SameAsSlim is set when nothing was split: the debug image is the
	// slim image itself (Digest is the slim manifest's), with no layer.
	SameAsSlim bool `json:"sameAsSlim,omitempty"`
	// Conflicts names the build-ids whose copies held different debug
	// sections, none of them all, and which copy was shipped.
	Conflicts []string `json:"conflicts,omitempty"`
}

// blobJSON is Blob on the wire: a digest that is not known is left out
// rather than written as ":".
type blobJSON struct {
	Digest    string          `json:"digest,omitempty"`
	Size      int64           `json:"size"`
	MediaType types.MediaType `json:"mediaType,omitempty"`
	Codec     compress.Codec  `json:"codec,omitempty"`
	DiffID    string          `json:"diffID,omitempty"`
}

func hashText(h v1.Hash) string {
	if h.Hex == "" {
		return ""
	}
	return h.String()
}

func parseHash(s string) (v1.Hash, error) {
	if s == "" {
		return v1.Hash{}, nil
	}
	return v1.NewHash(s)
}

// MarshalJSON writes b, leaving unknown digests out.
func (b Blob) MarshalJSON() ([]byte, error) {
	return json.Marshal(blobJSON{hashText(b.Digest), b.Size, b.MediaType, b.Codec, hashText(b.DiffID)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (b *Blob) UnmarshalJSON(data []byte) error {
	var j blobJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	d, err := parseHash(j.Digest)
	if err != nil {
		return err
	}
	id, err := parseHash(j.DiffID)
	if err != nil {
		return err
	}
	*b = Blob{Digest: d, Size: j.Size, MediaType: j.MediaType, Codec: j.Codec, DiffID: id}
	return nil
}
