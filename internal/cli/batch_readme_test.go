package cli_test

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/layerslim/layerslim/internal/batch"
)

// The YAML examples of the README's batch section parse: the plan as a
// plan, the Kubernetes Job and the CI workflow as YAML.
func TestREADMEBatchExamplesParse(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "### `layerslim batch PLAN`")
	if !ok {
		t.Fatal("README.md has no batch section")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	blocks := strings.Split(sec, "```yaml\n")[1:]
	if len(blocks) < 3 {
		t.Fatalf("%d YAML examples in the batch section, want the plan, a Job and a workflow", len(blocks))
	}
	for i, blk := range blocks {
		blk, _, _ = strings.Cut(blk, "```")
		if i == 0 {
			p, err := batch.Parse(strings.NewReader(blk), "README plan")
			if err != nil || len(p.Images) != 2 {
				t.Errorf("the README's plan: %v", err)
			}
			continue
		}
		var v any
		if err := yaml.Unmarshal([]byte(blk), &v); err != nil {
			t.Errorf("README batch example %d: %v\n%s", i, err, blk)
		}
	}
}
