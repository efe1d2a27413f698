package cli_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// The library's options errors (run.OptionsError) are usage errors of the
// command line: exit status 2, and nothing written.
func TestRunOptionsErrorIsUsage(t *testing.T) {
	out := filepath.Join(t.TempDir(), "a.tar")
	stdout, stderr, code := run(t, "rewrite", "oci:"+sample+":sample", "docker-archive:"+out, "--progress", "none")
	want := "a docker-archive holds one image but SRC is an index of linux/amd64, linux/arm64/v8; select one with --platform"
	if code != 2 || stdout != "" || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stdout %q, stderr %q; want 2 and %q", code, stdout, stderr, want)
	}
}
