package rewrite

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/layerslim/layerslim/elf"
)

// buildIDDir is where debug files named by build-id live.
const buildIDDir = DebugDir + "/.build-id/"

// consolidateDebug makes one debug file of each build-id, after every
// layer is processed. Copies of one program (a binary and a copy already
// stripped of DWARF, the same file in two layers) share a build-id and so
// a debug file name; the debug image ships the richest of their debug
// files (see richest), and every stripped copy's .gnu_debuglink must carry
// that file's CRC. The layers holding a copy whose CRC differs are
// processed again with the chosen CRCs (WithDebugImage only: the layer
// cache is not used then). The choice depends on the copies alone, never
// on the order layers finish in, so the output is the same for any
// --jobs.
func (r *run) consolidateDebug(ctx context.Context) error {
	r.chosen = nil
	if r.o.strip == elf.None || !r.o.debugImage {
		return nil
	}
	tasks := append(append([]*layerTask(nil), r.order...), r.squashes...)
	chosen, _ := chooseDebug(tasks)
	links := map[string]uint32{}
	var redo []*layerTask
	for _, t := range tasks {
		need := false
		for _, d := range t.out.debug {
			if c, ok := chosen[d.Name]; ok && !d.Moved && d.CRC != c.CRC {
				need = true
			}
		}
		if need {
			redo = append(redo, t)
		}
	}
	for n, c := range chosen {
		links[n] = c.CRC
	}
	if len(redo) > 0 {
		o := *r.o
		o.debugLinks = links
		o.reporter = nopReporter{}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(r.o.jobs)
		for _, t := range redo {
			g.Go(func() error {
				var out layerOut
				var err error
				to := t.options(&o)
				if t.squash != nil {
					out, err = processSquash(gctx, t.squash, to, t.platform)
				} else {
					out, err = processLayer(gctx, t.in, to, t.platform, nil)
				}
				if err != nil {
					return fmt.Errorf("layer %s: linking stripped copies to the richest debug file: %w", t.in.Desc.Digest, err)
				}
				closeDebug(t.out.debug)
				if t.spool != nil {
					if err := os.Remove(t.spool.path); err != nil && !errors.Is(err, os.ErrNotExist) {
						return err
					}
				}
				t.out = out
				t.spool, _ = out.layer.(*spooledLayer)
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
	r.chosen, r.debugConflicts = chooseDebug(tasks)
	return nil
}

// chooseDebug picks, for every build-id debug file name, the copy the
// debug image ships, and describes the names whose copies are not
// ordered by inclusion.
func chooseDebug(tasks []*layerTask) (map[string]DebugFile, map[string]string) {
	groups := map[string][]DebugFile{}
	for _, t := range tasks {
		for _, d := range t.out.debug {
			if strings.HasPrefix(d.Name, buildIDDir) {
				groups[d.Name] = append(groups[d.Name], d)
			}
		}
	}
	chosen := map[string]DebugFile{}
	conflicts := map[string]string{}
	for n, ds := range groups {
		c, conflict := richest(ds)
		chosen[n] = c
		if conflict != "" {
			conflicts[n] = conflict
		}
	}
	return chosen, conflicts
}

// richest is the debug file, of several with one build-id, that holds
// every section any of them holds. When the copies hold sections none of
// the others has (no copy includes all), the one with the most sections
// wins, then the largest; remaining ties go to the lowest CRC, then the
// first source path in byte order, so the choice never depends on the
// order copies were found. conflict describes such a choice ("" when one
// copy includes all).
func richest(ds []DebugFile) (best DebugFile, conflict string) {
	all := map[string]bool{}
	for _, d := range ds {
		for _, s := range d.Sections {
			all[s] = true
		}
	}
	cands := slices.Clone(ds)
	slices.SortFunc(cands, func(a, b DebugFile) int {
		return cmp.Or(
			cmp.Compare(len(b.Sections), len(a.Sections)),
			cmp.Compare(b.Size(), a.Size()),
			cmp.Compare(a.CRC, b.CRC),
			cmp.Compare(a.Source, b.Source),
		)
	})
	best = cands[0]
	if len(best.Sections) == len(all) {
		return best, ""
	}
	var missing []string
	for s := range all {
		if !slices.Contains(best.Sections, s) {
			missing = append(missing, s)
		}
	}
	sort.Strings(missing)
	return best, fmt.Sprintf("copies of this build-id hold different debug sections; shipped the debug file of %s (most sections, then largest), which lacks %s", best.Source, strings.Join(missing, ", "))
}

// debugFiles are the files of the debug layer of image p, by name: for a
// build-id name the copy consolidateDebug chose, for a path name the last
// one in layer order (as its ELF file is the one the image shows).
func (r *run) debugFiles(p *imagePlan) (files []DebugFile, conflicts []string) {
	byName := map[string]DebugFile{}
	add := func(t *layerTask) {
		for _, d := range t.out.debug {
			if c, ok := r.chosen[d.Name]; ok {
				d = c
			}
			byName[d.Name] = d
		}
	}
	for _, t := range p.layers {
		if t != nil {
			add(t)
		}
	}
	if p.squash != nil {
		add(p.squash)
	}
	for n, d := range byName {
		files = append(files, d)
		if c := r.debugConflicts[n]; c != "" {
			conflicts = append(conflicts, n+": "+c)
		}
	}
	slices.SortFunc(files, func(a, b DebugFile) int { return strings.Compare(a.Name, b.Name) })
	sort.Strings(conflicts)
	return files, conflicts
}

// allSameAsSlim reports whether no image of irs has a debug layer.
func allSameAsSlim(irs []ImageReport) bool {
	for _, ir := range irs {
		if ir.Debug != nil && !ir.Debug.SameAsSlim {
			return false
		}
	}
	return true
}

// debugHistory is the history entry of a debug layer holding files.
func debugHistory(files []DebugFile) string {
	for _, f := range files {
		if !strings.HasPrefix(f.Name, DebugDir+"/") {
			return fmt.Sprintf("layerslim: %d debug files (separate debug files at their own paths)", len(files))
		}
	}
	return fmt.Sprintf("layerslim: %d debug files under /%s", len(files), DebugDir)
}
