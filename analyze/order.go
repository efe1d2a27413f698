package analyze

import (
	"fmt"

	"github.com/layerslim/layerslim/internal/whiteout"
)

// lateWhiteouts watches a source layer for whiteouts placed after entries
// under their directory (whiteout.OrderCheck).
type lateWhiteouts struct {
	check   whiteout.OrderCheck
	entries int    // entries seen
	n       int    // late whiteouts
	first   string // the first, as the layer names it
	at      int    // its entry number
}

func (l *lateWhiteouts) add(name string) {
	l.entries++
	if l.check.Add(whiteout.Clean(name)) {
		if l.n == 0 {
			l.first, l.at = name, l.entries
		}
		l.n++
	}
}

func (l *lateWhiteouts) note(rep *LayerReport) {
	if l.n == 0 {
		return
	}
	rep.LateWhiteouts = l.n
	more := ""
	if l.n > 1 {
		more = fmt.Sprintf(" (and %d more)", l.n-1)
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("whiteout %s (entry %d)%s comes after entries of its directory: appliers that work in tar order delete what the layer itself wrote; a rewrite writes whiteouts first", l.first, l.at, more))
}
