// This file holds the schedule stage of Image and Index: running the
// planned layer tasks in an errgroup, the largest layers first and at
// most WithJobs at a time, the merges after the layers they wait for, the
// layer cache around each task, and the rounds that rewrite layers again
// (dropChainedLinks, in linkchain.go). It also owns the run's temporary
// files until a Result takes them.

package rewrite

import (
	"context"
	"fmt"
	"sort"

	"golang.org/x/sync/errgroup"
)

// process runs every distinct layer, the largest first, at most jobs at a
// time, then the layers dropChainedLinks rewrites again. The first failure
// cancels the rest.
func (r *run) process(ctx context.Context) error {
	if err := r.runTasks(ctx, r.order, r.squashes); err != nil {
		return err
	}
	return r.dropChainedLinks(ctx)
}

// runTasks runs layers and then merges, the largest layers first, at
// most jobs at a time. The first failure cancels the rest.
func (r *run) runTasks(ctx context.Context, layers, merges []*layerTask) error {
	todo := append([]*layerTask(nil), layers...)
	sort.SliceStable(todo, func(i, j int) bool { return todo[i].in.Desc.Size > todo[j].in.Desc.Size })
	// Merges go last: they wait for the layers below them, which must have
	// started by then whatever the job limit.
	todo = append(todo, merges...)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(r.o.jobs)
	for _, t := range todo {
		g.Go(func() error {
			defer close(t.done)
			where := "layer " + t.in.Desc.Digest.String()
			if t.platform != "" {
				where = t.platform + " " + where
			}
			var key string
			owned := false
			if r.o.useCache() {
				key = t.cacheKey(r.o)
				hit, own, err := r.lookup(ctx, t, key)
				if err != nil {
					return fmt.Errorf("%s: %w", where, err)
				}
				if hit {
					return nil
				}
				owned = own
			}
			var out layerOut
			var err error
			o := t.options(r.o)
			if t.squash != nil {
				out, err = processSquash(ctx, t.squash, o, t.platform)
			} else {
				if t.collect && r.o.filter != nil {
					t.paths = map[string]bool{}
				}
				out, err = processLayer(ctx, t.in, o, t.platform, t.paths)
			}
			if err != nil {
				if owned {
					r.o.cache.Abandon(key)
				}
				return fmt.Errorf("%s: %w", where, err)
			}
			t.out = out
			if out.report.Action != Reused { // a reused source is not ours to remove
				t.spool, _ = out.layer.(*spooledLayer)
			}
			if r.o.useCache() {
				if err := r.store(ctx, t, key, owned); err != nil {
					return fmt.Errorf("%s: %w", where, err)
				}
			}
			return nil
		})
	}
	return g.Wait()
}

func (r *run) spools() []*spooledLayer {
	out := append([]*spooledLayer(nil), r.extra...)
	for _, t := range append(r.order, r.squashes...) {
		if t.spool != nil {
			out = append(out, t.spool)
		}
	}
	return withVariants(out)
}

func (r *run) cleanup() { (&Result{spools: r.spools()}).Close(); r.closeDebug() }

// closeDebug removes the debug files' spools once the debug layers hold them.
func (r *run) closeDebug() {
	for _, t := range append(r.order, r.squashes...) {
		closeDebug(t.out.debug)
		t.out.debug = nil
	}
}
