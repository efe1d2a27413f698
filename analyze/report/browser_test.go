package report_test

import (
	"context"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/layerslim/layerslim/analyze/report"
	"github.com/layerslim/layerslim/internal/testenv"
)

// chromium runs headless Chromium on the page with args, and returns stdout.
func chromium(t *testing.T, page string, args ...string) string {
	t.Helper()
	bin := testenv.Tool(t, "chromium")
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	all := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--no-first-run", "--user-data-dir=" + t.TempDir()}, args...)
	cmd := exec.CommandContext(ctx, bin, append(all, page)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// The HTML report of the two-platform sample, in a real browser: the script
// runs without errors, sorting and hovering work, and the screenshot shows
// the treemap in the colours of each kind of waste.
func TestHTMLInChromium(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, []byte(render(t, report.HTML, sample(t, true))), 0o644); err != nil {
		t.Fatal(err)
	}
	url := "file://" + file

	dom := chromium(t, url+"#selftest", "--dump-dom")
	if !strings.Contains(dom, `data-ready="1"`) {
		t.Errorf("the page's script did not finish:\n%.600s", dom)
	}
	if i := strings.Index(dom, "data-errors="); i >= 0 {
		t.Errorf("script errors: %.300s", dom[i:])
	}
	if !strings.Contains(dom, `data-selftest="sorted=true tip=true"`) {
		i := strings.Index(dom, "<html")
		t.Errorf("sorting or hover details do not work: %.200s", dom[i:])
	}

	shot := filepath.Join(dir, "shot.png")
	chromium(t, url, "--window-size=1280,900", "--screenshot="+shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// The sample has kept bytes, debug sections, drops and shadowed files:
	// each colour covers a visible area of the picture.
	want := map[string]color.RGBA{
		"kept":     {0x8d, 0x99, 0xae, 0xff},
		"debug":    {0xd1, 0x49, 0x5b, 0xff},
		"drop":     {0x2f, 0x7e, 0xd8, 0xff},
		"shadowed": {0xed, 0xae, 0x49, 0xff},
	}
	count := map[string]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			for k, c := range want {
				if near(img.At(x, y), c) {
					count[k]++
				}
			}
		}
	}
	t.Logf("pixels per colour: %v", count)
	for k := range want {
		if count[k] < 50 {
			t.Errorf("the screenshot shows %d pixels of %s, want a visible area", count[k], k)
		}
	}
	if t.Failed() {
		keep := filepath.Join(os.TempDir(), "layerslim-report-shot.png")
		if b, err := os.ReadFile(shot); err == nil && os.WriteFile(keep, b, 0o644) == nil {
			t.Logf("screenshot kept in %s", keep)
		}
	}
}

func near(c color.Color, want color.RGBA) bool {
	r, g, b, _ := c.RGBA()
	d := func(a uint32, w uint8) int { return abs(int(a>>8) - int(w)) }
	return d(r, want.R)+d(g, want.G)+d(b, want.B) <= 12
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
