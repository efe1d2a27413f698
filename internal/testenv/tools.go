package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// ToolTimeout bounds each ctr and skopeo command.
var ToolTimeout = 5 * time.Minute

// Tool returns the path of an external command, skipping t (failing it in
// CI) when it is not installed.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		unavailable(t, "%s is not installed (.ci/run installs it)", name)
	}
	return p
}

// run runs name with args and returns its stdout; it fails t with the
// command line and stderr when the command fails.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, stderr, err := runErr(t, t.Context(), name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstderr:\n%s\nstdout:\n%s", name, strings.Join(args, " "), err, stderr, out)
	}
	return out
}

func runErr(t testing.TB, parent context.Context, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	path := Tool(t, name)
	ctx, cancel := context.WithTimeout(parent, ToolTimeout)
	defer cancel()
	var outBuf, errBuf bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	cmd.WaitDelay = 10 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("%w (after %v)", err, ToolTimeout)
	}
	return outBuf.String(), errBuf.String(), err
}

func ctrArgs(sock, ns string, args ...string) []string {
	return append([]string{"--address", sock, "--namespace", ns}, args...)
}

// CtrPull pulls ref into containerd with ctr for this machine's platform
// (plain HTTP when asked), which unpacks it into the snapshotter, then checks
// with `ctr images check` that the content is complete and unpacked. The
// image is removed again when the test ends.
func CtrPull(t testing.TB, sock, ns, ref string, plainHTTP bool) {
	t.Helper()
	args := []string{"images", "pull"}
	if plainHTTP {
		args = append(args, "--plain-http")
	}
	if s := ContainerdSnapshotter(); s != "" {
		args = append(args, "--snapshotter", s)
	}
	args = append(args, ref)
	t.Cleanup(func() {
		// Best effort; the services' stop removes everything anyway.
		_, _, _ = runErr(t, context.Background(), "ctr", ctrArgs(sock, ns, "images", "rm", ref)...)
	})
	run(t, "ctr", ctrArgs(sock, ns, args...)...)

	checkArgs := []string{"images", "check"}
	if s := ContainerdSnapshotter(); s != "" {
		checkArgs = append(checkArgs, "--snapshotter", s)
	}
	checkArgs = append(checkArgs, "name=="+ref)
	out := run(t, "ctr", ctrArgs(sock, ns, checkArgs...)...)
	// REF TYPE DIGEST STATUS SIZE UNPACKED
	var line string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == ref {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("ctr images check: %s not listed:\n%s", ref, out)
	}
	f := strings.Fields(line)
	if !strings.Contains(line, "complete") || f[len(f)-1] != "true" {
		t.Fatalf("ctr images check: %s is not complete and unpacked:\n%s", ref, out)
	}
}

var ctrIDs atomic.Int64

var unsafeID = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// CtrRun runs a container of the pulled image ref, waits for it, removes it,
// and returns its stdout. args, when given, replace the whole command line,
// entrypoint included, as with `ctr run`. It fails t with ctr's stderr when
// the container does not run or exits non-zero.
func CtrRun(t testing.TB, sock, ns, ref string, args ...string) string {
	t.Helper()
	name := unsafeID.ReplaceAllString(t.Name(), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	id := fmt.Sprintf("%s-%d-%d", name, os.Getpid(), ctrIDs.Add(1))
	cmd := []string{"run", "--rm"}
	if s := ContainerdSnapshotter(); s != "" {
		cmd = append(cmd, "--snapshotter", s)
	}
	cmd = append(cmd, ref, id)
	cmd = append(cmd, args...)
	out, stderr, err := runErr(t, t.Context(), "ctr", ctrArgs(sock, ns, cmd...)...)
	if err != nil {
		// Leave nothing behind for the next test.
		_, _, _ = runErr(t, context.Background(), "ctr", ctrArgs(sock, ns, "tasks", "kill", "--signal", "SIGKILL", id)...)
		_, _, _ = runErr(t, context.Background(), "ctr", ctrArgs(sock, ns, "tasks", "delete", "--force", id)...)
		_, _, _ = runErr(t, context.Background(), "ctr", ctrArgs(sock, ns, "containers", "delete", id)...)
		t.Fatalf("ctr run %s %s: %v\nstderr:\n%s\nstdout:\n%s", ref, id, err, stderr, out)
	}
	return out
}

// CtrPullAndRun is CtrPull then CtrRun with the image's own entrypoint and cmd.
func CtrPullAndRun(t testing.TB, sock, ns, ref string, plainHTTP bool) (stdout string) {
	t.Helper()
	CtrPull(t, sock, ns, ref, plainHTTP)
	return CtrRun(t, sock, ns, ref)
}

// tlsArgs turns off TLS verification for docker:// references, which in our
// tests name the plain-HTTP loopback registry.
func tlsArgs(flag, ref string) []string {
	if strings.HasPrefix(ref, "docker://") {
		return []string{flag + "=false"}
	}
	return nil
}

// SkopeoInspect returns the raw manifest (image manifest or index) of a
// skopeo transport reference ("docker://127.0.0.1:5000/app:1", "oci:DIR:TAG",
// "docker-archive:FILE"), parsed as JSON.
func SkopeoInspect(t testing.TB, transportRef string) map[string]any {
	t.Helper()
	return skopeoJSON(t, append(append([]string{"inspect", "--raw"}, tlsArgs("--tls-verify", transportRef)...), transportRef))
}

// SkopeoInspectConfig returns the raw config blob of an image reference,
// parsed as JSON (for an index, of the image for this machine's platform).
func SkopeoInspectConfig(t testing.TB, transportRef string) map[string]any {
	t.Helper()
	return skopeoJSON(t, append(append([]string{"inspect", "--config", "--raw"}, tlsArgs("--tls-verify", transportRef)...), transportRef))
}

func skopeoJSON(t testing.TB, args []string) map[string]any {
	t.Helper()
	out := run(t, "skopeo", args...)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("skopeo %s: parsing output: %v\n%s", strings.Join(args, " "), err, out)
	}
	return m
}

// SkopeoCopy copies src to dst with skopeo (any transports; TLS verification
// off for docker:// ones, no signature policy). extraArgs go before src, e.g.
// "--all" for every platform of an index, "--preserve-digests",
// "--dest-compress-format=zstd".
func SkopeoCopy(t testing.TB, src, dst string, extraArgs ...string) {
	t.Helper()
	args := []string{"--insecure-policy", "copy", "--quiet"}
	args = append(args, tlsArgs("--src-tls-verify", src)...)
	args = append(args, tlsArgs("--dest-tls-verify", dst)...)
	args = append(args, extraArgs...)
	args = append(args, src, dst)
	run(t, "skopeo", args...)
}
