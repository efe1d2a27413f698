package batch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/rewrite"
)

// MemoConfigType is the config media type of a memo entry in the registry.
const MemoConfigType types.MediaType = "application/vnd.layerslim.layer-memo.v1+json"

// Memo is batch's layer cache: the rewrite.LayerCache that a batch run
// hands to every rewrite (through For), kept on disk and in a registry.
//
// It remembers the output of every layer pass, so that a layer shared by
// many images is rewritten once and its output blob uploaded once per
// registry; every other image mounts it (cross-repository blob mount).
//
// Entries live in memory for the run, in a local directory (one JSON file a
// key: the output blob's digest, size, media type and diff_id, the layer's
// report, and the repositories that hold the blob) and, when a cache
// repository is given, in the registry: one small OCI manifest per key,
// tagged by the key, whose config is the entry and whose one layer is the
// output blob. Shards on other machines find the registry entries; a blob
// is checked (HEAD) before an entry that points to it is used.
//
// Within a process, a key being computed makes the other lookups of it wait
// (singleflight). Two processes that compute the same key both succeed:
// output is deterministic, so they upload the same blob and write the same
// memo manifest.
type Memo struct {
	dir  string
	repo *name.Repository
	ro   imageref.Options

	// Warn, if set, hears about memo writes that failed: the layer is then
	// pushed with its image as without a memo, and the run goes on.
	Warn func(msg string)

	mu       sync.Mutex
	flights  map[string]chan struct{}
	known    map[string]*memoEntry
	verified map[string]bool // repo@digest seen to exist
}

// publishAttempts is how often a memo manifest is written before the memo
// gives up on the entry. Another process writing the same blobs into the
// cache repository at the same moment can make the registry refuse one
// write (distribution 2.8 answers DIGEST_INVALID or MANIFEST_BLOB_UNKNOWN
// while the other upload commits); written again, it goes through.
const publishAttempts = 4

// memoEntry is one key's output. Repositories is kept locally only.
type memoEntry struct {
	Key          string              `json:"key"`
	Blob         rewrite.Blob        `json:"blob"`
	Report       rewrite.LayerReport `json:"report"`
	Paths        []string            `json:"paths,omitempty"`
	Repositories []string            `json:"repositories,omitempty"`
}

// DefaultCacheDir is where the memo's local entries go by default:
// $XDG_CACHE_HOME/layerslim/layers, or ~/.cache/layerslim/layers ("" when
// neither is known).
func DefaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "layerslim", "layers")
}

// NewMemo returns a memo keeping entries in dir ("" keeps none on disk) and,
// when repo is not "", in that registry repository.
func NewMemo(dir, repo string, ro imageref.Options) (*Memo, error) {
	m := &Memo{dir: dir, ro: ro, flights: map[string]chan struct{}{}, known: map[string]*memoEntry{}, verified: map[string]bool{}}
	if repo != "" {
		r, err := name.NewRepository(repo, nameOpts(ro.Insecure)...)
		if err != nil {
			return nil, fmt.Errorf("cache repository %q: %w", repo, err)
		}
		m.repo = &r
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("layer cache directory: %w", err)
		}
	}
	return m, nil
}

// For returns the cache for images written to the registry repository dst:
// without a cache repository, an output blob is first uploaded there.
func (m *Memo) For(dst name.Repository) rewrite.LayerCache { return &memoView{m: m, dst: dst} }

// memoTag is the tag (and file name) of a key: [A-Za-z0-9_.-], 70 bytes.
func memoTag(key string) string {
	return fmt.Sprintf("layer-%x", sha256.Sum256([]byte(key)))
}

type memoView struct {
	m   *Memo
	dst name.Repository
}

var _ rewrite.LayerCache = (*memoView)(nil)

// Lookup returns a key's output when this process, the local directory or
// the registry memo knows it and its blob is still on the destination's
// registry; a blob that only another registry holds is copied over first.
// On a miss the caller owns the key until Store or Abandon.
func (v *memoView) Lookup(ctx context.Context, key string) (rewrite.CachedLayer, bool, error) {
	m := v.m
	for {
		m.mu.Lock()
		ch, busy := m.flights[key]
		if !busy {
			m.flights[key] = make(chan struct{})
			m.mu.Unlock()
			break
		}
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return rewrite.CachedLayer{}, false, ctx.Err()
		}
	}
	// This goroutine owns the key now.
	m.mu.Lock()
	e := m.known[key]
	m.mu.Unlock()
	if e == nil {
		e = m.load(key)
	}
	if e != nil {
		if c, ok := v.usable(ctx, e); ok {
			m.land(key, e)
			return c, true, nil
		}
	}
	if v.shared() {
		e, err := m.fetch(ctx, key)
		if err != nil {
			m.end(key)
			return rewrite.CachedLayer{}, false, err
		}
		if e != nil {
			if c, ok := v.usable(ctx, e); ok {
				m.save(e)
				m.land(key, e)
				return c, true, nil
			}
		}
	}
	if e != nil {
		// Known, but on another registry: copying the blob beats
		// computing it again.
		c, ok, err := v.copyIn(ctx, e)
		if err != nil || ok {
			if err != nil {
				m.end(key)
			}
			return c, ok, err
		}
	}
	return rewrite.CachedLayer{}, false, nil
}

// copyIn uploads e's blob from a repository of another registry that holds
// it to the destination repository, records that and returns the layer as
// mountable from there. ok is false when no repository holds the blob.
func (v *memoView) copyIn(ctx context.Context, e *memoEntry) (rewrite.CachedLayer, bool, error) {
	m := v.m
	for _, s := range e.Repositories {
		r, err := name.NewRepository(s, nameOpts(m.ro.Insecure)...)
		if err != nil || r.RegistryStr() == v.dst.RegistryStr() {
			continue
		}
		ref := r.Digest(e.Blob.Digest.String())
		if !m.exists(ctx, ref) {
			continue
		}
		from := &memoLayer{e: e, ref: ref, ro: m.ro, ctx: ctx}
		if err := remote.WriteLayer(v.dst, from, m.ro.RemoteOptions(ctx)...); err != nil {
			return rewrite.CachedLayer{}, false, fmt.Errorf("copying layer %s from %s to %s: %w", e.Blob.Digest, r, v.dst, err)
		}
		n := *e
		n.Repositories = union(e.Repositories, []string{v.dst.Name()})
		m.mu.Lock()
		m.verified[v.dst.Name()+"@"+e.Blob.Digest.String()] = true
		m.mu.Unlock()
		c, ok := v.usable(ctx, &n)
		if ok {
			m.save(&n)
			m.land(e.Key, &n)
		}
		return c, ok, nil
	}
	return rewrite.CachedLayer{}, false, nil
}

// Store uploads the output blob once (to the cache repository with its memo
// manifest when that is on the destination's registry, or else to the
// destination repository), records the entry and returns the layer as
// mountable from there.
func (v *memoView) Store(ctx context.Context, key string, c rewrite.CachedLayer) (v1.Layer, error) {
	m := v.m
	defer m.end(key)
	e, err := newEntry(key, c)
	if err != nil {
		return nil, err
	}
	target := v.dst
	if v.shared() {
		target = *m.repo
		for attempt := 1; ; attempt++ {
			err = m.publish(ctx, e, c.Layer)
			if err == nil || ctx.Err() != nil {
				break
			}
			if attempt == publishAttempts {
				// The memo is an optimisation: the image push uploads
				// the layer itself.
				if m.Warn != nil {
					m.Warn(fmt.Sprintf("layer %s: not recorded in the memo at %s (%d attempts): %v", e.Blob.Digest, target, attempt, err))
				}
				return c.Layer, nil
			}
			select {
			case <-time.After(time.Duration(attempt) * 250 * time.Millisecond):
			case <-ctx.Done():
			}
		}
		if err != nil {
			return nil, fmt.Errorf("writing the memo of layer %s to %s: %w", e.Blob.Digest, target, err)
		}
	} else if err := remote.WriteLayer(target, c.Layer, m.ro.RemoteOptions(ctx)...); err != nil {
		return nil, fmt.Errorf("uploading layer %s to %s: %w", e.Blob.Digest, target, err)
	}
	e.Repositories = []string{target.Name()}
	m.save(e)
	m.land(key, e)
	m.mu.Lock()
	m.verified[target.Name()+"@"+e.Blob.Digest.String()] = true
	m.mu.Unlock()
	return &remote.MountableLayer{Layer: c.Layer, Reference: target.Digest(e.Blob.Digest.String())}, nil
}

// shared reports whether the registry memo serves this destination: a blob
// can be mounted only within one registry.
func (v *memoView) shared() bool {
	return v.m.repo != nil && v.m.repo.RegistryStr() == v.dst.RegistryStr()
}

// Abandon ends the caller's ownership of key without an entry.
func (v *memoView) Abandon(key string) { v.m.end(key) }

func newEntry(key string, c rewrite.CachedLayer) (*memoEntry, error) {
	if c.Layer == nil {
		return nil, errors.New("no layer to store")
	}
	d, err := c.Layer.Digest()
	if err != nil {
		return nil, err
	}
	size, err := c.Layer.Size()
	if err != nil {
		return nil, err
	}
	mt, err := c.Layer.MediaType()
	if err != nil {
		return nil, err
	}
	rep := c.Report
	rep.Duration = 0 // the entry is the same whoever computed it
	return &memoEntry{Key: key, Blob: rewrite.Blob{Digest: d, Size: size, MediaType: mt, Codec: rep.Output.Codec, DiffID: rep.Output.DiffID}, Report: rep, Paths: c.Paths}, nil
}

// end wakes the lookups waiting for key.
func (m *Memo) end(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ch, ok := m.flights[key]; ok {
		close(ch)
		delete(m.flights, key)
	}
}

// land records e as key's entry and wakes the lookups waiting for key.
// Entries are not changed once recorded: others may be reading them.
func (m *Memo) land(key string, e *memoEntry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := *e
	if old := m.known[key]; old != nil {
		n.Repositories = union(old.Repositories, e.Repositories)
	}
	m.known[key] = &n
	if ch, ok := m.flights[key]; ok {
		close(ch)
		delete(m.flights, key)
	}
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// usable returns e's layer, mountable from a repository of the
// destination's registry that still holds the blob.
func (v *memoView) usable(ctx context.Context, e *memoEntry) (rewrite.CachedLayer, bool) {
	var cands []name.Repository
	add := func(s string) {
		r, err := name.NewRepository(s, nameOpts(v.m.ro.Insecure)...)
		if err == nil && r.RegistryStr() == v.dst.RegistryStr() && !slices.ContainsFunc(cands, func(c name.Repository) bool { return c.Name() == r.Name() }) {
			cands = append(cands, r)
		}
	}
	if slices.Contains(e.Repositories, v.dst.Name()) {
		add(v.dst.Name())
	}
	if v.m.repo != nil && slices.Contains(e.Repositories, v.m.repo.Name()) {
		add(v.m.repo.Name())
	}
	for _, s := range e.Repositories {
		add(s)
	}
	for _, r := range cands {
		ref := r.Digest(e.Blob.Digest.String())
		if !v.m.exists(ctx, ref) {
			continue
		}
		// The lookup's context ends with the layer pass; the layer is read
		// later, if a mount falls back to a copy or the output is verified.
		l := &memoLayer{e: e, ref: ref, ro: v.m.ro, ctx: context.WithoutCancel(ctx)}
		return rewrite.CachedLayer{Layer: &remote.MountableLayer{Layer: l, Reference: ref}, Report: e.Report, Paths: e.Paths}, true
	}
	return rewrite.CachedLayer{}, false
}

// exists checks (once a run) that the registry holds the blob ref names.
func (m *Memo) exists(ctx context.Context, ref name.Digest) bool {
	m.mu.Lock()
	ok := m.verified[ref.String()]
	m.mu.Unlock()
	if ok {
		return true
	}
	l, err := remote.Layer(ref, m.ro.RemoteOptions(ctx)...)
	if err != nil {
		return false
	}
	ok, err = partial.Exists(l)
	if err != nil || !ok {
		return false
	}
	m.mu.Lock()
	m.verified[ref.String()] = true
	m.mu.Unlock()
	return true
}

func (m *Memo) path(key string) string { return filepath.Join(m.dir, memoTag(key)+".json") }

// load reads key's local entry; a missing or unreadable one is a miss.
func (m *Memo) load(key string) *memoEntry {
	if m.dir == "" {
		return nil
	}
	b, err := os.ReadFile(m.path(key))
	if err != nil {
		return nil
	}
	var e memoEntry
	if json.Unmarshal(b, &e) != nil || e.Key != key {
		return nil
	}
	return &e
}

// save writes e's local entry (merging the repositories another process may
// have recorded), atomically: a reader sees the old file or the new one.
func (m *Memo) save(e *memoEntry) {
	if m.dir == "" {
		return
	}
	n := *e
	if old := m.load(e.Key); old != nil {
		n.Repositories = union(old.Repositories, e.Repositories)
	}
	b, err := json.Marshal(n)
	if err != nil {
		return
	}
	f, err := os.CreateTemp(m.dir, ".entry-*")
	if err != nil {
		return
	}
	_, werr := f.Write(b)
	cerr := f.Close()
	if werr != nil || cerr != nil || os.Rename(f.Name(), m.path(e.Key)) != nil {
		os.Remove(f.Name())
	}
}

// fetch reads key's memo manifest from the cache repository; nil when
// there is none.
func (m *Memo) fetch(ctx context.Context, key string) (*memoEntry, error) {
	desc, err := remote.Get(m.repo.Tag(memoTag(key)), m.ro.RemoteOptions(ctx)...)
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && (te.StatusCode == http.StatusNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading the layer memo in %s: %w", m.repo, err)
	}
	var mf v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &mf); err != nil || mf.Config.MediaType != MemoConfigType || len(mf.Layers) != 1 {
		return nil, nil // not ours: a miss
	}
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the layer memo in %s: %w", m.repo, err)
	}
	var e memoEntry
	if err := json.Unmarshal(raw, &e); err != nil || e.Key != key || e.Blob.Digest != mf.Layers[0].Digest {
		return nil, nil
	}
	e.Repositories = []string{m.repo.Name()}
	return &e, nil
}

// publish writes key's memo manifest (and so the blob) to the cache
// repository. The content depends on the key's output only, so two shards
// writing it at once write the same bytes.
func (m *Memo) publish(ctx context.Context, e *memoEntry, l v1.Layer) error {
	shared := *e
	shared.Repositories = nil
	cfg, err := json.Marshal(shared)
	if err != nil {
		return err
	}
	cd, _, err := v1.SHA256(bytes.NewReader(cfg))
	if err != nil {
		return err
	}
	mf := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: MemoConfigType, Size: int64(len(cfg)), Digest: cd},
		Layers:        []v1.Descriptor{{MediaType: e.Blob.MediaType, Size: e.Blob.Size, Digest: e.Blob.Digest}},
	}
	raw, err := json.Marshal(mf)
	if err != nil {
		return err
	}
	img, err := partial.CompressedToImage(&memoImage{raw: raw, cfg: cfg, layer: l, digest: e.Blob.Digest})
	if err != nil {
		return err
	}
	return remote.Write(m.repo.Tag(memoTag(e.Key)), img, m.ro.RemoteOptions(ctx)...)
}

// memoImage is a memo manifest: the entry as config, the blob as its layer.
type memoImage struct {
	raw, cfg []byte
	layer    v1.Layer
	digest   v1.Hash
}

func (i *memoImage) RawConfigFile() ([]byte, error)      { return i.cfg, nil }
func (i *memoImage) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (i *memoImage) RawManifest() ([]byte, error)        { return i.raw, nil }
func (i *memoImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == i.digest {
		return i.layer, nil
	}
	if cd, _, _ := v1.SHA256(bytes.NewReader(i.cfg)); h == cd {
		return partial.ConfigLayer(i)
	}
	return nil, fmt.Errorf("blob %s is not in the memo manifest", h)
}

// ConfigFile is not an image config; the memo's config is its entry.
func (i *memoImage) ConfigFile() (*v1.ConfigFile, error) { return &v1.ConfigFile{}, nil }

// memoLayer is an output blob that a registry holds, described by its
// memo entry, so nothing is read unless a mount falls back to a copy.
type memoLayer struct {
	e   *memoEntry
	ref name.Digest
	ro  imageref.Options
	ctx context.Context
}

var _ v1.Layer = (*memoLayer)(nil)

func (l *memoLayer) Digest() (v1.Hash, error)            { return l.e.Blob.Digest, nil }
func (l *memoLayer) DiffID() (v1.Hash, error)            { return l.e.Blob.DiffID, nil }
func (l *memoLayer) Size() (int64, error)                { return l.e.Blob.Size, nil }
func (l *memoLayer) MediaType() (types.MediaType, error) { return l.e.Blob.MediaType, nil }
func (l *memoLayer) Compressed() (io.ReadCloser, error) {
	rl, err := remote.Layer(l.ref, l.ro.RemoteOptions(l.ctx)...)
	if err != nil {
		return nil, err
	}
	return rl.Compressed()
}

func (l *memoLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	codec, ok := compress.MediaTypeCodec(l.e.Blob.MediaType)
	if !ok {
		rc.Close()
		return nil, fmt.Errorf("layer %s: unknown media type %q", l.e.Blob.Digest, l.e.Blob.MediaType)
	}
	r, err := compress.NewReader(codec, rc)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{r, closers{r, rc}}, nil
}

type closers []io.Closer

func (c closers) Close() error {
	var errs []error
	for _, x := range c {
		errs = append(errs, x.Close())
	}
	return errors.Join(errs...)
}
