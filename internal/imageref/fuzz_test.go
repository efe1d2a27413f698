package imageref

import (
	"errors"
	"testing"
)

// FuzzParseReference parses arbitrary strings as image references. Nothing
// may panic, every error wraps ErrInvalidReference, and the canonical form
// of what parses parses again to the same Ref.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{
		"ubuntu", "ubuntu:24.04", "docker.io/library/ubuntu:latest", "docker://ghcr.io/org/app:v1",
		"localhost:5000/app@sha256:" + hex64, "127.0.0.1:5000/a/b/c:1.0", "[::1]:5000/app:t",
		"oci:./out", "oci:/tmp/layout:v1", "oci:dir@sha256:" + hex64, "oci:./a:b/c", "oci:x:1.0+build",
		"docker-archive:app.tar", "docker-archive:app.tar:example.com/app:1.0",
		"", " ", "oci:", "oci::t", "docker-archive:", "docker-archive:f:", "containers-storage:app",
		"http://host/app", "UPPER/app", "app:", "app@sha256:short",
	} {
		f.Add(s, false)
	}
	f.Add("registry.local/app:1", true)
	f.Fuzz(func(t *testing.T, s string, insecure bool) {
		r, err := Parse(s, insecure)
		if err != nil {
			if !errors.Is(err, ErrInvalidReference) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalidReference", s, err)
			}
			return
		}
		canon := r.String()
		r2, err := Parse(canon, insecure)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", s, canon, err)
		}
		if r2.String() != canon || r2.Kind != r.Kind || r2.Path != r.Path || r2.Tag != r.Tag || r2.Digest != r.Digest {
			t.Fatalf("Parse(%q) = %#v; its canonical form %q parses to %#v", s, r, canon, r2)
		}
		if r.Kind == Registry && (r2.Name.Name() != r.Name.Name() || r2.Name.Context().Scheme() != r.Name.Context().Scheme()) {
			t.Fatalf("Parse(%q) names %s (%s); its canonical form %q names %s (%s)", s,
				r.Name.Name(), r.Name.Context().Scheme(), canon, r2.Name.Name(), r2.Name.Context().Scheme())
		}
	})
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
