package testenv

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

var repoIDs atomic.Int64

var repoUnsafe = regexp.MustCompile(`[^a-z0-9]+`)

// Repo returns a repository in the test registry that no other test and no
// earlier run uses: REGISTRY/layerslim-test/<test name>-<pid>-<n>. Append
// ":tag" or "@digest" to it.
func Repo(t testing.TB) string {
	t.Helper()
	reg := Registry(t)
	base := strings.Trim(repoUnsafe.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 60 {
		base = strings.TrimRight(base[:60], "-")
	}
	return fmt.Sprintf("%s/layerslim-test/%s-%d-%d", reg, base, os.Getpid(), repoIDs.Add(1))
}

// ParseRef parses ref, allowing plain HTTP (the test registry has no TLS).
func ParseRef(t testing.TB, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatalf("testenv.ParseRef: %v", err)
	}
	return r
}

func remoteOpts(t testing.TB) []remote.Option {
	return []remote.Option{remote.WithContext(t.Context())}
}

// PushImage writes img to ref with remote.Write and returns ref@digest.
func PushImage(t testing.TB, img v1.Image, ref string) string {
	t.Helper()
	r := ParseRef(t, ref)
	if err := remote.Write(r, img, remoteOpts(t)...); err != nil {
		t.Fatalf("testenv.PushImage(%s): %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return r.Context().Digest(d.String()).String()
}

// PushIndex writes idx and all its images to ref with remote.WriteIndex and
// returns ref@digest.
func PushIndex(t testing.TB, idx v1.ImageIndex, ref string) string {
	t.Helper()
	r := ParseRef(t, ref)
	if err := remote.WriteIndex(r, idx, remoteOpts(t)...); err != nil {
		t.Fatalf("testenv.PushIndex(%s): %v", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return r.Context().Digest(d.String()).String()
}

// RemoteImage reads the image at ref from the registry (lazily, as layerslim does).
func RemoteImage(t testing.TB, ref string) v1.Image {
	t.Helper()
	img, err := remote.Image(ParseRef(t, ref), remoteOpts(t)...)
	if err != nil {
		t.Fatalf("testenv.RemoteImage(%s): %v", ref, err)
	}
	return img
}

// RemoteIndex reads the index at ref from the registry.
func RemoteIndex(t testing.TB, ref string) v1.ImageIndex {
	t.Helper()
	idx, err := remote.Index(ParseRef(t, ref), remoteOpts(t)...)
	if err != nil {
		t.Fatalf("testenv.RemoteIndex(%s): %v", ref, err)
	}
	return idx
}

// PushArtifact writes img (an image or an artifact manifest) to ref and
// returns its descriptor: media type, size and digest, nothing else.
func PushArtifact(t testing.TB, img v1.Image, ref string) v1.Descriptor {
	t.Helper()
	if err := remote.Write(ParseRef(t, ref), img, remoteOpts(t)...); err != nil {
		t.Fatalf("testenv.PushArtifact(%s): %v", ref, err)
	}
	d, err := partial.Descriptor(img)
	if err != nil {
		t.Fatal(err)
	}
	return v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}
}

// PushArtifactByDigest writes img to repo by its digest (no tag), as
// PushArtifact does.
func PushArtifactByDigest(t testing.TB, img v1.Image, repo string) v1.Descriptor {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return PushArtifact(t, img, repo+"@"+h.String())
}
