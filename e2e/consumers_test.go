//go:build integration

package e2e

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sys/unix"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/rewrite"
)

// The consumer matrix: each output kind layerslim writes (zstd, gzip, a dual
// gzip+zstd index; from a multi-arch index and from a single image; the
// debug image) is read by every consumer that runs here — a naive applier
// that applies entries in tar order, ggcr/crane's flattening, containerd
// (ctr pull, run, mount), podman (pull, run, mount), skopeo (inspect, copy
// to oci: and dir:) and umoci (gzip) — and each must see the same tree.
// docs/compatibility.md holds the table; the subtests log which variant of
// a dual index each client took.

const sampleLayout = "../testdata/sample"

const helloOutput = "hello from the layerslim sample image"

// matrixCase is one output kind: how it is made and what its tree must be.
type matrixCase struct {
	name string
	// args make the output (SRC and DST appended); dst's tag.
	args []string
	tag  string
	// single: the source is the amd64 image alone, not the index.
	single bool
	// self: the tree is compared with the output's own first variant
	// (read by the naive applier), not with the source: a rewrite changes it.
	self bool
	// debug: test the debug image (tag + "-debug") instead.
	debug bool
	// codecs of the amd64 entries, first to last ("gzip", "zstd").
	codecs []string
}

func TestConsumerMatrix(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the sample's runnable platforms are amd64 and arm64; this matrix runs the amd64 image")
	}
	repo := testenv.Repo(t)
	sock, ns := testenv.Containerd(t)

	// The sources: the sample index, and its amd64 image alone.
	srcIdx := sampleIndex(t)
	amd64 := platformImage(t, srcIdx, "amd64")
	testenv.PushImage(t, amd64, repo+":src-single")
	want := naiveTree(t, amd64)

	cases := []matrixCase{
		{name: "zstd index", args: []string{"recompress"}, tag: "zstd", codecs: []string{"zstd"}},
		{name: "gzip index", args: []string{"recompress", "--compression", "gzip", "--force"}, tag: "gzip", codecs: []string{"gzip"}},
		{name: "dual index", args: []string{"recompress", "--add-compression", "gzip"}, tag: "dual", codecs: []string{"gzip", "zstd"}},
		{name: "zstd single", args: []string{"recompress"}, tag: "zstd-single", single: true, codecs: []string{"zstd"}},
		{name: "dual single", args: []string{"recompress", "--compression", "gzip", "--add-compression", "zstd"}, tag: "dual-single", single: true, codecs: []string{"gzip", "zstd"}},
		{name: "zstd:chunked index", args: []string{"recompress", "--compression", "zstd:chunked"}, tag: "chunked", codecs: []string{"zstd"}},
		{name: "zstd:chunked+gzip index", args: []string{"recompress", "--compression", "zstd:chunked", "--add-compression", "gzip"}, tag: "chunked-dual", codecs: []string{"gzip", "zstd"}},
		{name: "debug image dual", args: []string{"rewrite", "--add-compression", "gzip"}, tag: "slim", self: true, debug: true, codecs: []string{"gzip", "zstd"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "oci:" + sampleLayout + ":sample"
			if tc.single {
				src = repo + ":src-single"
			}
			args := append(append([]string{}, tc.args...), "--progress", "none", src, repo+":"+tc.tag)
			run(t, args...)
			ref := repo + ":" + tc.tag
			if tc.debug {
				ref += "-debug"
			}
			entries := amd64Entries(t, ref)
			if len(entries) != len(tc.codecs) {
				t.Fatalf("%d amd64 entries, want %d", len(entries), len(tc.codecs))
			}
			for i, e := range entries {
				if e.codec != tc.codecs[i] {
					t.Fatalf("amd64 entry %d is %s, want %s", i, e.codec, tc.codecs[i])
				}
			}
			expect := want
			if tc.self {
				expect = naiveTree(t, remoteImage(t, ref, entries[0].digest))
			}
			if tc.debug {
				if !hasPrefix(expect, "usr/lib/debug/") {
					t.Fatal("the debug image holds no /usr/lib/debug files")
				}
			}
			consumers(t, ref, entries, expect, sock, ns)
		})
	}
}

// consumers runs every consumer on ref and compares each tree with want.
func consumers(t *testing.T, ref string, entries []variantEntry, want map[string]entry, sock, ns string) {
	byDigest := map[v1.Hash]string{}
	for _, e := range entries {
		byDigest[e.digest] = e.codec
	}
	t.Run("naive applier", func(t *testing.T) {
		for _, e := range entries {
			compareTrees(t, e.codec+" variant", want, naiveTree(t, remoteImage(t, ref, e.digest)))
		}
	})
	t.Run("ggcr flatten", func(t *testing.T) {
		for _, e := range entries {
			img := remoteImage(t, ref, e.digest)
			dir := t.TempDir()
			rc := mutate.Extract(img)
			applyTar(t, dir, rc)
			rc.Close()
			compareTrees(t, e.codec+" variant", want, readRoot(t, dir))
		}
	})
	t.Run("containerd", func(t *testing.T) {
		testenv.CtrPull(t, sock, ns, ref, true)
		out := testenv.CtrRun(t, sock, ns, ref)
		if !strings.Contains(out, helloOutput) {
			t.Errorf("ctr run printed %q", out)
		}
		taken := ctrUnpacked(t, sock, ns, entries)
		t.Logf("containerd unpacked the %s variant", taken)
		mnt := t.TempDir()
		ctr(t, sock, ns, "images", "mount", "--snapshotter", snapshotter(), ref, mnt)
		defer ctr(t, sock, ns, "images", "unmount", "--rm", mnt)
		compareTrees(t, "ctr images mount", want, readRoot(t, mnt))
	})
	t.Run("podman", func(t *testing.T) {
		pm := newPodman(t)
		pm.run(t, "pull", "--quiet", "--tls-verify=false", ref)
		out := pm.run(t, "run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", ref)
		if !strings.Contains(out, helloOutput) {
			t.Errorf("podman run printed %q", out)
		}
		var info []struct{ RepoDigests []string }
		if err := json.Unmarshal([]byte(pm.run(t, "image", "inspect", ref)), &info); err != nil || len(info) != 1 {
			t.Fatalf("podman image inspect: %v", err)
		}
		taken := ""
		for _, rd := range info[0].RepoDigests {
			if _, d, ok := strings.Cut(rd, "@"); ok {
				if c, ok := byDigest[mustHash(t, d)]; ok {
					taken = c
				}
			}
		}
		t.Logf("podman pulled the %s variant", taken)
		if taken == "" && len(entries) > 1 {
			t.Errorf("podman's repo digests %v name no amd64 entry", info[0].RepoDigests)
		}
		mnt := strings.TrimSpace(pm.run(t, "image", "mount", ref))
		defer pm.run(t, "image", "unmount", ref)
		compareTrees(t, "podman image mount", want, readRoot(t, mnt))
	})
	t.Run("skopeo", func(t *testing.T) {
		raw := testenv.SkopeoInspect(t, "docker://"+ref)
		if mt, _ := raw["mediaType"].(string); !strings.Contains(mt, "index") && len(entries) > 1 {
			t.Errorf("skopeo inspect: media type %q", mt)
		}
		work := t.TempDir()
		oci := filepath.Join(work, "oci")
		testenv.SkopeoCopy(t, "docker://"+ref, "oci:"+oci+":x")
		img := layoutImage(t, oci)
		d, _ := img.Digest()
		t.Logf("skopeo copy to oci: took the %s variant", orUnknown(byDigest[d]))
		compareTrees(t, "skopeo copy oci:", want, naiveTree(t, img))
		dir := filepath.Join(work, "dir")
		testenv.SkopeoCopy(t, "docker://"+ref, "dir:"+dir)
		mf, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		md, _, _ := v1.SHA256(strings.NewReader(string(mf)))
		t.Logf("skopeo copy to dir: took the %s variant", orUnknown(byDigest[md]))
		var m v1.Manifest
		if err := json.Unmarshal(mf, &m); err != nil {
			t.Fatal(err)
		}
		for _, l := range m.Layers {
			if _, err := os.Stat(filepath.Join(dir, l.Digest.Hex)); err != nil {
				t.Errorf("dir: layer %s missing: %v", l.Digest, err)
			}
		}
		if len(entries) > 1 {
			all := filepath.Join(work, "all")
			testenv.SkopeoCopy(t, "docker://"+ref, "oci:"+all+":x", "--all")
			idx := layoutIndex(t, all)
			im, _ := idx.IndexManifest()
			if n := len(amd64Of(im)); n != len(entries) {
				t.Errorf("skopeo copy --all kept %d amd64 entries, want %d", n, len(entries))
			}
		}
	})
	t.Run("umoci", func(t *testing.T) {
		// umoci reads gzip layers; skopeo copies the gzip variant (the
		// first) of a dual index, and a zstd-only output is converted.
		work := t.TempDir()
		oci := filepath.Join(work, "oci")
		var extra []string
		if entries[0].codec != "gzip" {
			extra = []string{"--dest-compress-format", "gzip"}
		}
		testenv.SkopeoCopy(t, "docker://"+ref, "oci:"+oci+":x", extra...)
		bundle := filepath.Join(work, "bundle")
		sh(t, fmt.Sprintf("umoci unpack --image %s:x %s >/dev/null", oci, bundle))
		compareTrees(t, "umoci unpack", want, readRoot(t, filepath.Join(bundle, "rootfs")))
	})
}

// variantEntry is an amd64 entry of an output: its digest and codec.
type variantEntry struct {
	digest v1.Hash
	codec  string
}

// amd64Entries lists the amd64 images of ref (one for a single image) with
// the codec of their layers, in index order.
func amd64Entries(t *testing.T, ref string) []variantEntry {
	t.Helper()
	r := testenv.ParseRef(t, ref)
	desc, err := remote.Get(r, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		t.Fatal(err)
	}
	var digests []v1.Hash
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		im, _ := idx.IndexManifest()
		ds := amd64Of(im)
		for _, d := range ds {
			digests = append(digests, d.Digest)
			zstd := d.Annotations[rewrite.AnnotationZstdVariant] == "true"
			if len(ds) > 1 && zstd != (codecOf(t, ref, d.Digest) == "zstd") {
				t.Errorf("entry %s: zstd annotation %v does not match its layers", d.Digest, zstd)
			}
		}
	} else {
		digests = []v1.Hash{desc.Digest}
	}
	var out []variantEntry
	for _, d := range digests {
		out = append(out, variantEntry{digest: d, codec: codecOf(t, ref, d)})
	}
	return out
}

func amd64Of(im *v1.IndexManifest) []v1.Descriptor {
	var out []v1.Descriptor
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == "amd64" {
			out = append(out, d)
		}
	}
	return out
}

// codecOf is the codec of every layer of ref@d.
func codecOf(t *testing.T, ref string, d v1.Hash) string {
	t.Helper()
	m, err := remoteImage(t, ref, d).Manifest()
	if err != nil {
		t.Fatal(err)
	}
	codecs := map[compress.Codec]bool{}
	for _, l := range m.Layers {
		c, _ := compress.MediaTypeCodec(l.MediaType)
		codecs[c] = true
	}
	if len(codecs) != 1 {
		t.Fatalf("%s@%s mixes codecs %v", ref, d, codecs)
	}
	for c := range codecs {
		return string(c)
	}
	return ""
}

func remoteImage(t *testing.T, ref string, d v1.Hash) v1.Image {
	t.Helper()
	r := testenv.ParseRef(t, ref).Context().Digest(d.String())
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func platformImage(t *testing.T, idx v1.ImageIndex, arch string) v1.Image {
	t.Helper()
	im, _ := idx.IndexManifest()
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.Architecture == arch {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
	}
	t.Fatalf("no %s image", arch)
	return nil
}

func layoutIndex(t *testing.T, dir string) v1.ImageIndex {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	// skopeo --all tags the copied index itself.
	if im, _ := idx.IndexManifest(); len(im.Manifests) == 1 && im.Manifests[0].MediaType.IsIndex() {
		if idx, err = idx.ImageIndex(im.Manifests[0].Digest); err != nil {
			t.Fatal(err)
		}
	}
	return idx
}

// layoutImage is the one image tagged in the layout (skopeo's oci:DIR:x).
func layoutImage(t *testing.T, dir string) v1.Image {
	t.Helper()
	idx := layoutIndex(t, dir)
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 1 || !im.Manifests[0].MediaType.IsImage() {
		t.Fatalf("layout %s: want one image, have %+v", dir, im.Manifests)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// naiveTree applies img's layers into a directory in order, each entry in
// tar order, as a short script would, and reads the tree back.
func naiveTree(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	dir := t.TempDir()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		applyTar(t, dir, rc)
		rc.Close()
	}
	return readRoot(t, dir)
}

// applyTar applies one layer tar to dir, entry by entry: a .wh. file
// deletes its sibling, an opaque marker empties its directory as it stands.
func applyTar(t *testing.T, dir string, r io.Reader) {
	t.Helper()
	tr := tar.NewReader(r)
	type dirTime struct {
		path string
		h    *tar.Header
	}
	var dirs []dirTime
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Clean("/" + h.Name)
		if name == "/" {
			continue
		}
		p := filepath.Join(dir, name)
		base := filepath.Base(name)
		switch {
		case base == ".wh..wh..opq":
			ents, _ := os.ReadDir(filepath.Dir(p))
			for _, e := range ents {
				os.RemoveAll(filepath.Join(filepath.Dir(p), e.Name()))
			}
			continue
		case strings.HasPrefix(base, ".wh."):
			os.RemoveAll(filepath.Join(filepath.Dir(p), strings.TrimPrefix(base, ".wh.")))
			continue
		}
		if fi, err := os.Lstat(p); err == nil && !(fi.IsDir() && h.Typeflag == tar.TypeDir) {
			os.RemoveAll(p)
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		mode := h.FileInfo().Mode()
		switch h.Typeflag {
		case tar.TypeDir:
			os.Mkdir(p, 0o755)
			dirs = append(dirs, dirTime{p, h})
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, p); err != nil {
				t.Fatal(err)
			}
		case tar.TypeLink:
			if err := os.Link(filepath.Join(dir, filepath.Clean("/"+h.Linkname)), p); err != nil {
				t.Fatal(err)
			}
			continue // the target's metadata is the link's
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			m := uint32(unix.S_IFIFO)
			if h.Typeflag == tar.TypeChar {
				m = unix.S_IFCHR
			} else if h.Typeflag == tar.TypeBlock {
				m = unix.S_IFBLK
			}
			if err := unix.Mknod(p, m|uint32(mode.Perm()), int(unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor)))); err != nil {
				t.Fatal(err)
			}
		default:
			continue
		}
		if err := os.Lchown(p, h.Uid, h.Gid); err != nil {
			t.Fatal(err)
		}
		for k, v := range h.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if err := unix.Lsetxattr(p, x, []byte(v), 0); err != nil {
					t.Fatal(err)
				}
			}
		}
		if h.Typeflag != tar.TypeSymlink {
			if err := os.Chmod(p, mode&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
				t.Fatal(err)
			}
		}
		if h.Typeflag != tar.TypeDir {
			ts := []unix.Timespec{unix.NsecToTimespec(h.ModTime.UnixNano()), unix.NsecToTimespec(h.ModTime.UnixNano())}
			unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
		}
	}
}

// readRoot is readTree without the root directory itself (a mount point's
// or a temporary directory's).
func readRoot(t *testing.T, dir string) map[string]entry {
	t.Helper()
	m := readTree(t, dir)
	delete(m, ".")
	return m
}

func compareTrees(t *testing.T, what string, want, got map[string]entry) {
	t.Helper()
	var diffs []string
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			diffs = append(diffs, p+": missing")
		case g != w:
			diffs = append(diffs, fmt.Sprintf("%s: %+v, want %+v", p, g, w))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, p+": not in the expected tree")
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		if len(diffs) > 10 {
			diffs = append(diffs[:10], fmt.Sprintf("… %d more", len(diffs)-10))
		}
		t.Errorf("%s: the tree differs from the expected one (%d paths):\n%s", what, len(want), strings.Join(diffs, "\n"))
	}
}

func hasPrefix(m map[string]entry, prefix string) bool {
	for p := range m {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

func mustHash(t *testing.T, s string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func orUnknown(s string) string {
	if s == "" {
		return "(another, converted)"
	}
	return s
}

func snapshotter() string {
	if s := testenv.ContainerdSnapshotter(); s != "" {
		return s
	}
	return "overlayfs"
}

func ctr(t *testing.T, sock, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ctr", append([]string{"--address", sock, "--namespace", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ctrUnpacked tells which entry containerd unpacked: the one whose layers
// all carry the containerd.io/uncompressed label the unpacker sets.
func ctrUnpacked(t *testing.T, sock, ns string, entries []variantEntry) string {
	t.Helper()
	labelled := map[string]bool{}
	for _, line := range strings.Split(ctr(t, sock, ns, "content", "ls"), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && strings.Contains(f[len(f)-1], "containerd.io/uncompressed=") {
			labelled[f[0]] = true
		}
	}
	taken := ""
	for _, e := range entries {
		raw := ctr(t, sock, ns, "content", "get", e.digest.String())
		var m v1.Manifest
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatal(err)
		}
		all := true
		for _, l := range m.Layers {
			all = all && labelled[l.Digest.String()]
		}
		if all {
			if taken != "" {
				taken += "+"
			}
			taken += e.codec
		}
	}
	if taken == "" {
		t.Errorf("no variant's layers are all unpacked")
	}
	return taken
}

// podman runs podman as root with storage, run root and temporary files of
// its own (vfs, cgroupfs, file events), trusting the plain-HTTP test
// registry: the options that work in CI without a systemd session.
type podman struct {
	args []string
	env  []string
}

func newPodman(t *testing.T) *podman { return newPodmanStorage(t, "vfs", false) }

// newPodmanStorage is newPodman with the storage driver given; partial
// enables partial pulls of zstd:chunked layers, which take the overlay
// driver (vfs has no differ) and a storage.conf: podman has no flag for
// pull_options.
func newPodmanStorage(t *testing.T, driver string, partial bool) *podman {
	t.Helper()
	testenv.Tool(t, "podman")
	dir, err := os.MkdirTemp("", "layerslim-podman-")
	if err != nil {
		t.Fatal(err)
	}
	root, run := filepath.Join(dir, "root"), filepath.Join(dir, "run")
	pm := &podman{args: []string{"--root", root, "--runroot", run,
		"--storage-driver", driver, "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--tmpdir", filepath.Join(dir, "tmp")}}
	t.Cleanup(func() {
		cmd := exec.Command("podman", append(pm.args, "system", "reset", "--force")...)
		cmd.Env = pm.env
		cmd.Run()
		os.RemoveAll(dir)
	})
	conf := filepath.Join(dir, "registries.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", testenv.Registry(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	pm.env = append(os.Environ(), "CONTAINERS_REGISTRIES_CONF="+conf)
	if partial {
		storage := filepath.Join(dir, "storage.conf")
		text := fmt.Sprintf("[storage]\ndriver = %q\ngraphroot = %q\nrunroot = %q\n[storage.options]\npull_options = {enable_partial_images = \"true\", use_hard_links = \"false\"}\n", driver, root, run)
		if err := os.WriteFile(storage, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		pm.env = append(pm.env, "CONTAINERS_STORAGE_CONF="+storage)
	}
	return pm
}

func (pm *podman) run(t *testing.T, args ...string) string {
	t.Helper()
	out, _ := pm.runLog(t, args...)
	return out
}

// runLog is run that also returns what podman wrote to stderr (its log).
func (pm *podman) runLog(t *testing.T, args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command("podman", append(append([]string{}, pm.args...), args...)...)
	cmd.Env = pm.env
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("podman %s: %v\n%s\n%s", strings.Join(args, " "), err, errb.String(), out.String())
	}
	return out.String(), errb.String()
}

// podman with partial pulls enabled (overlay storage, enable_partial_images)
// pulls a layerslim zstd:chunked image and runs it with the source's tree.
// Whether the pull is partial depends on podman's containers/storage: from
// v1.44 on it reads the io.github.containers.zstd-chunked.* annotations and
// fetches the files' frames by range ("Retrieved partial blob" in its debug
// log, for every layer). Debian 12's podman 4.3.1 has v1.43, which knows only
// the older io.containers.* names, so it falls back to a full pull ("blob
// type not supported for partial retrieval"); layerslim does not write the
// older names, because that podman's partial pulls leave each layer's root
// directory at mode 0700 and an image whose user is not root then cannot
// start (docs/compatibility.md). The test requires one or the other for
// every layer, and logs which.
func TestPodmanPartialPull(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the sample's runnable platforms are amd64 and arm64; this test runs the amd64 image")
	}
	repo := testenv.Repo(t)
	srcIdx := sampleIndex(t)
	want := naiveTree(t, platformImage(t, srcIdx, "amd64"))
	ref := repo + ":partial"
	run(t, "recompress", "--compression", "zstd:chunked", "--progress", "none", "oci:"+sampleLayout+":sample", ref)
	entries := amd64Entries(t, ref)
	layers, err := remoteImage(t, ref, entries[0].digest).Layers()
	if err != nil {
		t.Fatal(err)
	}
	blobs := map[string]bool{}
	for _, l := range layers {
		d, _ := l.Digest()
		blobs[d.String()] = true
	}

	pm := newPodmanStorage(t, "overlay", true)
	version := strings.TrimSpace(pm.run(t, "version", "--format", "{{.Client.Version}}"))
	_, log := pm.runLog(t, "--log-level=debug", "pull", "--tls-verify=false", "--platform", "linux/amd64", ref)
	partial, full := 0, 0
	for _, line := range strings.Split(log, "\n") {
		switch {
		case strings.Contains(line, "Failed to retrieve partial blob"):
			full++
			if !strings.Contains(line, "blob type not supported for partial retrieval") {
				t.Errorf("podman %s: %s", version, line)
			}
		case strings.Contains(line, "Retrieved partial blob "):
			partial++
			_, after, _ := strings.Cut(line, "Retrieved partial blob ")
			delete(blobs, strings.Trim(after, `"`))
		}
	}
	t.Logf("podman %s: %d layers pulled partially, %d in full", version, partial, full)
	switch {
	case strings.HasPrefix(version, "4.3."):
		if partial > 0 || full != len(layers) {
			t.Errorf("podman %s: want a full pull of each of the %d layers (its containers/storage knows only the io.containers.* annotations)", version, len(layers))
		}
	case len(blobs) > 0:
		t.Errorf("podman %s: layers not pulled partially: %v", version, slices.Sorted(maps.Keys(blobs)))
	}
	out := pm.run(t, "run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", ref)
	if !strings.Contains(out, helloOutput) {
		t.Errorf("podman run printed %q", out)
	}
	mnt := strings.TrimSpace(pm.run(t, "image", "mount", ref))
	defer pm.run(t, "image", "unmount", ref)
	compareTrees(t, "podman image mount after a partial pull", want, readRoot(t, mnt))
}

// sampleIndex is the multi-platform index the sample layout's tag names.
func sampleIndex(t *testing.T) v1.ImageIndex {
	t.Helper()
	p, err := layout.FromPath(sampleLayout)
	if err != nil {
		t.Fatal(err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	tim, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	idx, err := top.ImageIndex(tim.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}
