// Package imageref parses the image references layerslim accepts and
// dispatches reads and writes to the transport each one names:
//
//	host/repo:tag, host/repo@sha256:HEX   a registry ("docker://" prefix accepted): package registry
//	oci:DIR[:TAG], oci:DIR@sha256:HEX     an OCI image layout directory: package ocilayout
//	docker-archive:FILE[:REPO[:TAG]]      a `docker save` tarball: package dockerarchive
//
// Parse turns a string into a Ref; Open reads what a Ref names and never
// writes; WriteImage and WriteIndex write there, content before names;
// CheckWrite and CheckLayersPresent tell before any work whether a write
// would fail. Same and WithSuffix compare and derive references.
//
// It owns the reference syntax and the choice of transport, nothing else:
// each transport lives in its own subpackage, the HTTP client that talks to
// registries (credentials, TLS, retries, error explanations) in
// internal/registryclient, and what the transports share (size caps,
// selection errors, regular-file reads) in imageref/refio.
package imageref

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/internal/imageref/refio"
)

// Kind says where a Ref points.
type Kind int

// The kinds of reference. The zero Kind is not valid.
const (
	Registry      Kind = iota + 1 // a registry repository, by tag or digest
	OCI                           // an OCI image layout directory
	DockerArchive                 // a `docker save` tarball
)

func (k Kind) String() string {
	switch k {
	case Registry:
		return "registry"
	case OCI:
		return "oci"
	case DockerArchive:
		return "docker-archive"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Ref is a parsed image reference.
type Ref struct {
	Kind Kind
	// Name is the registry reference (a name.Tag or a name.Digest); Registry only.
	Name name.Reference
	// Path is the OCI layout directory or the docker-archive file, absolute.
	Path string
	// Tag selects an OCI index.json entry by its org.opencontainers.image.ref.name
	// annotation, or a docker-archive image by one of its RepoTags ("repo:tag");
	// "" when none was given.
	Tag string
	// Digest selects an OCI layout manifest by digest (oci:DIR@sha256:HEX);
	// the zero Hash when none was given. OCI only.
	Digest v1.Hash
}

// Errors that callers may test for with errors.Is.
var (
	// ErrInvalidReference is wrapped by every Parse error.
	ErrInvalidReference = errors.New("invalid image reference")
	// ErrNotFound: the tag or digest is not in the OCI layout or docker archive,
	// or it holds no image at all.
	ErrNotFound = refio.ErrNotFound
	// ErrAmbiguous: no tag was given and the OCI layout or docker archive holds
	// several images, or the tag names several different ones.
	ErrAmbiguous = refio.ErrAmbiguous
	// ErrIndexUnsupported: an index cannot be written to a docker-archive.
	ErrIndexUnsupported = errors.New("a docker-archive holds single-platform images, not an index; select one platform with --platform")
	// ErrUnsupportedMediaType: what the reference names is neither an image
	// manifest nor an index.
	ErrUnsupportedMediaType = refio.ErrUnsupportedMediaType
	// ErrTooLarge: a manifest, config or index.json is over its cap
	// (refio.MaxManifestSize, MaxConfigSize, MaxIndexJSONSize).
	ErrTooLarge = refio.ErrTooLarge
	// ErrNotRegular: a file of a layout or a docker-archive is not a
	// regular file (a FIFO, a device, a directory).
	ErrNotRegular = refio.ErrNotRegular
)

const (
	ociPrefix     = "oci:"
	archivePrefix = "docker-archive:"
	dockerScheme  = "docker://"

	formAny      = "a registry reference (host/repo:tag or host/repo@sha256:HEX), oci:DIR[:TAG] or docker-archive:FILE[:TAG]"
	formRegistry = "a registry reference (host/repo:tag or host/repo@sha256:HEX)"
	formOCI      = "oci:DIR[:TAG] or oci:DIR@sha256:HEX"
	formArchive  = "docker-archive:FILE[:REPO[:TAG]]"
)

// otherTransports are skopeo/containers-image transports that layerslim does
// not read. Without this check name.ParseReference would take most of them
// for Docker Hub references ("oci-archive:x.tar" is docker.io/library/oci-archive:x.tar).
var otherTransports = []string{"oci-archive", "docker-daemon", "containers-storage", "dir", "ostree", "sif", "tarball"}

// Parse parses an image reference:
//
//   - "oci:DIR[:TAG]": TAG is the text after the last colon when that text
//     contains no '/'; otherwise the whole rest is DIR ("oci:./a:b/c" is the
//     directory "./a:b/c"). "oci:DIR@sha256:HEX" selects a manifest by digest;
//     a tag and a digest together are refused.
//   - "docker-archive:FILE[:TAG]": FILE ends at the first colon and everything
//     after it is the tag, which may itself hold a colon as `docker save`
//     RepoTags do ("docker-archive:app.tar:example.com/app:1.0"). FILE
//     therefore cannot contain a colon.
//   - "docker://REF" and anything else: a registry reference, parsed by
//     name.ParseReference (with name.Insecure when insecure is true, which
//     allows plain HTTP).
//
// DIR and FILE are made absolute. Errors wrap ErrInvalidReference and say
// which form was expected.
func Parse(s string, insecure bool) (Ref, error) {
	switch {
	case strings.TrimSpace(s) == "":
		return Ref{}, parseError(s, formAny, "empty reference")
	case strings.HasPrefix(s, ociPrefix):
		return parseOCI(s)
	case strings.HasPrefix(s, archivePrefix):
		return parseArchive(s)
	}
	return parseRegistry(s, insecure)
}

func parseError(s, form, msg string, errs ...error) error {
	s = redactUserinfo(s)
	if len(errs) > 0 && errs[0] != nil {
		return fmt.Errorf("%w %q: expected %s: %s: %w", ErrInvalidReference, s, form, msg, errs[0])
	}
	return fmt.Errorf("%w %q: expected %s: %s", ErrInvalidReference, s, form, msg)
}

func parseOCI(s string) (Ref, error) {
	rest := strings.TrimPrefix(s, ociPrefix)
	r := Ref{Kind: OCI}
	if i := strings.LastIndex(rest, "@"); i >= 0 && strings.HasPrefix(rest[i+1:], "sha256:") {
		h, err := v1.NewHash(rest[i+1:])
		if err != nil {
			return Ref{}, parseError(s, formOCI, "bad digest", err)
		}
		r.Digest = h
		rest = rest[:i]
	}
	dir := rest
	if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.Contains(rest[i+1:], "/") {
		dir, r.Tag = rest[:i], rest[i+1:]
		if err := checkOCITag(r.Tag); err != nil {
			return Ref{}, parseError(s, formOCI, err.Error())
		}
		if r.Digest != (v1.Hash{}) {
			return Ref{}, parseError(s, formOCI, "give a tag or a digest, not both")
		}
	}
	if dir == "" {
		return Ref{}, parseError(s, formOCI, "missing directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Ref{}, parseError(s, formOCI, "bad directory", err)
	}
	r.Path = abs
	return r, nil
}

// checkOCITag accepts what an org.opencontainers.image.ref.name value may
// reasonably hold; it is looser than a Docker tag (OCI allows "1.0+build").
func checkOCITag(tag string) error {
	if tag == "" {
		return errors.New("empty tag after ':'")
	}
	for _, c := range tag {
		if unicode.IsSpace(c) || unicode.IsControl(c) {
			return fmt.Errorf("tag %q contains white space or control characters", tag)
		}
	}
	return nil
}

func parseArchive(s string) (Ref, error) {
	rest := strings.TrimPrefix(s, archivePrefix)
	r := Ref{Kind: DockerArchive}
	file := rest
	if i := strings.Index(rest, ":"); i >= 0 {
		file, r.Tag = rest[:i], rest[i+1:]
		if r.Tag == "" {
			return Ref{}, parseError(s, formArchive, "empty tag after ':'")
		}
		if _, err := name.NewTag(r.Tag); err != nil {
			return Ref{}, parseError(s, formArchive, "bad tag", err)
		}
	}
	if file == "" {
		return Ref{}, parseError(s, formArchive, "missing file")
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return Ref{}, parseError(s, formArchive, "bad file", err)
	}
	r.Path = abs
	return r, nil
}

func parseRegistry(s string, insecure bool) (Ref, error) {
	t := strings.TrimPrefix(s, dockerScheme)
	if t == "" {
		return Ref{}, parseError(s, formRegistry, "missing repository")
	}
	if strings.Contains(t, "://") {
		return Ref{}, parseError(s, formAny, "URL schemes are not supported")
	}
	for _, p := range otherTransports {
		if rest, ok := strings.CutPrefix(t, p+":"); ok && (rest == "" || rest[0] < '0' || rest[0] > '9') {
			return Ref{}, parseError(s, formAny, fmt.Sprintf("the %s: transport is not supported", p))
		}
	}
	if redactUserinfo(t) != t {
		return Ref{}, parseError(s, formRegistry, "credentials (user:password@) do not belong in a reference; put them in the Docker config or a credential helper")
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	n, err := name.ParseReference(t, opts...)
	if err != nil {
		return Ref{}, parseError(s, formRegistry, "bad reference", err)
	}
	return Ref{Kind: Registry, Name: n}, nil
}

// String returns the canonical form of r: a fully qualified registry
// reference (index.docker.io/library/ubuntu:latest), or oci:/abs/dir[:TAG|@DIGEST],
// or docker-archive:/abs/file[:TAG].
func (r Ref) String() string {
	switch r.Kind {
	case Registry:
		if r.Name == nil {
			return "registry:<no name>"
		}
		return r.Name.Name()
	case OCI:
		s := ociPrefix + r.Path
		if i := strings.LastIndex(r.Path, ":"); i >= 0 && !strings.Contains(r.Path[i+1:], "/") {
			// A last element with a colon would read as DIR:TAG; a
			// trailing slash keeps it the directory's.
			s += "/"
		}
		if r.Tag != "" {
			s += ":" + r.Tag
		}
		if r.Digest != (v1.Hash{}) {
			s += "@" + r.Digest.String()
		}
		return s
	case DockerArchive:
		s := archivePrefix + r.Path
		if r.Tag != "" {
			s += ":" + r.Tag
		}
		return s
	}
	return fmt.Sprintf("<invalid reference of kind %v>", r.Kind)
}

// Same reports whether writing to dst would replace the image that src
// names: the same registry repository and tag; the same OCI layout
// directory and tag (both untagged counts as the same); the same
// docker-archive file, whatever the tags, since writing replaces the file.
// A source or destination given by digest is never the same: content by
// digest cannot be overwritten. Directories and files are compared by path
// and, when both exist, by identity (os.SameFile), so symbolic links and
// hard links are seen through. Registries are compared as the connection
// sees them: the same port, and host names that resolve to a common
// address (127.0.0.1:5000 and localhost:5000 are one registry).
func Same(src, dst Ref) bool {
	if src.Kind != dst.Kind {
		return false
	}
	switch src.Kind {
	case Registry:
		st, ok1 := src.Name.(name.Tag)
		dt, ok2 := dst.Name.(name.Tag)
		return ok1 && ok2 && st.TagStr() == dt.TagStr() && st.RepositoryStr() == dt.RepositoryStr() &&
			sameRegistry(st.Registry, dt.Registry)
	case OCI:
		return src.Digest == (v1.Hash{}) && dst.Digest == (v1.Hash{}) && src.Tag == dst.Tag && samePath(src.Path, dst.Path)
	case DockerArchive:
		return samePath(src.Path, dst.Path)
	}
	return false
}

// WithSuffix is the reference next to r that a companion image (the debug
// image of r) takes: r's tag with suffix added (latest+suffix for an
// untagged layout), or for a docker-archive the file name with suffix
// before its extension (and the tag, if any, with suffix). r must not be a
// reference by digest.
func WithSuffix(r Ref, suffix string, insecure bool) (Ref, error) {
	out := r
	switch r.Kind {
	case Registry:
		tag, ok := r.Name.(name.Tag)
		if !ok {
			return out, fmt.Errorf("%s is a digest", r)
		}
		var opts []name.Option
		if insecure {
			opts = append(opts, name.Insecure)
		}
		t, err := name.NewTag(tag.Context().String()+":"+tag.TagStr()+suffix, opts...)
		if err != nil {
			return out, err
		}
		out.Name = t
	case OCI:
		if r.Digest != (v1.Hash{}) {
			return out, fmt.Errorf("%s is a digest", r)
		}
		out.Tag = r.Tag + suffix
		if r.Tag == "" {
			out.Tag = "latest" + suffix
		}
	case DockerArchive:
		ext := filepath.Ext(r.Path)
		out.Path = strings.TrimSuffix(r.Path, ext) + suffix + ext
		if r.Tag != "" {
			out.Tag = r.Tag + suffix
		}
	}
	return out, nil
}

// lookupHost resolves a registry's host name for sameRegistry.
var lookupHost = func(host string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return net.DefaultResolver.LookupHost(ctx, host)
}

// sameRegistry reports whether a and b name one registry: the same name, or
// the same port on hosts that share an address.
func sameRegistry(a, b name.Registry) bool {
	if a.Name() == b.Name() {
		return true
	}
	ha, pa := hostPort(a)
	hb, pb := hostPort(b)
	if pa != pb {
		return false
	}
	addrs := func(h string) map[string]bool {
		m := map[string]bool{}
		if ip := net.ParseIP(h); ip != nil {
			m[ip.String()] = true
			return m
		}
		as, err := lookupHost(h)
		if err != nil {
			return m
		}
		for _, s := range as {
			if ip := net.ParseIP(s); ip != nil {
				m[ip.String()] = true
			}
		}
		return m
	}
	aa := addrs(ha)
	for x := range addrs(hb) {
		if aa[x] {
			return true
		}
	}
	return false
}

// hostPort splits a registry's host and port; the default ports (443, 80,
// or none given) are all "": an insecure registry may be reached on either.
func hostPort(r name.Registry) (host, port string) {
	h := r.RegistryStr()
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		host, port = strings.Trim(h, "[]"), ""
	}
	if port == "443" || port == "80" {
		port = ""
	}
	return strings.ToLower(host), port
}

func samePath(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	switch {
	case errA == nil && errB == nil:
		return os.SameFile(fa, fb)
	case errA == nil || errB == nil:
		return false
	}
	// Neither exists yet (DST and its debug image): the same name in the
	// same directory, symbolic links resolved.
	ra, rb := resolvedParent(a), resolvedParent(b)
	return ra != "" && ra == rb
}

func resolvedParent(p string) string {
	d, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err != nil {
		return ""
	}
	return filepath.Join(d, filepath.Base(p))
}

// redactUserinfo hides what looks like user information in a reference
// ("https://user:secret@host/…", "user:secret@host/…") before an error
// quotes it: a password typed into a reference must not reach a log.
func redactUserinfo(s string) string {
	prefix, rest := "", s
	if i := strings.Index(s, "://"); i >= 0 {
		prefix, rest = s[:i+3], s[i+3:]
	}
	host, _, hasPath := strings.Cut(rest, "/")
	i := strings.LastIndex(host, "@")
	if i < 0 {
		return s
	}
	if after := host[i+1:]; !hasPath && (strings.HasPrefix(after, "sha256:") || strings.HasPrefix(after, "sha384:") || strings.HasPrefix(after, "sha512:")) {
		return s // "repo@sha256:…" is a digest, not user information
	}
	return prefix + "REDACTED" + rest[i:]
}
