package rewrite

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/drop"
	"github.com/layerslim/layerslim/internal/testenv"
	"github.com/layerslim/layerslim/tarfilter"
)

// spanTar is testenv.TarLayer(entries), returned with the offset at which
// each entry's record (header blocks, body, padding) starts; the last
// offset is where the end-of-archive blocks start. TarLayer writes each
// entry the same whatever follows it, so an entry starts where the tar of
// the ones before it puts its end-of-archive blocks.
func spanTar(t testing.TB, entries []testenv.File) ([]byte, []int) {
	t.Helper()
	var offs []int
	for i := range entries {
		offs = append(offs, len(testenv.TarLayer(t, entries[:i]))-1024)
	}
	data := testenv.TarLayer(t, entries)
	return data, append(offs, len(data)-1024)
}

// without returns the archive with the records of the named entries cut
// out, byte for byte.
func without(data []byte, offs []int, entries []testenv.File, names map[string]bool) []byte {
	var out []byte
	for i, e := range entries {
		if !names[e.Name] {
			out = append(out, data[offs[i]:offs[i+1]]...)
		}
	}
	return append(out, data[offs[len(entries)]:]...)
}

type recorded struct{ changes []Change }

func (r *recorded) Record(c Change) { r.changes = append(r.changes, c) }

func TestDropFilter(t *testing.T) {
	capability := map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}
	long := "tmp/" + strings.Repeat("long-directory-name/", 8) + "file.txt"
	entries := []testenv.File{
		{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/passwd", Body: []byte("root:x:0:0:root:/root:/bin/sh\n")},
		{Name: "usr/bin/ping", Mode: 0o4755, Body: []byte("\x7fELF not really"), PAXRecords: capability},
		{Name: "var/lib/apt/lists/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "var/lib/apt/lists/partial/", Typeflag: tar.TypeDir, Mode: 0o700},
		{Name: "var/lib/apt/lists/lock", Mode: 0o640},
		{Name: "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages", Body: []byte(strings.Repeat("Package: x\n", 300))},
		{Name: "usr/share/doc/bash/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/share/doc/bash/README", Body: []byte(strings.Repeat("r", 513))},
		{Name: "usr/share/doc/bash/copyright", Body: []byte("GPL-3+\n")},
		{Name: "usr/share/doc/.wh..wh..opq"},
		{Name: "usr/share/man/man1/sh.1.gz", Typeflag: tar.TypeSymlink, Linkname: "dash.1.gz"},
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
		{Name: "tmp/.wh.old-build"},
		{Name: "./tmp/data", Body: []byte("cached data")},
		{Name: long, Body: []byte(strings.Repeat("l", 1000))},
		// A link to a dropped file is dropped, whatever names it, and so
		// is a link to that link.
		{Name: "opt/data-link", Typeflag: tar.TypeLink, Linkname: "tmp/data"},
		{Name: "opt/chain", Typeflag: tar.TypeLink, Linkname: "opt/data-link"},
		{Name: "opt/LICENSE", Typeflag: tar.TypeLink, Linkname: "/tmp/data"},
		// A link that a rule drops goes; its kept target stays.
		{Name: "opt/keep/file", Body: []byte("kept")},
		{Name: "tmp/link-to-kept", Typeflag: tar.TypeLink, Linkname: "opt/keep/file"},
		{Name: "opt/keep/link", Typeflag: tar.TypeLink, Linkname: "opt/keep/file"},
		// A link into a lower layer's dropped path.
		{Name: "opt/pip-link", Typeflag: tar.TypeLink, Linkname: "root/.cache/pip/http/a/b"},
		{Name: "opt/bin-link", Typeflag: tar.TypeLink, Linkname: "usr/bin/ping"},
		{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666},
		{Name: "tmp/fifo", Typeflag: tar.TypeFifo},
	}
	in, offs := spanTar(t, entries)
	m, err := drop.New(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorded{}
	var out bytes.Buffer
	st, err := tarfilter.Copy(context.Background(), bytes.NewReader(in), &out, Drop(m, rec))
	if err != nil {
		t.Fatal(err)
	}

	wantChanges := []Change{
		{Path: "var/lib/apt/lists/lock", Action: "dropped", Bytes: 0, Reason: "apt"},
		{Path: "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages", Action: "dropped", Bytes: 3300, Reason: "apt"},
		{Path: "usr/share/doc/bash/README", Action: "dropped", Bytes: 513, Reason: "docs"},
		{Path: "usr/share/man/man1/sh.1.gz", Action: "dropped", Bytes: 0, Reason: "man"},
		{Path: "./tmp/data", Action: "dropped", Bytes: 11, Reason: "tmp"},
		{Path: long, Action: "dropped", Bytes: 1000, Reason: "tmp"},
		{Path: "opt/data-link", Action: "dropped", Reason: "link to dropped tmp/data"},
		{Path: "opt/chain", Action: "dropped", Reason: "link to dropped opt/data-link"},
		{Path: "opt/LICENSE", Action: "dropped", Reason: "link to dropped tmp/data"},
		{Path: "tmp/link-to-kept", Action: "dropped", Reason: "tmp"},
		{Path: "opt/pip-link", Action: "dropped", Reason: "link to dropped root/.cache/pip/http/a/b"},
		{Path: "tmp/fifo", Action: "dropped", Reason: "tmp"},
	}
	if diff := cmp.Diff(wantChanges, rec.changes); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	dropped := map[string]bool{}
	for _, c := range wantChanges {
		dropped[c.Path] = true
	}
	// The survivors are their source records, byte for byte.
	if want := without(in, offs, entries, dropped); !bytes.Equal(want, out.Bytes()) {
		t.Errorf("output differs from the input minus the dropped records (%d bytes, want %d)", out.Len(), len(want))
		if diff := cmp.Diff(testenv.ReadTar(t, bytes.NewReader(want)), testenv.ReadTar(t, bytes.NewReader(out.Bytes()))); diff != "" {
			t.Errorf("entries (-want +got):\n%s", diff)
		}
	}
	if !st.Changed || st.EntriesIn != len(entries) || st.EntriesOut != len(entries)-len(wantChanges) {
		t.Errorf("stats %+v, want changed with %d of %d entries out", st, len(entries)-len(wantChanges), len(entries))
	}
}

func TestDropFilterKeepsWhatNoRuleNames(t *testing.T) {
	entries := []testenv.File{
		{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/bin/app", Mode: 0o755, Body: []byte("app")},
		{Name: "usr/bin/app2", Typeflag: tar.TypeLink, Linkname: "usr/bin/app"},
		{Name: "usr/share/doc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/share/doc/app/copyright", Body: []byte("MIT")},
		{Name: "tmp/.wh..wh..opq"},
		{Name: "var/cache/apt/.wh.pkgcache.bin"},
	}
	in, _ := spanTar(t, entries)
	for _, presets := range [][]string{nil, {"none"}} {
		m, err := drop.New(presets, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorded{}
		var out bytes.Buffer
		st, err := tarfilter.Copy(context.Background(), bytes.NewReader(in), &out, Drop(m, rec))
		if err != nil {
			t.Fatal(err)
		}
		if st.Changed || !bytes.Equal(in, out.Bytes()) || len(rec.changes) > 0 {
			t.Errorf("--drop=%v: changed=%v, identical=%v, changes %v", presets, st.Changed, bytes.Equal(in, out.Bytes()), rec.changes)
		}
	}
	// A nil Matcher and a nil Recorder are fine.
	var out bytes.Buffer
	if _, err := tarfilter.Copy(context.Background(), bytes.NewReader(in), &out, Drop(nil, nil)); err != nil || !bytes.Equal(in, out.Bytes()) {
		t.Errorf("Drop(nil, nil): %v", err)
	}
}

func TestDropFilterDropPathsAndKeeps(t *testing.T) {
	entries := []testenv.File{
		{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "app/main", Body: []byte("main")},
		{Name: "app/testdata/big.bin", Body: []byte(strings.Repeat("b", 2000))},
		{Name: "app/testdata/keep.txt", Body: []byte("k")},
		{Name: "tmp/keep-me", Body: []byte("tmp")},
		{Name: "tmp/other", Body: []byte("x")},
	}
	in, offs := spanTar(t, entries)
	m, err := drop.New([]string{"tmp"}, []string{"/app/testdata/**"}, []string{"app/testdata/keep.txt", "tmp/keep-me"})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorded{}
	var out bytes.Buffer
	if _, err := tarfilter.Copy(context.Background(), bytes.NewReader(in), &out, Drop(m, rec)); err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{Path: "app/testdata/big.bin", Action: "dropped", Bytes: 2000, Reason: "drop-path"},
		{Path: "tmp/other", Action: "dropped", Bytes: 1, Reason: "tmp"},
	}
	if diff := cmp.Diff(want, rec.changes); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if !bytes.Equal(without(in, offs, entries, map[string]bool{"app/testdata/big.bin": true, "tmp/other": true}), out.Bytes()) {
		t.Error("output is not the input minus the dropped records")
	}
}

// TestImageDrop runs the filter through Image: the output layers lack the
// dropped paths, the report lists them, and the config's diff_ids are the
// new layers'.
func TestImageDrop(t *testing.T) {
	layers := [][]testenv.File{
		{
			{Name: "etc/passwd", Body: []byte("root:x:0:0::/root:/bin/sh\n")},
			{Name: "var/lib/apt/lists/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "var/lib/apt/lists/lock"},
			{Name: "var/lib/apt/lists/x_Packages", Body: []byte(strings.Repeat("Package: x\n", 1000))},
			{Name: "usr/share/doc/bash/README", Body: []byte("read me")},
			{Name: "usr/share/doc/bash/copyright", Body: []byte("GPL")},
			{Name: "root/.cache/pip/http/a/b", Body: []byte(strings.Repeat("w", 4096))},
		},
		{
			{Name: "app/main", Mode: 0o755, Body: []byte("#!/bin/sh\necho hi\n")},
			{Name: "app/cached", Typeflag: tar.TypeLink, Linkname: "root/.cache/pip/http/a/b"},
			{Name: "tmp/.wh.gone"},
			{Name: "usr/share/man/man1/app.1", Body: []byte(".TH APP 1")},
		},
		{
			{Name: "etc/hostname", Body: []byte("box\n")},
		},
	}
	img := empty.Image
	for i, entries := range layers {
		data, _ := spanTar(t, entries)
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			t.Fatal(err)
		}
		img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: fmt.Sprintf("layer %d", i)}})
		if err != nil {
			t.Fatal(err)
		}
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Entrypoint = []string{"/app/main"}
	img, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}

	m, err := drop.New(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Image(context.Background(), img,
		WithTempDir(t.TempDir()),
		WithCompression(compress.Gzip, 0), // validate.Image reads gzip layers only
		WithFilter(func(rec Recorder) tarfilter.Filter { return Drop(m, rec) }),
		WithOptionText(m.String()))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if err := validate.Image(res.Image); err != nil {
		t.Fatalf("output image: %v", err)
	}
	checkVerified(t, img, res, m)

	wantChanges := [][]Change{
		{
			{Path: "var/lib/apt/lists/lock", Action: "dropped", Reason: "apt"},
			{Path: "var/lib/apt/lists/x_Packages", Action: "dropped", Bytes: 11000, Reason: "apt"},
			{Path: "usr/share/doc/bash/README", Action: "dropped", Bytes: 7, Reason: "docs"},
			{Path: "root/.cache/pip/http/a/b", Action: "dropped", Bytes: 4096, Reason: "pip"},
		},
		{
			{Path: "app/cached", Action: "dropped", Reason: "link to dropped root/.cache/pip/http/a/b"},
			{Path: "usr/share/man/man1/app.1", Action: "dropped", Bytes: 9, Reason: "man"},
		},
		nil,
	}
	wantNames := [][]string{
		{"etc/passwd", "var/lib/apt/lists/", "usr/share/doc/bash/copyright"},
		{"app/main", "tmp/.wh.gone"},
		{"etc/hostname"},
	}
	wantActions := []Action{Rewritten, Rewritten, Reused}
	rep := res.Report.Images[0]
	outLayers, err := res.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	outCF, err := res.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var outTars [][]byte
	for i, l := range outLayers {
		if diff := cmp.Diff(wantChanges[i], rep.Layers[i].Changes); diff != "" {
			t.Errorf("layer %d changes (-want +got):\n%s", i, diff)
		}
		if rep.Layers[i].Action != wantActions[i] {
			t.Errorf("layer %d: action %s, want %s", i, rep.Layers[i].Action, wantActions[i])
		}
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		outTars = append(outTars, data)
		var names []string
		for _, e := range testenv.ReadTar(t, bytes.NewReader(data)) {
			names = append(names, e.Name)
		}
		if diff := cmp.Diff(wantNames[i], names); diff != "" {
			t.Errorf("layer %d entries (-want +got):\n%s", i, diff)
		}
		diffID := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(data))}
		if diffID != outCF.RootFS.DiffIDs[i] || diffID != rep.Layers[i].Output.DiffID {
			t.Errorf("layer %d: content %s, config diff_id %s, report %s", i, diffID, outCF.RootFS.DiffIDs[i], rep.Layers[i].Output.DiffID)
		}
	}
	// An applier that works in tar order reads the output as the spec's does.
	if diff := cmp.Diff(testenv.SpecApply(t, outTars...), testenv.NaiveApply(t, outTars...)); diff != "" {
		t.Errorf("in-order applier (-spec +naive):\n%s", diff)
	}
	if got := outCF.Config.Entrypoint; len(got) != 1 || got[0] != "/app/main" {
		t.Errorf("entrypoint %v", got)
	}
	if len(outCF.History) != len(cf.History) {
		t.Errorf("history has %d entries, want %d", len(outCF.History), len(cf.History))
	}
	if !strings.Contains(res.Report.Options, "drop=apk,apt,") {
		t.Errorf("report options %q lack the drop configuration", res.Report.Options)
	}
}
