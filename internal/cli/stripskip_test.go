package cli_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// --strip-skip leaves the ELF files it matches as they are, and the summary
// counts them; a bad glob is a usage error.
func TestStripSkip(t *testing.T) {
	src := "oci:" + sample + ":sample"
	dst := "oci:" + filepath.Join(t.TempDir(), "out") + ":x"
	_, stderr, code := run(t, "rewrite", src, dst, "--strip-skip", "a/../b")
	if code != 2 || !strings.Contains(stderr, "--strip-skip") {
		t.Errorf("bad glob: exit %d, want 2\n%s", code, stderr)
	}
	_, stderr, code = run(t, "rewrite", src, dst, "--strip-skip", "**", "--progress", "none")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, "stripped") || !strings.Contains(stderr, "keep their debug sections") || !strings.Contains(stderr, "nothing split") {
		t.Errorf("summary:\n%s", stderr)
	}
}
