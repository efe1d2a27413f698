//go:build integration

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The SBOM names layerslim at its version and the modules built into the
// binary, with their hashes, and is the same on a second run.
func TestReleaseSBOM(t *testing.T) {
	args := []string{"-targets", "linux/arm64", "-version", "9.8.7"}
	d1, s1 := release(t, args...)
	_, s2 := release(t, args...)
	if s1 != s2 {
		t.Fatalf("two builds differ:\n%s\n%s", s1, s2)
	}
	if !strings.Contains(s1, "  layerslim_9.8.7_linux_arm64.cdx.json\n") {
		t.Errorf("SHA256SUMS lists no SBOM:\n%s", s1)
	}
	b, err := os.ReadFile(filepath.Join(d1, "layerslim_9.8.7_linux_arm64.cdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	var bom struct {
		BOMFormat string
		Metadata  struct {
			Component struct{ Name, Version string }
		}
		Components []struct {
			Name, Version string
			Hashes        []struct{ Alg, Content string }
		}
	}
	if err := json.Unmarshal(b, &bom); err != nil {
		t.Fatal(err)
	}
	if bom.BOMFormat != "CycloneDX" || bom.Metadata.Component.Name != "github.com/layerslim/layerslim" || bom.Metadata.Component.Version != "v9.8.7" {
		t.Errorf("SBOM metadata: %+v", bom.Metadata)
	}
	found := false
	for _, c := range bom.Components {
		if c.Name == "github.com/google/go-containerregistry" && len(c.Hashes) > 0 {
			found = true
		}
	}
	if !found {
		t.Errorf("SBOM lists no go-containerregistry with a hash: %s", b)
	}
}
