package signed_test

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/signed"
	"github.com/layerslim/layerslim/internal/testenv"
)

// memRegistry is ggcr's in-memory registry; referrers says whether it has
// the referrers API (without it, clients use the sha256-<hex> tag schema).
func memRegistry(t *testing.T, referrers bool) string {
	t.Helper()
	s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(referrers)))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func ref(t *testing.T, s string) imageref.Ref {
	t.Helper()
	r, err := imageref.Parse(s, false)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sourceImage(t *testing.T, body string) v1.Image {
	return testenv.GzipImage(t, testenv.Platform(t, "linux/amd64"), testenv.TarLayer(t, []testenv.File{testenv.Reg("etc/app", body)}))
}

const spdxDoc = `{"spdxVersion":"SPDX-2.3","name":"app"}`

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		typ  string
		ann  map[string]string
		want signed.Kind
	}{
		{"application/vnd.dev.cosign.simplesigning.v1+json", nil, signed.Signature},
		{"application/vnd.dev.cosign.artifact.sig.v1+json", nil, signed.Signature},
		{"application/vnd.cncf.notary.signature", nil, signed.Signature},
		{"application/vnd.dev.sigstore.bundle.v0.3+json", nil, signed.Signature},
		{"application/vnd.dev.sigstore.bundle.v0.3+json", map[string]string{"dev.sigstore.bundle.predicateType": "https://slsa.dev/provenance/v1"}, signed.Attestation},
		{"application/vnd.in-toto+json", nil, signed.Attestation},
		{"application/vnd.dsse.envelope.v1+json", nil, signed.Attestation},
		{"application/spdx+json", nil, signed.SBOM},
		{"text/spdx", nil, signed.SBOM},
		{"application/vnd.cyclonedx+json", nil, signed.SBOM},
		{"application/vnd.example.thing", nil, signed.Other},
		{"", nil, signed.Other},
	} {
		if got := signed.Classify(c.typ, c.ann); got != c.want {
			t.Errorf("Classify(%q, %v) = %s, want %s", c.typ, c.ann, got, c.want)
		}
	}
	if !signed.Signature.Binds() || !signed.Attestation.Binds() || signed.SBOM.Binds() || signed.Other.Binds() {
		t.Error("only signatures and attestations should bind")
	}
}

func TestParsePolicy(t *testing.T) {
	for _, s := range []string{"warn", "skip", "fail"} {
		if p, err := signed.ParsePolicy(s); err != nil || string(p) != s {
			t.Errorf("ParsePolicy(%q) = %q, %v", s, p, err)
		}
	}
	if _, err := signed.ParsePolicy("ignore"); err == nil {
		t.Error("ParsePolicy(ignore): no error")
	}
}

// signedRepo pushes an image with a cosign signature tag and an SBOM
// referrer, and returns the repository and the image's descriptor.
func signedRepo(t *testing.T, host string) (string, v1.Descriptor, v1.Descriptor) {
	t.Helper()
	repo := host + "/app"
	src := testenv.PushArtifact(t, sourceImage(t, "v1"), repo+":v1")
	sig := testenv.PushArtifact(t, testenv.CosignSignature(t, repo, src.Digest), repo+":"+signed.CosignTag(src.Digest, ".sig"))
	_ = sig
	sbom := testenv.PushArtifactByDigest(t, testenv.SBOMReferrer(t, src, spdxDoc), repo)
	return repo, src, sbom
}

func TestFindRegistry(t *testing.T) {
	for _, api := range []bool{true, false} {
		name := "referrers-api"
		if !api {
			name = "tag-schema"
		}
		t.Run(name, func(t *testing.T) {
			repo, src, sbom := signedRepo(t, memRegistry(t, api))
			unsigned := testenv.PushArtifact(t, sourceImage(t, "other"), repo+":other")
			found, err := signed.Find(context.Background(), ref(t, repo+":v1"), imageref.Options{}, src.Digest, unsigned.Digest)
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != 2 {
				t.Fatalf("found %d artifacts, want 2: %+v", len(found), found)
			}
			sig, sb := found[0], found[1]
			if sig.Kind != signed.Signature || sig.Via != signed.ViaTag || sig.Subject != src.Digest || sig.Tag != signed.CosignTag(src.Digest, ".sig") {
				t.Errorf("signature: %+v", sig)
			}
			if sb.Kind != signed.SBOM || sb.Via != signed.ViaReferrers || sb.Digest != sbom.Digest || sb.ArtifactType != testenv.SPDXType || sb.Subject != src.Digest {
				t.Errorf("SBOM: %+v, want digest %s", sb, sbom.Digest)
			}
			if b := signed.Binding(found); len(b) != 1 || b[0].Kind != signed.Signature {
				t.Errorf("Binding = %+v, want the signature only", b)
			}
		})
	}
}

func TestCopySBOMs(t *testing.T) {
	for _, api := range []bool{true, false} {
		t.Run(map[bool]string{true: "referrers-api", false: "tag-schema"}[api], func(t *testing.T) {
			host := memRegistry(t, api)
			repo, src, _ := signedRepo(t, host)
			// A cosign .sbom tag too.
			cosignSBOM := testenv.Artifact(t, testenv.ArtifactSpec{Layers: []testenv.ArtifactLayer{{MediaType: "text/spdx+json", Data: []byte(spdxDoc)}}})
			testenv.PushArtifact(t, cosignSBOM, repo+":"+signed.CosignTag(src.Digest, ".sbom"))

			found, err := signed.Find(context.Background(), ref(t, repo+":v1"), imageref.Options{}, src.Digest)
			if err != nil {
				t.Fatal(err)
			}
			// The rewritten image, in another repository of the registry.
			dstRepo := host + "/slim"
			nd := testenv.PushArtifact(t, sourceImage(t, "v1-slim"), dstRepo+":v1")
			n := signed.CopySBOMs(context.Background(), ref(t, repo+":v1"), ref(t, dstRepo+":v1"), imageref.Options{}, found, map[v1.Hash]v1.Descriptor{src.Digest: nd})
			if n != 2 {
				t.Fatalf("copied %d, want 2: %+v", n, found)
			}
			for _, a := range found {
				if a.Kind == signed.Signature && (a.CopiedTo != "" || a.CopyError != "") {
					t.Errorf("signature touched: %+v", a)
				}
			}

			nref, _ := name.NewDigest(dstRepo + "@" + nd.Digest.String())
			idx, err := remote.Referrers(nref)
			if err != nil {
				t.Fatal(err)
			}
			im, _ := idx.IndexManifest()
			// (ggcr's registry lists the config media type as artifactType,
			// so the type is checked on the manifest below.)
			if len(im.Manifests) != 1 {
				t.Fatalf("referrers of the new digest: %+v", im.Manifests)
			}
			copyRef, _ := name.NewDigest(dstRepo + "@" + im.Manifests[0].Digest.String())
			img, err := remote.Image(copyRef)
			if err != nil {
				t.Fatal(err)
			}
			m, _ := img.Manifest()
			if m.Subject == nil || m.Subject.Digest != nd.Digest || m.ArtifactType != testenv.SPDXType {
				t.Errorf("copy: subject %+v, artifactType %q", m.Subject, m.ArtifactType)
			}
			if got := layerText(t, img); got != spdxDoc {
				t.Errorf("copy holds %q, want %q", got, spdxDoc)
			}
			tagRef, _ := name.NewTag(dstRepo + ":" + signed.CosignTag(nd.Digest, ".sbom"))
			timg, err := remote.Image(tagRef)
			if err != nil {
				t.Fatalf("the cosign .sbom tag of the new digest: %v", err)
			}
			if got := layerText(t, timg); got != spdxDoc {
				t.Errorf(".sbom copy holds %q", got)
			}
		})
	}
}

func layerText(t *testing.T, img v1.Image) string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil || len(ls) != 1 {
		t.Fatalf("layers: %d, %v", len(ls), err)
	}
	rc, err := ls[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

func TestCopySBOMsNeedsRegistries(t *testing.T) {
	as := []signed.Artifact{{Kind: signed.SBOM, Subject: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}}}
	nd := map[v1.Hash]v1.Descriptor{as[0].Subject: {}}
	if n := signed.CopySBOMs(context.Background(), ref(t, "oci:/tmp/x:a"), ref(t, "oci:/tmp/y:a"), imageref.Options{}, as, nd); n != 0 || as[0].CopyError == "" {
		t.Errorf("copied %d, error %q", n, as[0].CopyError)
	}
}

func TestFindLayout(t *testing.T) {
	dir := t.TempDir()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img := sourceImage(t, "v1")
	d, _ := partial.Descriptor(img)
	src := v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}
	named := func(n string) layout.Option {
		return layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": n})
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(lp.AppendImage(img, named("v1")))
	must(lp.AppendImage(testenv.CosignSignature(t, "app", src.Digest), named("example.com/app:"+signed.CosignTag(src.Digest, ".sig"))))
	sbom := testenv.SBOMReferrer(t, src, spdxDoc)
	must(lp.AppendImage(sbom))
	// Attached to another image: not ours.
	must(lp.AppendImage(testenv.SBOMReferrer(t, v1.Descriptor{MediaType: src.MediaType, Size: 1, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("b", 64)}}, spdxDoc)))

	found, err := signed.Find(context.Background(), ref(t, "oci:"+dir+":v1"), imageref.Options{}, src.Digest)
	if err != nil {
		t.Fatal(err)
	}
	sd, _ := sbom.Digest()
	if len(found) != 2 || found[0].Kind != signed.Signature || found[0].Via != signed.ViaTag ||
		found[1].Kind != signed.SBOM || found[1].Digest != sd {
		t.Fatalf("found %+v", found)
	}
}
