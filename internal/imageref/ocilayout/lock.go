package ocilayout

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/layerslim/layerslim/internal/ctxtime"
)

// Writers of one OCI layout, in this process or in others, take turns to
// read, change and replace index.json: each holds an advisory lock on the
// file DIR/index.json.lock (flock, where the system has it) for the whole
// read-modify-write, and for the creation of a new layout. Blobs need no
// lock: each is written to a temporary file and linked to its name, which
// never replaces a file. Readers need none either: index.json is replaced
// by a rename, so a reader sees the old file or the new one.
//
// The lock file stays in the layout after the write: removing it would let
// a third writer lock a new file while a second holds the old one.
const lockFile = "index.json.lock"

// lockPoll is how often a writer waiting for the lock tries again; waiting
// by polling lets the wait end when ctx does (SIGINT, SIGTERM).
const lockPoll = 20 * time.Millisecond

// layoutMutexes serialises the writers of one process, by directory, before
// they reach the file lock: a file system without flock still sees one
// writer at a time from this process.
var layoutMutexes sync.Map // cleaned absolute dir → *sync.Mutex

// lockLayout waits until this writer holds dir's lock, or ctx is done, and
// returns the function that releases it.
func lockLayout(ctx context.Context, dir string) (unlock func(), err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	mv, _ := layoutMutexes.LoadOrStore(filepath.Clean(abs), &sync.Mutex{})
	mu := mv.(*sync.Mutex)
	if err := lockMutex(ctx, mu); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		mu.Unlock()
		return nil, fmt.Errorf("locking the layout: %w", err)
	}
	for {
		held, err := tryLockFile(f)
		if err != nil {
			f.Close()
			mu.Unlock()
			return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
		}
		if held {
			break
		}
		if err := ctxtime.Sleep(ctx, lockPoll); err != nil {
			f.Close()
			mu.Unlock()
			return nil, err
		}
	}
	return func() {
		unlockFile(f)
		f.Close()
		mu.Unlock()
	}, nil
}

// lockMutex locks mu, giving up when ctx is done.
func lockMutex(ctx context.Context, mu *sync.Mutex) error {
	for !mu.TryLock() {
		if err := ctxtime.Sleep(ctx, lockPoll); err != nil {
			return err
		}
	}
	return nil
}
