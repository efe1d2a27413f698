package cli

import (
	"path/filepath"
	"testing"
	"time"
)

func TestScratchShow(t *testing.T) {
	src := "oci:" + verifySample + ":sample"
	out := "oci:" + filepath.Join(t.TempDir(), "slim") + ":slim"
	st := time.Now()
	_, stderr, _ := runVerifyCmd(t, "rewrite", src, out, "--progress", "none")
	t.Logf("rewrite %v\n%s", time.Since(st), stderr)
	for _, j := range []string{"1", "2"} {
		st = time.Now()
		stdout, stderr, code := runVerifyCmd(t, "verify", src, out, "--show-allowed", "--jobs", j)
		t.Logf("verify jobs %s: %v exit %d\n%s%s", j, time.Since(st), code, stdout, stderr)
	}
	rc := "oci:" + filepath.Join(t.TempDir(), "rc") + ":x"
	runVerifyCmd(t, "recompress", src, rc, "--progress", "none")
	for i := 0; i < 3; i++ {
		st = time.Now()
		_, _, code := runVerifyCmd(t, "verify", src, rc)
		t.Logf("verify recompressed: %v exit %d", time.Since(st), code)
		st = time.Now()
		_, _, code = runVerifyCmd(t, "verify", src, src)
		t.Logf("verify itself: %v exit %d", time.Since(st), code)
	}
}
