package verify_test

import (
	"archive/tar"
	"bytes"
	"io"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/layerslim/layerslim/verify"
)

// mtime is the default modification time of test entries.
var mtime = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// ent is one tar entry of a test layer.
type ent struct {
	hdr  tar.Header
	body []byte
}

// opt changes a test entry.
type opt func(*ent)

func mode(m int64) opt          { return func(e *ent) { e.hdr.Mode = m } }
func owner(uid, gid int) opt    { return func(e *ent) { e.hdr.Uid, e.hdr.Gid = uid, gid } }
func modTime(t time.Time) opt   { return func(e *ent) { e.hdr.ModTime = t } }
func xattr(k, v string) opt     { return func(e *ent) { e.hdr.PAXRecords["SCHILY.xattr."+k] = v } }
func device(maj, min int64) opt { return func(e *ent) { e.hdr.Devmajor, e.hdr.Devminor = maj, min } }

func mk(name string, typ byte, m int64, body []byte, opts []opt) ent {
	e := ent{hdr: tar.Header{Name: name, Typeflag: typ, Mode: m, ModTime: mtime, PAXRecords: map[string]string{}, Format: tar.FormatPAX}, body: body}
	for _, o := range opts {
		o(&e)
	}
	e.hdr.Size = int64(len(e.body))
	return e
}

func file(name, body string, opts ...opt) ent {
	return mk(name, tar.TypeReg, 0o644, []byte(body), opts)
}

func binFile(name string, body []byte, opts ...opt) ent {
	return mk(name, tar.TypeReg, 0o755, body, opts)
}

func dir(name string, opts ...opt) ent { return mk(name+"/", tar.TypeDir, 0o755, nil, opts) }

func symlink(name, target string, opts ...opt) ent {
	e := mk(name, tar.TypeSymlink, 0o777, nil, opts)
	e.hdr.Linkname = target
	return e
}

func hardlink(name, target string) ent {
	e := mk(name, tar.TypeLink, 0o644, nil, nil)
	e.hdr.Linkname = target
	return e
}

func chardev(name string, opts ...opt) ent { return mk(name, tar.TypeChar, 0o666, nil, opts) }

// whiteout deletes name from lower layers; opaque(dir) hides dir's lower
// children.
func whiteout(dirName, base string) ent {
	p := ".wh." + base
	if dirName != "" {
		p = dirName + "/" + p
	}
	return mk(p, tar.TypeReg, 0o600, nil, nil)
}

func opaque(dirName string) ent { return whiteout(dirName, ".wh..opq") }

// tarBytes writes entries as a tar stream.
func tarBytes(t testing.TB, ents []ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := e.hdr
		if len(h.PAXRecords) == 0 {
			h.PAXRecords = nil
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func layerOf(t testing.TB, ents ...ent) v1.Layer {
	t.Helper()
	b := tarBytes(t, ents)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// config is the default test config; change it with a func.
func config() v1.ConfigFile {
	return v1.ConfigFile{
		OS: "linux", Architecture: "amd64",
		Config: v1.Config{
			Entrypoint: []string{"/app/hello"},
			Env:        []string{"PATH=/usr/bin", "APP_MODE=production"},
			User:       "1000:1000",
			WorkingDir: "/app",
			Labels:     map[string]string{"org.example": "yes"},
		},
	}
}

// imageOf builds an image with the default config (changed by cfg if not
// nil) and one layer per entry list.
func imageOf(t testing.TB, cfg func(*v1.ConfigFile), layers ...[]ent) v1.Image {
	t.Helper()
	c := config()
	if cfg != nil {
		cfg(&c)
	}
	img, err := mutate.ConfigFile(empty.Image, &c)
	if err != nil {
		t.Fatal(err)
	}
	for _, ents := range layers {
		img, err = mutate.AppendLayers(img, layerOf(t, ents...))
		if err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// got is the part of a Difference the table tests compare.
type got struct {
	Path, What string
	Verdict    verify.Verdict
}

func summarize(r *verify.Result) []got {
	var out []got
	for _, d := range r.Differences {
		out = append(out, got{d.Path, d.What, d.Verdict})
	}
	return out
}

func concat(lists ...[]ent) []ent {
	var out []ent
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// replace returns ents with the entry named name replaced by e (or
// removed when e has no name).
func replace(ents []ent, name string, e ent) []ent {
	var out []ent
	for _, x := range ents {
		switch {
		case x.hdr.Name != name:
			out = append(out, x)
		case e.hdr.Name != "":
			out = append(out, e)
		}
	}
	return out
}
