package elf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	stdelf "debug/elf"
)

// buildArchive writes a GNU ar archive with a "/" symbol index (one
// symbol per member, named after it) and a "//" long name table.
func buildArchive(members map[string][]byte) []byte {
	names := make([]string, 0, len(members))
	for n := range members {
		names = append(names, n)
	}
	slices.Sort(names)
	var long bytes.Buffer
	field := map[string]string{}
	for _, n := range names {
		if len(n) < 16 {
			field[n] = n + "/"
			continue
		}
		field[n] = fmt.Sprintf("/%d", long.Len())
		long.WriteString(n + "/\n")
	}
	hdr := func(name string, size int) string {
		return fmt.Sprintf("%-16s%-12s%-6s%-6s%-8s%-10d`\n", name, "0", "0", "0", "644", size)
	}
	pad := func(n int) int { return n + n&1 }
	// Symbol index size: count, offsets, names.
	idxSize := 4 + 4*len(names)
	for _, n := range names {
		idxSize += len("sym_"+n) + 1
	}
	pos := 8 + 60 + pad(idxSize)
	if long.Len() > 0 {
		pos += 60 + pad(long.Len())
	}
	var idx bytes.Buffer
	idx.Write(binary.BigEndian.AppendUint32(nil, uint32(len(names))))
	for _, n := range names {
		idx.Write(binary.BigEndian.AppendUint32(nil, uint32(pos)))
		pos += 60 + pad(len(members[n]))
	}
	for _, n := range names {
		idx.WriteString("sym_" + n + "\x00")
	}
	var out bytes.Buffer
	out.WriteString(arMagic)
	add := func(name string, data []byte) {
		out.WriteString(hdr(name, len(data)))
		out.Write(data)
		if len(data)%2 == 1 {
			out.WriteByte('\n')
		}
	}
	add("/", idx.Bytes())
	if long.Len() > 0 {
		add("//", long.Bytes())
	}
	for _, n := range names {
		add(field[n], members[n])
	}
	return out.Bytes()
}

func TestSplitArchive(t *testing.T) {
	obj := readTestdata(t, "hello-x86_64.o")
	in := buildArchive(map[string][]byte{
		"a.o":                          obj,
		"b-with-a-long-member-name.o":  obj,
		"notes.txt":                    []byte("odd"),
		"broken.o":                     obj[:200],
		"c-another-long-member-name.o": obj,
	})
	var out bytes.Buffer
	res, err := SplitArchive(bytes.NewReader(in), int64(len(in)), &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Type != "REL" || res.Machine != "EM_X86_64" || res.DebugSize != 0 || res.StrippedSize != int64(out.Len()) || res.DebugBytes == 0 {
		t.Errorf("Result = %+v", res)
	}
	if !slices.Contains(res.Removed, ".debug_info") || slices.Contains(res.Removed, ".symtab") {
		t.Errorf("Removed = %v", res.Removed)
	}
	before, err := readArchive(bytes.NewReader(in), int64(len(in)))
	if err != nil {
		t.Fatal(err)
	}
	b := out.Bytes()
	after, err := readArchive(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("%d members, want %d", len(after), len(before))
	}
	var offsets []uint64
	for i, m := range after {
		old := before[i]
		data := b[m.dataOff : m.dataOff+m.size]
		oldData := in[old.dataOff : old.dataOff+old.size]
		// Headers are kept except the size field.
		if string(m.hdr[:48]) != string(old.hdr[:48]) {
			t.Errorf("member %d header %q, was %q", i, m.hdr[:48], old.hdr[:48])
		}
		switch {
		case m.name == "/":
			n := binary.BigEndian.Uint32(data)
			for k := range n {
				offsets = append(offsets, uint64(binary.BigEndian.Uint32(data[4+4*k:])))
			}
		case bytes.Equal(oldData, obj):
			if len(data) >= len(oldData) {
				t.Errorf("member %d not smaller", i)
			}
			f, err := stdelf.NewFile(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("member %d: %v", i, err)
			}
			for _, s := range f.Sections {
				if strings.HasPrefix(s.Name, ".debug") || strings.HasPrefix(s.Name, ".rela.debug") || s.Name == debuglinkName {
					t.Errorf("member %d keeps %s", i, s.Name)
				}
			}
			if f.Section(".symtab") == nil || f.Section(".rela.text") == nil {
				t.Errorf("member %d lost .symtab or .rela.text", i)
			}
		default:
			if !bytes.Equal(data, oldData) {
				t.Errorf("member %d (%s) changed", i, m.name)
			}
		}
	}
	// The symbol index points at the members' new headers, in order.
	var want []uint64
	for _, m := range after {
		if m.name != "/" && m.name != "//" {
			want = append(want, m.hdrOff)
		}
	}
	if !slices.Equal(offsets, want) {
		t.Errorf("symbol index offsets %v, want %v", offsets, want)
	}

	// Deterministic, and nothing left to do the second time.
	var again bytes.Buffer
	if _, err := SplitArchive(bytes.NewReader(in), int64(len(in)), &again); err != nil || !bytes.Equal(again.Bytes(), b) {
		t.Errorf("second run differs (%v)", err)
	}
	if _, err := SplitArchive(bytes.NewReader(b), int64(len(b)), &bytes.Buffer{}); !errors.Is(err, ErrUnchanged) {
		t.Errorf("stripping the stripped archive: %v", err)
	}
}

func TestSplitArchiveUnchanged(t *testing.T) {
	obj := readTestdata(t, "hello-x86_64.o")
	good := buildArchive(map[string][]byte{"a.o": obj})
	badIndex := bytes.Clone(good)
	binary.BigEndian.PutUint32(badIndex[8+60+4:], 12345) // index points nowhere
	for name, in := range map[string][]byte{
		"not an archive":   []byte("hello"),
		"thin":             []byte("!<thin>\n"),
		"empty archive":    []byte(arMagic),
		"no ELF members":   buildArchive(map[string][]byte{"x.txt": []byte("x")}),
		"truncated header": good[:8+30],
		"truncated member": good[:len(good)-100],
		"bad index":        badIndex,
		"BSD names":        []byte(arMagic + fmt.Sprintf("%-16s%-12s%-6s%-6s%-8s%-10d`\n", "#1/20", "0", "0", "0", "644", 20) + strings.Repeat("x", 20)),
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			if _, err := SplitArchive(bytes.NewReader(in), int64(len(in)), &out); !errors.Is(err, ErrUnchanged) || out.Len() != 0 {
				t.Errorf("SplitArchive = %v, wrote %d bytes; want ErrUnchanged and nothing", err, out.Len())
			}
		})
	}
}

// TestReplaceDebuglink splits a file that already has a .gnu_debuglink
// (and still a .symtab): the old link is replaced, not duplicated.
func TestReplaceDebuglink(t *testing.T) {
	in := readTestdata(t, "hello-x86_64")
	once, _, _, err := splitBytes(t, in, Debug, "first.debug")
	if err != nil {
		t.Fatal(err)
	}
	twice, dbg, res, err := splitBytes(t, once, Unneeded, "second.debug")
	if err != nil {
		t.Fatal(err)
	}
	checkOutputs(t, once, twice, dbg, Unneeded, "second.debug")
	if slices.Contains(res.Removed, debuglinkName) {
		t.Errorf("Removed lists %s: %v", debuglinkName, res.Removed)
	}
	f, err := stdelf.NewFile(bytes.NewReader(twice))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range f.Sections {
		if s.Name == debuglinkName {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d %s sections", n, debuglinkName)
	}
}
