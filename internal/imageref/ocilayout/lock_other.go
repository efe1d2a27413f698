//go:build !unix

package ocilayout

import "os"

// tryLockFile: without flock, only the in-process lock serialises writers.
func tryLockFile(*os.File) (bool, error) { return true, nil }

func unlockFile(*os.File) {}
