//go:build integration

package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sh runs a shell command and fails the test with its output on error.
func sh(t *testing.T, script string) string {
	t.Helper()
	out, err := exec.Command("bash", "-euo", "pipefail", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

// debianMirror is the Debian archive this machine's apt uses.
func debianMirror(t *testing.T) string {
	t.Helper()
	out := sh(t, `{ cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/{print $2; exit}' || true; awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true; } | head -1`)
	m := strings.TrimSpace(out)
	if m == "" {
		t.Fatal("no Debian mirror in the apt sources")
	}
	return m
}

// tarDir writes the tree under dir as a layer tar, in sorted order, with
// owners, modes, mtimes, xattrs and hardlinks. With overlay set, dir is an
// overlayfs upper directory: whiteout devices (0/0) become .wh. entries and
// opaque directories get a .wh..wh..opq marker.
func tarDir(t *testing.T, dir string, overlay bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	links := map[uint64]string{}
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	for _, p := range paths {
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if overlay && fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0 {
			h := &tar.Header{Name: filepath.Join(filepath.Dir(rel), ".wh."+filepath.Base(rel)), Typeflag: tar.TypeReg, Mode: 0o600, ModTime: fi.ModTime()}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			continue
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			link, _ = os.Readlink(p)
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			t.Fatal(err)
		}
		h.Name = rel
		if fi.IsDir() {
			h.Name += "/"
		}
		h.Uname, h.Gname = "", ""
		h.Format = tar.FormatPAX
		h.AccessTime, h.ChangeTime = time0, time0
		opaque := false
		for _, x := range xattrs(p) {
			if x[0] == "trusted.overlay.opaque" {
				opaque = x[1] == "y"
				continue
			}
			if strings.HasPrefix(x[0], "trusted.overlay.") {
				continue
			}
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+x[0]] = x[1]
		}
		if fi.Mode().IsRegular() && st.Nlink > 1 {
			if first, ok := links[st.Ino]; ok {
				h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
			} else {
				links[st.Ino] = rel
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg && h.Size > 0 {
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(tw, f); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
		if opaque {
			if err := tw.WriteHeader(&tar.Header{Name: filepath.Join(rel, ".wh..wh..opq"), Typeflag: tar.TypeReg, Mode: 0o600, ModTime: fi.ModTime()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func xattrs(p string) [][2]string {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz <= 0 {
		return nil
	}
	b := make([]byte, sz)
	sz, err = unix.Llistxattr(p, b)
	if err != nil {
		return nil
	}
	var out [][2]string
	for _, name := range strings.Split(strings.TrimRight(string(b[:sz]), "\x00"), "\x00") {
		vs, err := unix.Lgetxattr(p, name, nil)
		if err != nil || vs < 0 {
			continue
		}
		v := make([]byte, vs)
		vs, err = unix.Lgetxattr(p, name, v)
		if err != nil {
			continue
		}
		out = append(out, [2]string{name, string(v[:vs])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// entry is one path of an unpacked tree.
type entry struct {
	Mode    fs.FileMode
	UID     uint32
	GID     uint32
	Link    string
	Content string // sha256 of a regular file
	MTime   int64
	Xattrs  string
	Size    int64
}

// readTree records every path under dir.
func readTree(t *testing.T, dir string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := entry{Mode: fi.Mode(), UID: st.Uid, GID: st.Gid}
		if fi.Mode().IsRegular() {
			e.Size = fi.Size() // a directory's size depends on the file system's history
		}
		if !fi.IsDir() {
			e.MTime = fi.ModTime().Unix()
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			e.Link, _ = os.Readlink(p)
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			e.Content = fmt.Sprintf("%x", h.Sum(nil))
		}
		var xs []string
		for _, x := range xattrs(p) {
			xs = append(xs, x[0]+"="+x[1])
		}
		e.Xattrs = strings.Join(xs, ";")
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var time0 time.Time
