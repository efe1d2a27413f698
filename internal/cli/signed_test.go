package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/layerslim/layerslim/internal/signed"
	"github.com/layerslim/layerslim/internal/testenv"
)

// The signed-source tests run against ggcr's in-memory registry here (it
// has the referrers API) and against the real distribution registry of
// .ci/services.sh in signed_integration_test.go (it has none: the
// sha256-<hex> referrers tag schema is used).

var sigRepoIDs atomic.Int64

// memRepos returns a function that names a fresh repository in an
// in-memory registry with the referrers API.
func sigMemRepos(t *testing.T) func(testing.TB) string {
	t.Helper()
	s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(true)))
	t.Cleanup(s.Close)
	host := strings.TrimPrefix(s.URL, "http://")
	return func(t testing.TB) string { return fmt.Sprintf("%s/signed/app%d", host, sigRepoIDs.Add(1)) }
}

func sigDesc(t *testing.T, m partial.Describable) v1.Descriptor {
	t.Helper()
	d, err := partial.Descriptor(m)
	if err != nil {
		t.Fatal(err)
	}
	return v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}
}

// exists reports whether ref names a manifest in the registry.
func sigExists(t *testing.T, ref string) bool {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Head(r)
	return err == nil
}

const sigSBOMDoc = `{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","name":"app","packages":[]}`

// signedSource pushes a small image with a cosign signature tag and an SPDX
// SBOM referrer to a fresh repository and returns the repository and the
// image's digest.
func sigSource(t *testing.T, newRepo func(testing.TB) string) (string, v1.Hash) {
	t.Helper()
	repo := newRepo(t)
	img := testenv.GzipImage(t, testenv.Platform(t, "linux/amd64"),
		testenv.TarLayer(t, []testenv.File{testenv.Dir("etc"), testenv.Reg("etc/app.conf", "x=1\n")}),
		testenv.TarLayer(t, []testenv.File{testenv.Dir("usr"), testenv.Dir("usr/share"), testenv.Dir("usr/share/doc"), testenv.Reg("usr/share/doc/README", strings.Repeat("docs\n", 200))}))
	src := testenv.PushArtifact(t, img, repo+":v1")
	testenv.PushArtifact(t, testenv.CosignSignature(t, repo, src.Digest), repo+":"+signed.CosignTag(src.Digest, ".sig"))
	testenv.PushArtifactByDigest(t, testenv.SBOMReferrer(t, src, sigSBOMDoc), repo)
	return repo, src.Digest
}

// fileReport is the part of the --report file these tests read.
type sigFileReport struct {
	Written string            `json:"written"`
	Skipped string            `json:"skipped"`
	Digests map[string]string `json:"digests"`
	Signed  *struct {
		Policy    string            `json:"policy"`
		Action    string            `json:"action"`
		Artifacts []signed.Artifact `json:"artifacts"`
	} `json:"signed"`
}

func sigReadReport(t *testing.T, path string) sigFileReport {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r sigFileReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return r
}

func TestRewriteSignedSource(t *testing.T) { testRewriteSignedSource(t, sigMemRepos(t)) }

func testRewriteSignedSource(t *testing.T, newRepo func(testing.TB) string) {
	repo, old := sigSource(t, newRepo)
	src := repo + ":v1"
	sigTag := signed.CosignTag(old, ".sig")

	t.Run("warn", func(t *testing.T) {
		dst := repo + ":warn"
		report := filepath.Join(t.TempDir(), "r.json")
		stdout, stderr, code := run(t, "rewrite", src, dst, "--progress", "none", "--report", report)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		written := strings.TrimSpace(stdout)
		if !sigExists(t, dst) || !sigExists(t, repo+"@"+written) {
			t.Fatalf("%s not written", dst)
		}
		for _, want := range []string{"warning", sigTag, "will not verify", old.String() + " (the image) → " + written,
			"cosign sign " + strings.TrimSuffix(dst, ":warn") + "@" + written} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
		r := sigReadReport(t, report)
		if r.Digests[old.String()] != written || r.Written != written {
			t.Errorf("report digests %v, written %s; want %s → %s", r.Digests, r.Written, old, written)
		}
		if r.Signed == nil || r.Signed.Policy != "warn" || r.Signed.Action != "warned" || len(r.Signed.Artifacts) != 2 {
			t.Fatalf("report signed: %+v", r.Signed)
		}
		sig := r.Signed.Artifacts[0]
		if sig.Kind != signed.Signature || sig.Tag != sigTag || sig.NewSubject == nil || sig.NewSubject.String() != written {
			t.Errorf("report: signature %+v", sig)
		}
		if sb := r.Signed.Artifacts[1]; sb.Kind != signed.SBOM || sb.CopiedTo != "" {
			t.Errorf("report: SBOM %+v (copied without --copy-referrers)", sb)
		}
	})

	t.Run("skip", func(t *testing.T) {
		dst := repo + ":skip"
		report := filepath.Join(t.TempDir(), "r.json")
		stdout, stderr, code := run(t, "rewrite", src, dst, "--progress", "none", "--report", report, "--signed=skip")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		if sigExists(t, dst) || sigExists(t, dst+"-debug") || stdout != "" {
			t.Errorf("--signed=skip wrote something (stdout %q)", stdout)
		}
		if !strings.Contains(stderr, "skipped, nothing written") || !strings.Contains(stderr, sigTag) {
			t.Errorf("stderr:\n%s", stderr)
		}
		r := sigReadReport(t, report)
		if r.Skipped == "" || r.Written != "" || r.Signed == nil || r.Signed.Action != "skipped" || len(r.Signed.Artifacts) != 2 {
			t.Errorf("report: %+v", r)
		}
	})

	t.Run("fail", func(t *testing.T) {
		dst := repo + ":fail"
		for _, cmd := range []string{"rewrite", "recompress"} {
			stdout, stderr, code := run(t, cmd, src, dst, "--progress", "none", "--signed", "fail")
			if code != 1 || stdout != "" {
				t.Errorf("%s: exit %d, stdout %q; want 1 and nothing", cmd, code, stdout)
			}
			if sigExists(t, dst) || sigExists(t, dst+"-debug") {
				t.Errorf("%s --signed=fail wrote %s", cmd, dst)
			}
			if !strings.Contains(stderr, "is signed (1 signature): --signed=fail, nothing written") || !strings.Contains(stderr, sigTag) {
				t.Errorf("%s stderr:\n%s", cmd, stderr)
			}
		}
	})

	t.Run("copy-referrers", func(t *testing.T) {
		dst := newRepo(t) + ":slim" // another repository: blobs are mounted or copied
		report := filepath.Join(t.TempDir(), "r.json")
		stdout, stderr, code := run(t, "rewrite", src, dst, "--progress", "none", "--report", report, "--copy-referrers")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		written := strings.TrimSpace(stdout)
		dstRepo := strings.TrimSuffix(dst, ":slim")
		nd, err := name.NewDigest(dstRepo+"@"+written, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Referrers(nd)
		if err != nil {
			t.Fatal(err)
		}
		im, _ := idx.IndexManifest()
		// The debug image names the slim one as its subject too.
		im.Manifests = slices.DeleteFunc(im.Manifests, func(d v1.Descriptor) bool { return d.Annotations["dev.layerslim.debug-for"] != "" })
		if len(im.Manifests) != 1 {
			t.Fatalf("referrers of %s: %+v\n%s", nd, im.Manifests, stderr)
		}
		cp, err := remote.Image(nd.Context().Digest(im.Manifests[0].Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		m, _ := cp.Manifest()
		if m.ArtifactType != testenv.SPDXType || m.Subject == nil || m.Subject.Digest.String() != written {
			t.Errorf("copy: artifactType %q, subject %+v", m.ArtifactType, m.Subject)
		}
		ls, _ := cp.Layers()
		if len(ls) != 1 {
			t.Fatalf("copy has %d layers", len(ls))
		}
		rc, _ := ls[0].Compressed()
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != sigSBOMDoc {
			t.Errorf("copy holds %q", b)
		}
		if !strings.Contains(stderr, "copied 1 SBOM(s)") {
			t.Errorf("stderr:\n%s", stderr)
		}
		// The signature is not copied: it would be a lie about the new digest.
		if sigExists(t, dstRepo+":"+strings.Replace(written, ":", "-", 1)+".sig") {
			t.Error("the signature was copied")
		}
		r := sigReadReport(t, report)
		if sb := r.Signed.Artifacts[1]; sb.Kind != signed.SBOM || !strings.Contains(sb.CopiedTo, im.Manifests[0].Digest.String()) {
			t.Errorf("report: SBOM %+v", sb)
		}
	})
}

func TestRewriteSignedIndex(t *testing.T) { testRewriteSignedIndex(t, sigMemRepos(t)) }

// testRewriteSignedIndex: a multi-arch index signed at the index level.
func testRewriteSignedIndex(t *testing.T, newRepo func(testing.TB) string) {
	repo := newRepo(t)
	layer := func(arch string) []byte {
		return testenv.TarLayer(t, []testenv.File{testenv.Dir("etc"), testenv.Reg("etc/arch", arch+"\n")})
	}
	idx := testenv.MultiArchIndex(t,
		testenv.GzipImage(t, testenv.Platform(t, "linux/amd64"), layer("amd64")),
		testenv.GzipImage(t, testenv.Platform(t, "linux/arm64/v8"), layer("arm64")))
	r, _ := name.ParseReference(repo+":multi", name.Insecure)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	old := sigDesc(t, idx).Digest
	testenv.PushArtifact(t, testenv.CosignSignature(t, repo, old), repo+":"+signed.CosignTag(old, ".sig"))

	_, stderr, code := run(t, "recompress", repo+":multi", repo+":fail", "--progress", "none", "--signed=fail")
	if code != 1 || sigExists(t, repo+":fail") {
		t.Errorf("--signed=fail: exit %d, written %v\n%s", code, sigExists(t, repo+":fail"), stderr)
	}

	report := filepath.Join(t.TempDir(), "r.json")
	stdout, stderr, code := run(t, "recompress", repo+":multi", repo+":zstd", "--progress", "none", "--report", report)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	written := strings.TrimSpace(stdout)
	if !strings.Contains(stderr, old.String()+" (the index) → "+written) || !strings.Contains(stderr, "cosign sign "+repo+"@"+written) {
		t.Errorf("stderr does not name the index and its new digest:\n%s", stderr)
	}
	rep := sigReadReport(t, report)
	im, _ := idx.IndexManifest()
	out, err := remote.Index(testenv.ParseRef(t, repo+"@"+written))
	if err != nil {
		t.Fatal(err)
	}
	oim, _ := out.IndexManifest()
	want := map[string]string{old.String(): written}
	for i := range im.Manifests {
		want[im.Manifests[i].Digest.String()] = oim.Manifests[i].Digest.String()
	}
	if len(rep.Digests) != 3 || fmt.Sprint(rep.Digests) != fmt.Sprint(want) {
		t.Errorf("digests %v, want %v", rep.Digests, want)
	}
}

// An SBOM alone does not make an image signed: no policy applies.
func TestRewriteSBOMOnly(t *testing.T) {
	repo := sigMemRepos(t)(t)
	img := testenv.GzipImage(t, testenv.Platform(t, "linux/amd64"), testenv.TarLayer(t, []testenv.File{testenv.Reg("a", "a")}))
	src := testenv.PushArtifact(t, img, repo+":v1")
	testenv.PushArtifactByDigest(t, testenv.SBOMReferrer(t, src, sigSBOMDoc), repo)
	stdout, stderr, code := run(t, "recompress", repo+":v1", repo+":zstd", "--progress", "none", "--signed=fail")
	if code != 0 || strings.TrimSpace(stdout) == "" {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, "warning") || !strings.Contains(stderr, "1 SBOM attached to the old digest") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

// An OCI layout holds referrers too: one with a subject, and cosign's tags
// as ref.name entries.
func TestRewriteSignedOCILayout(t *testing.T) {
	dir := t.TempDir()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img := testenv.GzipImage(t, testenv.Platform(t, "linux/amd64"), testenv.TarLayer(t, []testenv.File{testenv.Reg("a", "a")}))
	src := sigDesc(t, img)
	att := testenv.Artifact(t, testenv.ArtifactSpec{
		ArtifactType: "application/vnd.in-toto+json",
		Layers:       []testenv.ArtifactLayer{{MediaType: testenv.DSSEEnvelopeType, Data: []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`)}},
		Subject:      &src,
	})
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(att); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	_, stderr, code := run(t, "recompress", "oci:"+dir+":v1", "oci:"+out+":v1", "--progress", "none", "--signed=fail")
	if code != 1 || !strings.Contains(stderr, "1 attestation") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("--signed=fail created the destination layout")
	}
	_, stderr, code = run(t, "recompress", "oci:"+dir+":v1", "oci:"+out+":v1", "--progress", "none")
	if code != 0 || !strings.Contains(stderr, "cosign attest") || !strings.Contains(stderr, "after pushing") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
}

// sigFaultyRegistry is the in-memory registry behind a handler that answers
// the requests refuse picks with status, once the returned switch is on.
func sigFaultyRegistry(t *testing.T, status int, refuse func(r *http.Request, body []byte) bool) (string, *atomic.Bool) {
	var on atomic.Bool
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(true))
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if on.Load() && refuse(r, body) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"errors":[{"code":"DENIED","message":"refused by the test"}]}`)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://"), &on
}

// A registry that refuses the referrers lookup: warn carries on and says
// so; skip and fail cannot tell whether the source is signed and stop.
func TestRewriteSignedLookupRefused(t *testing.T) {
	host, on := sigFaultyRegistry(t, http.StatusForbidden, func(r *http.Request, _ []byte) bool {
		return strings.Contains(r.URL.Path, "/referrers/")
	})
	repo, _ := sigSource(t, func(testing.TB) string { return host + "/app" })
	on.Store(true)
	for _, policy := range []string{"skip", "fail"} {
		stdout, stderr, code := run(t, "recompress", repo+":v1", repo+":"+policy, "--progress", "none", "--signed", policy)
		if code != 1 || stdout != "" || sigExists(t, repo+":"+policy) {
			t.Errorf("--signed=%s: exit %d, stdout %q\n%s", policy, code, stdout, stderr)
		}
		if !strings.Contains(stderr, "looking for signatures of") || !strings.Contains(stderr, "refused by the test") {
			t.Errorf("--signed=%s: stderr:\n%s", policy, stderr)
		}
	}
	report := filepath.Join(t.TempDir(), "r.json")
	stdout, stderr, code := run(t, "recompress", repo+":v1", repo+":warn", "--progress", "none", "--report", report)
	if code != 0 || !sigExists(t, repo+":warn") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "warning: could not look for signatures") {
		t.Errorf("stderr:\n%s", stderr)
	}
	r := sigReadReport(t, report)
	if r.Signed == nil || r.Digests[""] != "" || len(r.Digests) != 1 || strings.TrimSpace(stdout) == "" {
		t.Errorf("report %+v", r)
	}
}

// A registry that refuses manifests with a subject: the image is written,
// the SBOM copy is reported as not done.
func TestRewriteCopyReferrersRefused(t *testing.T) {
	host, on := sigFaultyRegistry(t, http.StatusBadRequest, func(r *http.Request, body []byte) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/slim/manifests/") && bytes.Contains(body, []byte(`"subject"`))
	})
	repo, _ := sigSource(t, func(testing.TB) string { return host + "/app" })
	on.Store(true)
	report := filepath.Join(t.TempDir(), "r.json")
	stdout, stderr, code := run(t, "recompress", repo+":v1", host+"/slim:v1", "--progress", "none", "--report", report, "--copy-referrers")
	if code != 0 || !sigExists(t, host+"/slim:v1") || strings.TrimSpace(stdout) == "" {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "warning: SBOM referrer") || !strings.Contains(stderr, "not copied") {
		t.Errorf("stderr:\n%s", stderr)
	}
	r := sigReadReport(t, report)
	if sb := r.Signed.Artifacts[1]; sb.Kind != signed.SBOM || sb.CopiedTo != "" || !strings.Contains(sb.CopyError, "refused by the test") {
		t.Errorf("report: SBOM %+v", sb)
	}
}

func TestSignedUsage(t *testing.T) {
	for _, cmd := range []string{"rewrite", "recompress"} {
		_, stderr, code := run(t, cmd, "oci:"+sample+":sample", "oci:"+t.TempDir()+":x", "--signed", "ignore")
		if code != 2 || !strings.Contains(stderr, `--signed: "ignore": want warn, skip or fail`) {
			t.Errorf("%s --signed=ignore: exit %d\n%s", cmd, code, stderr)
		}
	}
}
