// Package ctxtime waits the way every loop of layerslim that polls or
// backs off waits: for a duration, or until the context is done, whichever
// comes first.
package ctxtime

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx is done; then it returns ctx.Err(). A d of
// zero or less returns at once (with ctx.Err()).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
