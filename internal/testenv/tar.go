package testenv

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// DefaultModTime is the mtime of File entries that set none.
var DefaultModTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// File is one tar entry of a layer built by TarLayer, or read by ReadTar.
type File struct {
	Name string // path in the layer, without a leading "/"; a trailing "/" makes a directory

	// Typeflag is a tar.Type*; zero means tar.TypeReg, or tar.TypeDir when
	// Name ends in "/", or tar.TypeSymlink when Linkname is set.
	Typeflag byte
	// Mode holds the permission and setuid/setgid/sticky bits (0o4755). Zero
	// means 0o644 for files, 0o755 for directories and 0o777 for symlinks.
	Mode     int64
	Body     []byte // content of a regular file
	Linkname string // target of a symlink or hardlink

	Uid, Gid     int
	Uname, Gname string
	ModTime      time.Time // zero means DefaultModTime; kept to the second

	Devmajor, Devminor int64 // for tar.TypeChar and tar.TypeBlock

	// Xattrs are written as PAX SCHILY.xattr.<name> records
	// ("security.capability" holds file capabilities).
	Xattrs map[string]string
	// PAXRecords are further PAX records, written as they are.
	PAXRecords map[string]string
	// Format is the tar format asked of archive/tar (tar.FormatPAX); zero
	// lets it choose. ReadTar leaves it zero.
	Format tar.Format
}

// Dir, Reg, Symlink, Hardlink, Whiteout and Opaque make common entries.

// Dir is a directory entry with mode 0o755.
func Dir(name string) File {
	return File{Name: strings.TrimSuffix(name, "/") + "/", Typeflag: tar.TypeDir}
}

// Reg is a regular file with mode 0o644.
func Reg(name string, body string) File { return File{Name: name, Body: []byte(body)} }

// Symlink is a symbolic link name -> target.
func Symlink(name, target string) File {
	return File{Name: name, Typeflag: tar.TypeSymlink, Linkname: target}
}

// Hardlink is a hard link name to the earlier entry target.
func Hardlink(name, target string) File {
	return File{Name: name, Typeflag: tar.TypeLink, Linkname: target}
}

// Whiteout deletes name from the layers below (an OCI ".wh." entry).
func Whiteout(name string) File {
	dir, base := path.Split(name)
	return File{Name: dir + ".wh." + base}
}

// Opaque hides everything the layers below have in dir (".wh..wh..opq").
func Opaque(dir string) File {
	return File{Name: strings.TrimSuffix(dir, "/") + "/.wh..wh..opq"}
}

// EveryKind is a layer of every kind of entry, for tests of what a tar
// engine copies: a directory, a file with a capability xattr (setuid),
// a hardlink to it, a path longer than ustar holds, a symlink, a character
// device, a whiteout, an opaque marker, a path written twice, an empty
// file and a file of exactly one block. Each call returns a new slice.
func EveryKind() []File {
	return []File{
		Dir("etc"),
		Reg("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
		{Name: "usr/bin/ping", Mode: 0o4755, Body: []byte("\x7fELF not really"), Xattrs: map[string]string{"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}},
		Hardlink("usr/bin/ping6", "usr/bin/ping"),
		Reg("usr/lib/"+strings.Repeat("long-directory-name/", 8)+"file.txt", strings.Repeat("x", 1000)),
		Symlink("bin", "usr/bin"),
		{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		Whiteout("var/lib/old"),
		Opaque("opt"),
		Reg("etc/passwd", "duplicate entry wins\n"),
		Reg("empty", ""),
		Reg("block", strings.Repeat("b", 512)),
	}
}

// InFormat returns a copy of files, each asking archive/tar for format.
// GNU and ustar headers cannot carry PAX records: Xattrs and PAXRecords
// are left out for them.
func InFormat(format tar.Format, files []File) []File {
	out := make([]File, len(files))
	for i, f := range files {
		f.Format = format
		if format == tar.FormatGNU || format == tar.FormatUSTAR {
			f.Xattrs, f.PAXRecords = nil, nil
		}
		out[i] = f
	}
	return out
}

// header turns f into a tar header with the defaults filled in.
func (f File) header() *tar.Header {
	h := &tar.Header{
		Name:     f.Name,
		Typeflag: f.Typeflag,
		Mode:     f.Mode,
		Linkname: f.Linkname,
		Uid:      f.Uid,
		Gid:      f.Gid,
		Uname:    f.Uname,
		Gname:    f.Gname,
		ModTime:  f.ModTime.Truncate(time.Second),
		Devmajor: f.Devmajor,
		Devminor: f.Devminor,
		Format:   f.Format,
	}
	if h.Typeflag == 0 {
		switch {
		case strings.HasSuffix(f.Name, "/"):
			h.Typeflag = tar.TypeDir
		case f.Linkname != "":
			h.Typeflag = tar.TypeSymlink
		default:
			h.Typeflag = tar.TypeReg
		}
	}
	if h.Typeflag == tar.TypeDir && !strings.HasSuffix(h.Name, "/") {
		h.Name += "/"
	}
	if h.Mode == 0 {
		switch h.Typeflag {
		case tar.TypeDir:
			h.Mode = 0o755
		case tar.TypeSymlink:
			h.Mode = 0o777
		default:
			h.Mode = 0o644
		}
	}
	if f.ModTime.IsZero() {
		h.ModTime = DefaultModTime
	}
	if h.Typeflag == tar.TypeReg {
		h.Size = int64(len(f.Body))
	}
	if len(f.Xattrs) > 0 || len(f.PAXRecords) > 0 {
		h.PAXRecords = map[string]string{}
		maps.Copy(h.PAXRecords, f.PAXRecords)
		for k, v := range f.Xattrs {
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
	}
	return h
}

// TarLayer returns an uncompressed tar stream of files, in the given order.
// The same files always give the same bytes.
func TarLayer(t testing.TB, files []File) []byte {
	t.Helper()
	b, err := tarLayer(files)
	if err != nil {
		t.Fatalf("testenv.TarLayer: %v", err)
	}
	return b
}

func tarLayer(files []File) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := f.header()
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Body); err != nil {
				return nil, fmt.Errorf("%s: %w", f.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// paxFromHeader are the PAX records archive/tar writes from Header fields;
// ReadTar leaves them out of File.PAXRecords.
var paxFromHeader = []string{"path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime", "atime", "ctime"}

// ReadTar parses an uncompressed tar stream into Files, every field explicit
// (Typeflag, Mode, ModTime set; Xattrs split from PAXRecords), so that
// cmp.Diff(want, ReadTar(t, got)) compares whole layers.
func ReadTar(t testing.TB, r io.Reader) []File {
	t.Helper()
	files, err := readTar(r)
	if err != nil {
		t.Fatalf("testenv.ReadTar: %v", err)
	}
	return files
}

func readTar(r io.Reader) ([]File, error) {
	var files []File
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return files, fmt.Errorf("entry %d: %w", len(files), err)
		}
		f := File{
			Name:     h.Name,
			Typeflag: h.Typeflag,
			Mode:     h.Mode,
			Linkname: h.Linkname,
			Uid:      h.Uid,
			Gid:      h.Gid,
			Uname:    h.Uname,
			Gname:    h.Gname,
			ModTime:  h.ModTime.UTC(),
			Devmajor: h.Devmajor,
			Devminor: h.Devminor,
		}
		if f.Typeflag == tar.TypeRegA {
			f.Typeflag = tar.TypeReg
		}
		for k, v := range h.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if f.Xattrs == nil {
					f.Xattrs = map[string]string{}
				}
				f.Xattrs[x] = v
				continue
			}
			if slices.Contains(paxFromHeader, k) {
				continue
			}
			if f.PAXRecords == nil {
				f.PAXRecords = map[string]string{}
			}
			f.PAXRecords[k] = v
		}
		if f.Typeflag == tar.TypeReg {
			body, err := io.ReadAll(tr)
			if err != nil {
				return files, fmt.Errorf("%s: %w", h.Name, err)
			}
			f.Body = body
		}
		files = append(files, f)
	}
}

// RealContentLayer tars real files of this machine below dir, so that layers
// look and compress like real ones: a sorted walk; directories, regular
// files, symlinks and hardlinks (by inode); real modes and mtimes (to the
// second); owner 0:0 without names. Entries are named prefix + the path
// below dir, and the parent directories of prefix come first; an empty prefix
// puts the files at their own path (dir without its leading "/").
// Regular files stop being added once their bytes would pass maxBytes
// (0: no limit); files that cannot be read are left out. On one machine the
// result is always the same bytes.
func RealContentLayer(t testing.TB, dir string, prefix string, maxBytes int64) []byte {
	t.Helper()
	files, err := realContent(dir, prefix, maxBytes)
	if err != nil {
		t.Fatalf("testenv.RealContentLayer(%s): %v", dir, err)
	}
	return TarLayer(t, files)
}

func realContent(dir, prefix string, maxBytes int64) ([]File, error) {
	dir = filepath.Clean(dir)
	if prefix == "" {
		prefix = strings.TrimPrefix(filepath.ToSlash(dir), "/")
	}
	prefix = strings.Trim(prefix, "/")
	if _, err := os.Stat(dir); err != nil {
		return nil, err
	}
	var files []File
	// Parents of prefix, as a real image has them.
	if prefix != "" {
		parts := strings.Split(prefix, "/")
		for i := range parts[:len(parts)-1] {
			files = append(files, Dir(strings.Join(parts[:i+1], "/")))
		}
	}
	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil // unreadable: leave it out
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := prefix
		if rel != "." {
			name = path.Join(prefix, filepath.ToSlash(rel))
		}
		if name == "" {
			return nil // dir is "/" and prefix empty: no entry for the root
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return nil
		}
		f := File{
			Name:    name,
			Mode:    int64(fi.Mode().Perm()),
			ModTime: fi.ModTime().Truncate(time.Second),
		}
		if fi.Mode()&fs.ModeSetuid != 0 {
			f.Mode |= 0o4000
		}
		if fi.Mode()&fs.ModeSetgid != 0 {
			f.Mode |= 0o2000
		}
		if fi.Mode()&fs.ModeSticky != 0 {
			f.Mode |= 0o1000
		}
		switch {
		case fi.IsDir():
			f.Typeflag = tar.TypeDir
			f.Name += "/"
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return nil
			}
			f.Typeflag, f.Linkname = tar.TypeSymlink, target
		case fi.Mode().IsRegular():
			if maxBytes > 0 && total+fi.Size() > maxBytes {
				return fs.SkipAll
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
				key := inode{uint64(st.Dev), uint64(st.Ino)}
				if first, ok := seen[key]; ok {
					f.Typeflag, f.Linkname = tar.TypeLink, first
					break
				}
				seen[key] = name
			}
			body, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			f.Typeflag, f.Body = tar.TypeReg, body
			total += int64(len(body))
		default:
			return nil // devices, sockets, fifos
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return files, nil
}
