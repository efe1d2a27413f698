package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/rewrite"
)

// A layer entry named from outside the root is written clean; the summary
// says how many were renamed and the report lists each, old and new name.
func TestRewriteReportsRenamedNames(t *testing.T) {
	b := testenv.TarLayer(t, []testenv.File{testenv.Reg("../../etc/app.conf", "x=1\n"), testenv.Reg("etc/ok", "1")})
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: v1.RootFS{Type: "layers", DiffIDs: mustDiffIDs(t, img)}})
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src")
	lp, err := layout.Write(src, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "x"})); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(t.TempDir(), "r.json")
	_, stderr, code := runVerifyCmd(t, "rewrite", "oci:"+src+":x", "oci:"+filepath.Join(t.TempDir(), "dst")+":x",
		"--progress", "none", "--report", report, "--verify")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "1 entries renamed") {
		t.Errorf("summary:\n%s", stderr)
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct{ Report rewrite.Report }
	if err := json.Unmarshal(raw, &rep); err != nil || len(rep.Report.Images) != 1 {
		t.Fatalf("report: %v\n%s", err, raw)
	}
	var renamed []string
	for _, l := range rep.Report.Images[0].Layers {
		for _, c := range l.Changes {
			if c.Action == "renamed" {
				renamed = append(renamed, c.Path+" > "+c.To)
			}
		}
	}
	if strings.Join(renamed, ",") != "../../etc/app.conf > etc/app.conf" {
		t.Errorf("renamed %q", renamed)
	}
}

func mustDiffIDs(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf.RootFS.DiffIDs
}
