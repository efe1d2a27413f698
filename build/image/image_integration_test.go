//go:build integration

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/layerslim/layerslim/build/internal/buildenv"
	"github.com/layerslim/layerslim/internal/testenv"
)

func buildImage(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run(t.Context(), args, &out, &errb); err != nil {
		t.Fatalf("build/image %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// The image builds reproducibly, containerd pulls it from the real registry
// and runs it, and it rewrites an OCI layout in a mounted host directory as
// its non-root user.
func TestImage(t *testing.T) {
	reg := testenv.Registry(t)
	sock, ns := testenv.Containerd(t)
	testenv.Tool(t, "ctr")

	// Two builds, one digest.
	dir := t.TempDir()
	d1 := buildImage(t, "oci:"+filepath.Join(dir, "a")+":layerslim")
	d2 := buildImage(t, "oci:"+filepath.Join(dir, "b")+":layerslim")
	if d1 != d2 {
		t.Fatalf("two builds give %s and %s", d1, d2)
	}
	checkLayout(t, filepath.Join(dir, "a"))

	ref := fmt.Sprintf("%s/layerslim/image-test:%d", reg, time.Now().UnixNano())
	if d := buildImage(t, ref); d != d1 {
		t.Errorf("pushed index %s, the layout's is %s", d, d1)
	}

	testenv.CtrPull(t, sock, ns, ref, true)
	out := ctrRun(t, sock, ns, ref, nil, "version")
	commit, err := buildenv.Output(t.Context(), "", "git", "rev-parse", "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"layerslim ", "commit:      " + commit, "go:          go1.", "platform:    linux/" + runtime.GOARCH} {
		if !strings.Contains(out, want) {
			t.Errorf("version in the container lacks %q:\n%s", want, out)
		}
	}

	// A host directory, owned by the image's user, with a layout to rewrite.
	work := t.TempDir()
	if err := os.Chmod(work, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(testenv.CopyDir(t, "../../testdata/sample"), filepath.Join(work, "in")); err != nil {
		t.Fatal(err)
	}
	if err := filepath.Walk(work, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	}); err != nil {
		t.Fatal(err)
	}
	mount := "type=bind,src=" + work + ",dst=/work,options=rbind:rw"
	ctrRun(t, sock, ns, ref, []string{"--mount", mount},
		"rewrite", "oci:/work/in:sample", "oci:/work/out:slim", "--platform", "linux/"+runtime.GOARCH, "--progress", "plain")
	fi, err := os.Stat(filepath.Join(work, "out", "index.json"))
	if err != nil {
		t.Fatalf("the container wrote no layout: %v", err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid {
		t.Errorf("index.json is owned by %d, want the image's user %d", st.Uid, uid)
	}
	p, err := layout.FromPath(filepath.Join(work, "out"))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, d := range im.Manifests {
		tags = append(tags, d.Annotations["org.opencontainers.image.ref.name"])
	}
	if strings.Join(tags, ",") != "slim-debug,slim" && strings.Join(tags, ",") != "slim,slim-debug" {
		t.Errorf("the layout holds %v, want slim and slim-debug", tags)
	}
}

func checkLayout(t *testing.T, dir string) {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	idx, err := top.ImageIndex(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("validate.Index: %v", err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var plats []string
	for _, d := range m.Manifests {
		plats = append(plats, d.Platform.String())
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Config.User != "65532:65532" || cf.Config.Entrypoint[0] != "/usr/local/bin/layerslim" ||
			cf.Config.Labels["org.opencontainers.image.revision"] == "" || cf.Config.Labels["org.opencontainers.image.source"] == "" {
			t.Errorf("%s: config %+v", d.Platform, cf.Config)
		}
		if cf.Architecture != d.Platform.Architecture {
			t.Errorf("%s: config says %s", d.Platform, cf.Architecture)
		}
	}
	if strings.Join(plats, " ") != "linux/amd64 linux/arm64" {
		t.Errorf("platforms %v, want linux/amd64 and linux/arm64", plats)
	}
	if m.Annotations["org.opencontainers.image.version"] == "" {
		t.Errorf("index annotations %v", m.Annotations)
	}
}

// ctrRun runs the pulled image with ctr, extra run flags first, and args as
// the command after the entrypoint.
func ctrRun(t *testing.T, sock, ns, ref string, flags []string, args ...string) string {
	t.Helper()
	id := fmt.Sprintf("layerslim-image-%d-%d", os.Getpid(), time.Now().UnixNano())
	cmdline := []string{"--address", sock, "--namespace", ns, "run", "--rm"}
	if s := testenv.ContainerdSnapshotter(); s != "" {
		cmdline = append(cmdline, "--snapshotter", s)
	}
	cmdline = append(cmdline, flags...)
	cmdline = append(cmdline, ref, id, "/usr/local/bin/layerslim")
	cmdline = append(cmdline, args...)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ctr", cmdline...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		_ = exec.Command("ctr", "--address", sock, "--namespace", ns, "tasks", "kill", "--signal", "SIGKILL", id).Run()
		_ = exec.Command("ctr", "--address", sock, "--namespace", ns, "containers", "delete", id).Run()
		t.Fatalf("ctr run %s: %v\nstderr:\n%s\nstdout:\n%s", strings.Join(args, " "), err, errb.String(), out.String())
	}
	return out.String()
}
