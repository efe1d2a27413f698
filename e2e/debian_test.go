//go:build integration

// Package e2e holds end-to-end tests on realistic images: a Debian root
// filesystem from debootstrap, layers that install packages without
// cleaning up and then delete and overwrite files, rewritten by layerslim,
// unpacked by independent tools and run by containerd.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/internal/cli"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/rewrite"
)

// debianRootfs builds (or takes from $LAYERSLIM_E2E_CACHE) a minbase
// bookworm root filesystem and returns its directory.
func debianRootfs(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"debootstrap", "chroot", "mount"} {
		testenv.Tool(t, tool)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for debootstrap, chroot and overlay mounts")
	}
	if cache := os.Getenv("LAYERSLIM_E2E_CACHE"); cache != "" {
		dir := filepath.Join(cache, "rootfs")
		if _, err := os.Stat(filepath.Join(dir, "etc/debian_version")); err == nil {
			return dir
		}
		os.MkdirAll(cache, 0o755)
		debootstrap(t, dir)
		return dir
	}
	dir := filepath.Join(t.TempDir(), "rootfs")
	debootstrap(t, dir)
	return dir
}

func debootstrap(t *testing.T, dir string) {
	t.Helper()
	start := time.Now()
	sh(t, fmt.Sprintf("debootstrap --variant=minbase bookworm %s %s >/dev/null", dir, debianMirror(t)))
	t.Logf("debootstrap took %s", time.Since(start).Round(time.Second))
}

// overlayLayer runs script in a chroot of lower (directories, top first)
// through overlayfs and returns the upper directory: the layer's changes.
func overlayLayer(t *testing.T, lower []string, script string) string {
	t.Helper()
	base := t.TempDir()
	up, work, merged := filepath.Join(base, "up"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{up, work, merged} {
		os.MkdirAll(d, 0o755)
	}
	sh(t, fmt.Sprintf("mount -t overlay overlay -o lowerdir=%s,upperdir=%s,workdir=%s %s", strings.Join(lower, ":"), up, work, merged))
	defer sh(t, "umount "+merged)
	sh(t, "mount -t proc proc "+merged+"/proc")
	defer sh(t, "umount "+merged+"/proc")
	out, err := exec.Command("chroot", merged, "/bin/sh", "-ec", script).CombinedOutput()
	if err != nil {
		t.Fatalf("in the chroot: %s: %v\n%s", script, err, out)
	}
	return up
}

func run(t *testing.T, args ...string) (string, string) {
	t.Helper()
	cmd := cli.New()
	var out, errb bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("layerslim %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String()
}

func TestDebianRewrite(t *testing.T) {
	testenv.Registry(t)
	rootfs := debianRootfs(t)
	hello := testenv.HelloBinary(t, "amd64")

	// Layer 2: install packages the way a careless Dockerfile does.
	install := overlayLayer(t, []string{rootfs}, `
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends jq less >/dev/null
		mkdir -p /root/.cache/pip/http /tmp/build
		head -c 300000 /dev/urandom > /root/.cache/pip/http/blob
		echo "build log" > /tmp/build/log.txt
		echo "v1" > /etc/app.conf
	`)
	// Layer 3: the app, and a clean-up in the wrong layer: deletes and
	// overwrites what earlier layers wrote.
	fix := overlayLayer(t, []string{install, rootfs}, `
		rm -rf /usr/share/doc/jq /tmp/build
		echo "v2" > /etc/app.conf
		echo "welcome" > /etc/motd
		mkdir -p /usr/local/bin
	`)
	os.MkdirAll(filepath.Join(fix, "usr/local/bin"), 0o755)
	if err := os.WriteFile(filepath.Join(fix, "usr/local/bin/hello"), hello, 0o755); err != nil {
		t.Fatal(err)
	}

	baseTime := time.Date(2024, 1, 10, 0, 0, 0, 0, time.UTC)
	buildTime := baseTime.Add(40 * 24 * time.Hour)
	img := testenv.Image(t, testenv.ImageSpec{
		Platform: testenv.Platform(t, "linux/amd64"),
		Layers:   [][]byte{tarDir(t, rootfs, false), tarDir(t, install, true), tarDir(t, fix, true)},
		Config:   &v1.Config{Entrypoint: []string{"/usr/local/bin/hello"}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
		History: []v1.History{
			{Created: v1.Time{Time: baseTime}, CreatedBy: "/bin/sh -c #(nop) ADD file:bookworm-rootfs.tar in /"},
			{Created: v1.Time{Time: buildTime}, CreatedBy: "RUN apt-get update && apt-get install -y jq less", Comment: "buildkit.dockerfile.v0"},
			{Created: v1.Time{Time: buildTime.Add(time.Minute)}, CreatedBy: "RUN rm -rf /usr/share/doc/jq /tmp/build && COPY hello /usr/local/bin/", Comment: "buildkit.dockerfile.v0"},
		},
	})
	src := testenv.Repo(t) + ":fat"
	testenv.PushImage(t, img, src)
	dst := strings.TrimSuffix(src, ":fat") + ":slim"
	report := filepath.Join(t.TempDir(), "report.json")
	_, stderr := run(t, "rewrite", src, dst, "--report", report, "--progress", "none", "--verify")
	t.Logf("rewrite:\n%s", stderr)

	var rep struct{ Report rewrite.Report }
	b, _ := os.ReadFile(report)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	ir := rep.Report.Images[0]
	if ir.Base == nil || ir.Base.Layers != 1 {
		t.Fatalf("base = %+v, want the debootstrap layer", ir.Base)
	}
	if len(ir.Layers) != 2 || ir.Layers[1].Action != rewrite.Squashed {
		t.Fatalf("layers: %+v", ir.Layers)
	}
	allowed := map[string]rewrite.ChangeAction{} // path → why it may differ
	for _, l := range ir.Layers {
		for _, c := range l.Changes {
			allowed[strings.TrimPrefix(c.Path, "./")] = c.Action
		}
	}

	// Unpack source and slim image with umoci (gzip OCI layouts: skopeo
	// converts the zstd output) and compare the trees.
	work := t.TempDir()
	unpack := func(ref, name string, extra ...string) map[string]entry {
		layout := filepath.Join(work, name+"-oci")
		testenv.SkopeoCopy(t, "docker://"+ref, "oci:"+layout+":x", extra...)
		bundle := filepath.Join(work, name+"-bundle")
		sh(t, fmt.Sprintf("umoci unpack --image %s:x %s >/dev/null", layout, bundle))
		return readTree(t, filepath.Join(bundle, "rootfs"))
	}
	before := unpack(src, "src")
	after := unpack(dst, "slim", "--dest-compress-format", "gzip")
	dropped, stripped := 0, 0
	for p, e := range before {
		a, ok := after[p]
		why := allowed[p]
		switch {
		case !ok && why == "dropped":
			dropped++
		case !ok && why == rewrite.ActionMovedDebug:
		case !ok:
			t.Errorf("%s is missing from the slim image", p)
		case a != e && why == "stripped" && a.Content != e.Content:
			a.Content, a.Size = e.Content, e.Size
			if a != e {
				t.Errorf("stripped %s changed metadata: %+v → %+v", p, e, a)
			}
			stripped++
		case a != e:
			t.Errorf("%s differs: %+v → %+v", p, e, a)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s appeared in the slim image", p)
		}
	}
	if dropped == 0 || stripped == 0 {
		t.Errorf("%d paths dropped, %d ELF files stripped; want some of each", dropped, stripped)
	}
	for _, p := range []string{"var/lib/apt/lists", "usr/share/doc"} {
		if _, ok := after[p]; !ok {
			t.Errorf("directory %s is gone; directories must stay", p)
		}
	}
	if _, ok := after["var/lib/dpkg/status"]; !ok {
		t.Error("dpkg's status was dropped")
	}
	t.Logf("%d paths compared, %d dropped, %d ELF files stripped", len(before), dropped, stripped)

	// The slim image still works in a real runtime.
	sock, ns := testenv.Containerd(t)
	testenv.CtrPull(t, sock, ns, dst, true)
	if out := testenv.CtrRun(t, sock, ns, dst, "/bin/ls", "/usr/bin/jq"); !strings.Contains(out, "/usr/bin/jq") {
		t.Errorf("ls: %q", out)
	}
	if out := testenv.CtrRun(t, sock, ns, dst, "dpkg", "-l", "jq", "less"); !strings.Contains(out, "ii  jq") || !strings.Contains(out, "ii  less") {
		t.Errorf("dpkg -l:\n%s", out)
	}
	if out := testenv.CtrRun(t, sock, ns, dst, "/usr/local/bin/hello"); !strings.Contains(out, "hello") {
		t.Errorf("the image's own program printed %q", out)
	}
	if out := testenv.CtrRun(t, sock, ns, dst, "/bin/sh", "-c", `echo '{"a":1}' | jq .a`); strings.TrimSpace(out) != "1" {
		t.Errorf("jq in the slim image printed %q", out)
	}
}
