package cli_test

import (
	"os"
	"strings"
	"testing"

	"github.com/layerslim/layerslim/drop"
)

// The README prints the drop presets with their exact globs; it must not
// drift from the code.
func TestREADMEHasTheDropTable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), strings.TrimRight(drop.Table(), "\n")) {
		t.Error("README.md does not hold drop.Table() verbatim: paste the output of `layerslim rewrite --help` into it")
	}
}
