package imageref

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const testDigest = "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParse(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dig, err := v1.NewHash(testDigest)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in       string
		insecure bool
		want     Ref    // Name compared by Name() below
		wantName string // fully qualified registry name
		scheme   string // registry scheme, when checked
	}{
		{in: "oci:/data/layout", want: Ref{Kind: OCI, Path: "/data/layout"}},
		{in: "oci:/data/layout:v1.2", want: Ref{Kind: OCI, Path: "/data/layout", Tag: "v1.2"}},
		{in: "oci:/data/layout:1.0+build", want: Ref{Kind: OCI, Path: "/data/layout", Tag: "1.0+build"}},
		{in: "oci:rel/dir:latest", want: Ref{Kind: OCI, Path: filepath.Join(wd, "rel/dir"), Tag: "latest"}},
		{in: "oci:./x/../y", want: Ref{Kind: OCI, Path: filepath.Join(wd, "y")}},
		{in: "oci:/a:b/c", want: Ref{Kind: OCI, Path: "/a:b/c"}},
		{in: "oci:/a:b:c", want: Ref{Kind: OCI, Path: "/a:b", Tag: "c"}},
		{in: "oci:/data/layout@" + testDigest, want: Ref{Kind: OCI, Path: "/data/layout", Digest: dig}},
		{in: "oci:/data/x@y", want: Ref{Kind: OCI, Path: "/data/x@y"}},
		{in: "docker-archive:/tmp/app.tar", want: Ref{Kind: DockerArchive, Path: "/tmp/app.tar"}},
		{in: "docker-archive:app.tar", want: Ref{Kind: DockerArchive, Path: filepath.Join(wd, "app.tar")}},
		{in: "docker-archive:/tmp/app.tar:app", want: Ref{Kind: DockerArchive, Path: "/tmp/app.tar", Tag: "app"}},
		{in: "docker-archive:/tmp/app.tar:app:1.0", want: Ref{Kind: DockerArchive, Path: "/tmp/app.tar", Tag: "app:1.0"}},
		{in: "docker-archive:/tmp/app.tar:localhost:5000/team/app:1.0", want: Ref{Kind: DockerArchive, Path: "/tmp/app.tar", Tag: "localhost:5000/team/app:1.0"}},
		{in: "ubuntu", want: Ref{Kind: Registry}, wantName: "index.docker.io/library/ubuntu:latest", scheme: "https"},
		{in: "docker://ubuntu:22.04", want: Ref{Kind: Registry}, wantName: "index.docker.io/library/ubuntu:22.04"},
		{in: "example.com/team/app:1.0", want: Ref{Kind: Registry}, wantName: "example.com/team/app:1.0", scheme: "https"},
		{in: "example.com/team/app:1.0", insecure: true, want: Ref{Kind: Registry}, wantName: "example.com/team/app:1.0", scheme: "http"},
		{in: "example.com/app@" + testDigest, want: Ref{Kind: Registry}, wantName: "example.com/app@" + testDigest},
		{in: "localhost:5000/app", want: Ref{Kind: Registry}, wantName: "localhost:5000/app:latest", scheme: "http"},
		{in: "dir:5000/app", want: Ref{Kind: Registry}, wantName: "dir:5000/app:latest"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in, tc.insecure)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tc.want.Kind == Registry {
				if got.Kind != Registry || got.Name == nil {
					t.Fatalf("got %+v, want a registry reference", got)
				}
				if got.Name.Name() != tc.wantName {
					t.Errorf("Name = %q, want %q", got.Name.Name(), tc.wantName)
				}
				if tc.scheme != "" && got.Name.Context().Scheme() != tc.scheme {
					t.Errorf("scheme = %q, want %q", got.Name.Context().Scheme(), tc.scheme)
				}
				if got.String() != tc.wantName {
					t.Errorf("String() = %q, want %q", got.String(), tc.wantName)
				}
				return
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in   string
		form string // the expected form the message names
	}{
		{"", "oci:DIR[:TAG]"},
		{"  ", "oci:DIR[:TAG]"},
		{"oci:", "oci:DIR[:TAG]"},
		{"oci::v1", "oci:DIR[:TAG]"},
		{"oci:/dir:", "oci:DIR[:TAG]"},
		{"oci:/dir:has space", "oci:DIR[:TAG]"},
		{"oci:/dir@sha256:abc", "oci:DIR@sha256:HEX"},
		{"oci:/dir:v1@" + testDigest, "oci:DIR@sha256:HEX"},
		{"docker-archive:", "docker-archive:FILE"},
		{"docker-archive::app:1", "docker-archive:FILE"},
		{"docker-archive:/x.tar:", "docker-archive:FILE"},
		{"docker-archive:/x.tar:Bad Tag", "docker-archive:FILE"},
		{"docker://", "a registry reference"},
		{"UPPER/case", "a registry reference"},
		{"example.com/app:bad tag", "a registry reference"},
		{"https://example.com/app", "oci:DIR[:TAG]"},
		{"oci-archive:/x.tar", "oci:DIR[:TAG]"},
		{"dir:/some/dir", "oci:DIR[:TAG]"},
		{"containers-storage:app", "oci:DIR[:TAG]"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in, false)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tc.in, got)
			}
			if !errors.Is(err, ErrInvalidReference) {
				t.Errorf("error %v does not wrap ErrInvalidReference", err)
			}
			if !strings.Contains(err.Error(), "expected") || !strings.Contains(err.Error(), tc.form) {
				t.Errorf("error %q does not name the expected form %q", err, tc.form)
			}
		})
	}
}

func TestStringRoundTrip(t *testing.T) {
	for _, s := range []string{
		"oci:/data/layout",
		"oci:/data/layout:v1",
		"oci:/data/layout@" + testDigest,
		"docker-archive:/tmp/app.tar",
		"docker-archive:/tmp/app.tar:example.com/app:1.0",
		"example.com/app:1.0",
		"example.com/app@" + testDigest,
	} {
		r, err := Parse(s, false)
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		if r.String() != s {
			t.Errorf("Parse(%q).String() = %q", s, r.String())
		}
		again, err := Parse(r.String(), false)
		if err != nil {
			t.Fatalf("Parse(%q): %v", r.String(), err)
		}
		if again.String() != r.String() {
			t.Errorf("round trip of %q gives %q", r.String(), again.String())
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Registry: "registry", OCI: "oci", DockerArchive: "docker-archive", 0: "Kind(0)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}

func TestSame(t *testing.T) {
	lookup := lookupHost
	t.Cleanup(func() { lookupHost = lookup })
	lookupHost = func(host string) ([]string, error) {
		switch host {
		case "localhost":
			return []string{"127.0.0.1", "::1"}, nil
		case "registry.test":
			return []string{"10.1.2.3"}, nil
		}
		return nil, errors.New("no such host")
	}
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "app.tar")
	if err := os.WriteFile(archive, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(archive, filepath.Join(dir, "hard.tar")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		src, dst string
		want     bool
	}{
		{"example.com/app:1.0", "example.com/app:1.0", true},
		{"docker.io/library/ubuntu", "ubuntu:latest", true},
		{"index.docker.io/library/ubuntu:22.04", "ubuntu:22.04", true},
		{"example.com/app:1.0", "example.com/app:1.0-slim", false},
		{"example.com/app:1.0", "other.com/app:1.0", false},
		{"127.0.0.1:5055/app:v1", "localhost:5055/app:v1", true},
		{"localhost:5055/app:v1", "127.0.0.1:5055/app:v1", true},
		{"[::1]:5055/app:v1", "localhost:5055/app:v1", true},
		{"127.0.0.1:5055/app:v1", "localhost:5056/app:v1", false},
		{"127.0.0.1:5055/app:v1", "localhost:5055/other:v1", false},
		{"registry.test/app:v1", "10.1.2.3/app:v1", true},
		{"registry.test/app:v1", "10.1.2.4/app:v1", false},
		{"registry.test:443/app:v1", "registry.test/app:v1", true},
		{"example.com/app@" + testDigest, "example.com/app@" + testDigest, false},
		{"example.com/app@" + testDigest, "example.com/app:latest", false},
		{"oci:" + real + ":v1", "oci:" + real + ":v1", true},
		{"oci:" + real, "oci:" + real, true},
		{"oci:" + real + ":v1", "oci:" + filepath.Join(dir, "link") + ":v1", true},
		{"oci:" + real + ":v1", "oci:" + real + "/:v1", true},
		{"oci:" + real + ":v1", "oci:" + real + ":v2", false},
		{"oci:" + real + ":v1", "oci:" + real, false},
		{"oci:" + real + "@" + testDigest, "oci:" + real, false},
		{"oci:" + real + ":v1", "oci:" + filepath.Join(dir, "other") + ":v1", false},
		{"docker-archive:" + archive + ":app:1", "docker-archive:" + archive + ":app:2", true},
		{"docker-archive:" + archive, "docker-archive:" + filepath.Join(dir, "hard.tar"), true},
		{"docker-archive:" + archive, "docker-archive:" + filepath.Join(dir, "new.tar"), false},
		{"oci:" + archive, "docker-archive:" + archive, false},
		{"docker-archive:" + filepath.Join(real, "new.tar"), "docker-archive:" + filepath.Join(dir, "link", "new.tar"), true},
		{"oci:" + filepath.Join(real, "new") + ":x", "oci:" + filepath.Join(dir, "link", "new") + ":x", true},
		{"docker-archive:" + filepath.Join(real, "new.tar"), "docker-archive:" + filepath.Join(dir, "link", "other.tar"), false},
	}
	for _, tc := range tests {
		src, err := Parse(tc.src, false)
		if err != nil {
			t.Fatal(err)
		}
		dst, err := Parse(tc.dst, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := Same(src, dst); got != tc.want {
			t.Errorf("Same(%s, %s) = %v, want %v", tc.src, tc.dst, got, tc.want)
		}
	}
}

func TestRegistryNameInsecure(t *testing.T) {
	r, err := Parse("example.com/app:1", false)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Options{Insecure: true}.registryName(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Context().Scheme(); got != "http" {
		t.Errorf("scheme with Options.Insecure = %q, want http", got)
	}
	if _, ok := n.(name.Tag); !ok || n.Name() != r.Name.Name() {
		t.Errorf("re-parsed name %v differs from %v", n, r.Name)
	}
}

func TestParseRedactsUserinfo(t *testing.T) {
	for _, s := range []string{
		"https://alice:hunter2@registry.example/app:1",
		"docker://alice:hunter2@registry.example/app:1",
		"alice:hunter2@registry.example/app:1",
		"alice:hunter2@registry.example",
	} {
		_, err := Parse(s, false)
		if err == nil {
			t.Errorf("Parse(%q) worked", s)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Parse(%q): the error holds the password: %q", s, err)
		}
	}
	for s, want := range map[string]string{
		"ubuntu@sha256:abc":            "ubuntu@sha256:abc",
		"host/repo@sha256:abc":         "host/repo@sha256:abc",
		"u:p@host/repo":                "REDACTED@host/repo",
		"https://u:p@host:5000/x":      "https://REDACTED@host:5000/x",
		"u:p@sha256:abc":               "u:p@sha256:abc",
		"registry.example/app:1 extra": "registry.example/app:1 extra",
	} {
		if got := redactUserinfo(s); got != want {
			t.Errorf("redactUserinfo(%q) = %q, want %q", s, got, want)
		}
	}
}
