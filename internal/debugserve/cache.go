package debugserve

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// fileCache keeps files taken out of layers under dir, at most max bytes in
// all: the least recently used go first. Its bookkeeping is one list entry
// per file cached, so memory is bounded by the cache size too.
type fileCache struct {
	dir string
	max int64

	mu    sync.Mutex
	lru   *list.List // of *cached, most recent first
	byKey map[string]*list.Element
	bytes int64

	evictions atomic.Int64
}

type cached struct {
	key  string
	size int64
}

// cacheKey names the cached copy of path in layer l.
func cacheKey(l, path string) string {
	h := sha256.Sum256([]byte(l + "\x00" + path))
	return hex.EncodeToString(h[:])
}

// openCache reads what an earlier run left in dir, oldest first by the time
// each file was last used.
func openCache(dir string, max int64) (*fileCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c := &fileCache{dir: dir, max: max, lru: list.New(), byKey: map[string]*list.Element{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type old struct {
		key  string
		size int64
		used time.Time
	}
	var olds []old
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		if len(e.Name()) != 64 { // a temporary file of a crashed run
			os.Remove(filepath.Join(dir, e.Name()))
			continue
		}
		olds = append(olds, old{e.Name(), info.Size(), info.ModTime()})
	}
	slices.SortFunc(olds, func(a, b old) int { return a.used.Compare(b.used) })
	for _, o := range olds {
		c.byKey[o.key] = c.lru.PushFront(&cached{o.key, o.size})
		c.bytes += o.size
	}
	c.mu.Lock()
	c.evictLocked()
	c.mu.Unlock()
	return c, nil
}

func (c *fileCache) path(key string) string { return filepath.Join(c.dir, key) }

// open returns the cached file of key, marking it used, or nil.
func (c *fileCache) open(key string) *os.File {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[key]
	if !ok {
		return nil
	}
	f, err := os.Open(c.path(key))
	if err != nil {
		c.removeLocked(e)
		return nil
	}
	c.lru.MoveToFront(e)
	now := time.Now()
	os.Chtimes(c.path(key), now, now) // the order survives a restart
	return f
}

// fits reports whether a file of size bytes may be cached at all.
func (c *fileCache) fits(size int64) bool { return size <= c.max }

// temp creates a temporary file in the cache directory, for put.
func (c *fileCache) temp() (*os.File, error) { return os.CreateTemp(c.dir, ".tmp-*") }

// put moves tmp, a closed temporary file of size bytes, into the cache as
// key, and evicts what no longer fits.
func (c *fileCache) put(key, tmp string, size int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := os.Rename(tmp, c.path(key)); err != nil {
		os.Remove(tmp)
		return err
	}
	if e, ok := c.byKey[key]; ok {
		c.bytes -= e.Value.(*cached).size
		c.lru.Remove(e)
	}
	c.byKey[key] = c.lru.PushFront(&cached{key, size})
	c.bytes += size
	c.evictLocked()
	return nil
}

// evictLocked removes least recently used files until the cache fits. A
// file open for a response is read to its end all the same: removing only
// unlinks it.
func (c *fileCache) evictLocked() {
	for c.bytes > c.max {
		e := c.lru.Back()
		if e == nil {
			return
		}
		c.removeLocked(e)
		c.evictions.Add(1)
	}
}

func (c *fileCache) removeLocked(e *list.Element) {
	v := e.Value.(*cached)
	c.lru.Remove(e)
	delete(c.byKey, v.key)
	c.bytes -= v.size
	os.Remove(c.path(v.key))
}

// stats returns the number of files and bytes cached.
func (c *fileCache) stats() (files int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.bytes
}
