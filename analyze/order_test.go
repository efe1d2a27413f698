package analyze_test

import (
	"strings"
	"testing"

	"github.com/layerslim/layerslim/analyze"
	"github.com/layerslim/layerslim/internal/testenv"
)

// A source layer whose whiteouts come after entries of their directory
// gets a note naming the first of them; a layer in order gets none.
func TestLateWhiteoutsNoted(t *testing.T) {
	img := imageOfTars(t,
		testenv.TarLayer(t, []testenv.File{testenv.Dir("a"), file("a/old", 3), file("gone", 1)}),
		testenv.TarLayer(t, []testenv.File{testenv.Dir("a"), file("a/y", 1), testenv.Opaque("a"), file("a/x", 1), testenv.Whiteout("gone")}),
		testenv.TarLayer(t, []testenv.File{testenv.Whiteout("a/x"), testenv.Dir("b"), file("b/c", 1)}),
	)
	rep := analyzeImage(t, img, analyze.Options{})
	l2, l3 := rep.Layers[1], rep.Layers[2]
	if l2.LateWhiteouts != 2 || len(l2.Notes) != 1 || !strings.Contains(l2.Notes[0], "a/.wh..wh..opq (entry 3) (and 1 more)") {
		t.Errorf("layer 2: %d late whiteouts, notes %q", l2.LateWhiteouts, l2.Notes)
	}
	if l3.LateWhiteouts != 0 || l3.Notes != nil {
		t.Errorf("layer 3: %d late whiteouts, notes %q", l3.LateWhiteouts, l3.Notes)
	}
}
