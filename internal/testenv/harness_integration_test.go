//go:build integration

package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestHarnessRegistry pushes a two-platform gzip index to the real registry,
// reads it back with skopeo and ggcr, and finds its blobs in the storage dir.
func TestHarnessRegistry(t *testing.T) {
	regDir := RegistryDir(t)
	amd := GzipImage(t, linuxAmd64,
		RealContentLayer(t, "/usr/share/common-licenses", "", 1<<20),
		TarLayer(t, []File{Reg("arch", "amd64\n")}))
	arm := GzipImage(t, linuxArm64,
		RealContentLayer(t, "/usr/share/common-licenses", "", 1<<20),
		TarLayer(t, []File{Reg("arch", "arm64\n")}))
	idx := MultiArchIndex(t, amd, arm)
	CheckIndexBlobs(t, idx)

	ref := Repo(t) + ":multi"
	pushed := PushIndex(t, idx, ref)
	wantDigest, _ := idx.Digest()
	if !strings.HasSuffix(pushed, "@"+wantDigest.String()) {
		t.Errorf("PushIndex returned %s, want ...@%s", pushed, wantDigest)
	}

	// skopeo sees the manifest list as we wrote it.
	raw := SkopeoInspect(t, "docker://"+ref)
	if raw["mediaType"] != string(types.DockerManifestList) {
		t.Errorf("skopeo: mediaType %v", raw["mediaType"])
	}
	var platforms []string
	for _, m := range raw["manifests"].([]any) {
		p := m.(map[string]any)["platform"].(map[string]any)
		s := p["os"].(string) + "/" + p["architecture"].(string)
		if v, ok := p["variant"].(string); ok {
			s += "/" + v
		}
		platforms = append(platforms, s)
	}
	if diff := cmp.Diff([]string{"linux/amd64", "linux/arm64/v8"}, platforms); diff != "" {
		t.Errorf("skopeo: platforms (-want +got):\n%s", diff)
	}
	cfg := SkopeoInspectConfig(t, "docker://"+ref)
	if cfg["architecture"] != runtime.GOARCH && runtime.GOARCH == "amd64" {
		t.Errorf("skopeo: config architecture %v", cfg["architecture"])
	}

	// ggcr reads it back byte for byte.
	got := RemoteIndex(t, ref)
	if d, _ := got.Digest(); d != wantDigest {
		t.Errorf("registry digest %s, want %s", d, wantDigest)
	}
	CheckIndexBlobs(t, got)

	// The blobs sit in the registry's storage.
	ls, _ := arm.Layers()
	d, _ := ls[1].Digest()
	data := filepath.Join(regDir, "docker/registry/v2/blobs", d.Algorithm, d.Hex[:2], d.Hex, "data")
	if _, err := os.Stat(data); err != nil {
		t.Errorf("layer blob not in the registry storage: %v", err)
	}

	// skopeo copies it to an OCI layout with every platform. (It has to convert
	// the Docker manifest list to an OCI index there, so --preserve-digests fails.)
	layout := t.TempDir()
	SkopeoCopy(t, "docker://"+ref, "oci:"+layout+":multi", "--all")
	if raw := SkopeoInspect(t, "oci:"+layout+":multi"); len(raw["manifests"].([]any)) != 2 {
		t.Errorf("oci layout copy: %v", raw)
	}
}

// TestHarnessContainerdRun pushes RunnableImage and runs it in containerd,
// as gzip (Docker) and as zstd (OCI), the form layerslim writes.
func TestHarnessContainerdRun(t *testing.T) {
	sock, ns := Containerd(t)
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("no runnable image for %s", runtime.GOARCH)
	}
	for _, tc := range []struct {
		name string
		c    Compression
	}{{"gzip", Gzip}, {"zstd", Zstd}} {
		t.Run(tc.name, func(t *testing.T) {
			spec := RunnableImageSpec(t, runtime.GOARCH)
			spec.Compression = tc.c
			img := Image(t, spec)
			CheckImageBlobs(t, img)
			ref := Repo(t) + ":run"
			PushImage(t, img, ref)

			out := CtrPullAndRun(t, sock, ns, ref, true)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) == 0 || lines[0] != HelloOutput {
				t.Fatalf("output does not start with %q:\n%s", HelloOutput, out)
			}
			for _, want := range []string{"/app", "/usr", "/etc", "/tmp", "/var", "/proc"} {
				if !strings.Contains(out, want+"\n") {
					t.Errorf("listing of / lacks %s:\n%s", want, out)
				}
			}
			// ctr run: arguments replace the whole command line.
			if out := CtrRun(t, sock, ns, ref, "/app", "one", "two"); !strings.Contains(out, "args: [one two]") {
				t.Errorf("with args:\n%s", out)
			}
		})
	}
}
