// Command image builds layerslim's own container image without a Docker
// engine, as ko does: it cross-compiles layerslim for each platform and
// assembles an OCI index with go-containerregistry.
//
//	go run ./build/image [flags] DST
//
// DST is any layerslim destination: host/repo:tag (credentials from the
// Docker config), oci:DIR[:TAG] or, with one --platform, docker-archive:FILE.
// Each image holds two layers: the base (/etc/passwd and /etc/group with the
// non-root user layerslim, 65532:65532, CA certificates, /tmp and the
// user's home), the same bytes for every platform, and the layerslim binary
// (CGO off, -trimpath) at /usr/local/bin/layerslim, the entrypoint. It runs
// as 65532:65532 and carries the OCI labels and annotations source,
// version, revision and created.
//
// Reproducible: file times and the created time are SOURCE_DATE_EPOCH, or
// else the commit's time; the CA certificates are the Mozilla roots of the
// golang.org/x/crypto/x509roots/fallback module that go.sum pins; two builds
// of one commit with one Go version give one digest. The digest of the
// index is printed on stdout.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"

	"github.com/layerslim/layerslim/build/internal/buildenv"
	"github.com/layerslim/layerslim/internal/cli"
	"github.com/layerslim/layerslim/internal/imageref"
)

// The user the image runs as.
const (
	uid, gid = 65532, 65532
	user     = "layerslim"
	home     = "/home/layerslim"
	binPath  = "usr/local/bin/layerslim"
	source   = "https://github.com/layerslim/layerslim"
)

func main() { buildenv.Main("build/image", run) }

type options struct {
	platforms []v1.Platform
	version   string
	commit    string
	insecure  bool
	dst       imageref.Ref
	src       *buildenv.Source
}

func parse(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("build/image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	plats := fs.String("platform", "linux/amd64,linux/arm64", "platforms, as os/arch[/variant],…")
	o := &options{}
	fs.StringVar(&o.version, "version", cli.Version, "the version the binary and the labels carry")
	fs.StringVar(&o.commit, "commit", "", "the commit (default: git rev-parse HEAD)")
	fs.BoolVar(&o.insecure, "insecure", false, "allow plain HTTP and unverified TLS to the registry")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./build/image [flags] DST")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, buildenv.UsageError{Err: err}
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return nil, buildenv.UsageError{Err: errors.New("want one DST")}
	}
	for _, s := range strings.Split(*plats, ",") {
		p, err := v1.ParsePlatform(strings.TrimSpace(s))
		if err != nil || p.OS == "" || p.Architecture == "" {
			return nil, buildenv.UsageError{Err: fmt.Errorf("--platform %q: want os/arch[/variant]", s)}
		}
		o.platforms = append(o.platforms, *p)
	}
	dst, err := imageref.Parse(fs.Arg(0), o.insecure)
	if err != nil {
		return nil, buildenv.UsageError{Err: fmt.Errorf("DST: %w", err)}
	}
	o.dst = dst
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	if o.src, err = buildenv.Find(ctx, o.commit); err != nil {
		return err
	}
	idx, err := build(ctx, o, stderr)
	if err != nil {
		return err
	}
	h, err := imageref.WriteIndex(ctx, o.dst, idx, imageref.Options{Insecure: o.insecure, UserAgent: "layerslim-build/" + o.version})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, h)
	return nil
}

// build assembles the index: one image per platform, in the order given.
func build(ctx context.Context, o *options, log io.Writer) (v1.ImageIndex, error) {
	base, err := baseLayer(o.src.Time)
	if err != nil {
		return nil, fmt.Errorf("base layer: %w", err)
	}
	tmp, err := os.MkdirTemp("", "layerslim-image-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	annotations := map[string]string{
		"org.opencontainers.image.source":   source,
		"org.opencontainers.image.version":  o.version,
		"org.opencontainers.image.revision": o.src.Commit,
		"org.opencontainers.image.created":  o.src.Time.Format(time.RFC3339),
		"org.opencontainers.image.title":    "layerslim",
	}
	var adds []mutate.IndexAddendum
	for _, p := range o.platforms {
		fmt.Fprintf(log, "building layerslim %s for %s\n", o.version, p)
		bin, err := compile(ctx, o, p, tmp)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		img, err := platformImage(o, p, base, bin, annotations)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx, adds...)
	return mutate.Annotations(idx, annotations).(v1.ImageIndex), nil
}

// compile cross-compiles layerslim as a release does.
func compile(ctx context.Context, o *options, p v1.Platform, dir string) ([]byte, error) {
	out := filepath.Join(dir, "layerslim-"+strings.ReplaceAll(p.String(), "/", "-"))
	if err := o.src.Compile(ctx, p.OS, p.Architecture, p.Variant, o.version, out); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}

func platformImage(o *options, p v1.Platform, base v1.Layer, bin []byte, annotations map[string]string) (v1.Image, error) {
	binLayer, err := layer([]file{
		{name: "usr/", dir: true}, {name: "usr/local/", dir: true}, {name: "usr/local/bin/", dir: true},
		{name: binPath, mode: 0o755, body: bin},
	}, o.src.Time)
	if err != nil {
		return nil, fmt.Errorf("binary layer: %w", err)
	}
	created := v1.Time{Time: o.src.Time}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{
			Created: created, CreatedBy: "build/image: /etc/passwd, /etc/group, CA certificates, /tmp, " + home, Comment: "layerslim base"}},
		mutate.Addendum{Layer: binLayer, MediaType: types.OCILayer, History: v1.History{
			Created: created, CreatedBy: "build/image: /" + binPath + " " + o.version + " (" + o.src.Commit + ")"}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant, cf.OSVersion = p.OS, p.Architecture, p.Variant, p.OSVersion
	cf.Created = created
	cf.Author = source
	cf.Config = v1.Config{
		Entrypoint: []string{"/" + binPath},
		User:       fmt.Sprintf("%d:%d", uid, gid),
		WorkingDir: home,
		Env: []string{
			"PATH=/usr/local/bin:/usr/bin:/bin",
			"HOME=" + home,
			"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
		},
		Labels: annotations,
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, annotations).(v1.Image), nil
}

// baseLayer holds what every platform shares.
func baseLayer(epoch time.Time) (v1.Layer, error) {
	var certs bytes.Buffer
	n := 0
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue // a distrust date a PEM file cannot say: leave the root out
		}
		if err := pem.Encode(&certs, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate}); err != nil {
			return nil, err
		}
		n++
	}
	if n == 0 {
		return nil, errors.New("no CA certificates in the bundle")
	}
	return layer([]file{
		{name: "etc/", dir: true},
		{name: "etc/group", mode: 0o644, body: fmt.Appendf(nil, "root:x:0:\n%s:x:%d:\n", user, gid)},
		{name: "etc/passwd", mode: 0o644, body: fmt.Appendf(nil,
			"root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:%s:/sbin/nologin\n", user, uid, gid, user, home)},
		{name: "etc/ssl/", dir: true},
		{name: "etc/ssl/certs/", dir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, body: certs.Bytes()},
		{name: "home/", dir: true},
		{name: strings.TrimPrefix(home, "/") + "/", dir: true, mode: 0o700, uid: uid, gid: gid},
		{name: "tmp/", dir: true, mode: 0o1777},
	}, epoch)
}

type file struct {
	name     string
	dir      bool
	mode     int64
	uid, gid int
	body     []byte
}

// layer writes files, in the order given, as an uncompressed tar with
// fixed times and owners, and returns it as a gzip layer (ggcr compresses
// it, the same bytes every time).
func layer(files []file, epoch time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.gid, ModTime: epoch, Format: tar.FormatPAX}
		if f.dir {
			h.Typeflag = tar.TypeDir
			if h.Mode == 0 {
				h.Mode = 0o755
			}
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
