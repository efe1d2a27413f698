package rewrite

import (
	"slices"
	"strings"
	"testing"

	"github.com/layerslim/layerslim/internal/spool"
)

func debugFileOf(t *testing.T, source string, crc uint32, size int, sections ...string) DebugFile {
	t.Helper()
	sp := spool.New(t.TempDir(), 1<<20, 0)
	sp.Write(make([]byte, size))
	t.Cleanup(func() { sp.Close() })
	return DebugFile{Name: "usr/lib/debug/.build-id/ab/cd.debug", Source: source, CRC: crc, Sections: sections, data: sp}
}

// The richest copy wins whatever order copies come in; copies that hold
// sections none of the others has are a conflict, decided by a fixed rule
// and described.
func TestRichest(t *testing.T) {
	full := debugFileOf(t, "usr/bin/full", 7, 900, ".debug_info", ".debug_line", ".strtab", ".symtab")
	symtab := debugFileOf(t, "usr/bin/copy", 3, 300, ".strtab", ".symtab")
	same := debugFileOf(t, "usr/bin/again", 5, 900, ".debug_info", ".debug_line", ".strtab", ".symtab")
	for _, order := range [][]DebugFile{{full, symtab}, {symtab, full}, {symtab, same, full}, {full, same, symtab}} {
		got, conflict := richest(order)
		want := full
		if len(order) == 3 {
			want = same // the lower CRC of two equal candidates
		}
		if got.Source != want.Source || conflict != "" {
			t.Errorf("richest(%v) = %s %q, want %s", sources(order), got.Source, conflict, want.Source)
		}
	}
	other := debugFileOf(t, "usr/bin/gz", 9, 400, ".gnu_debugaltlink", ".strtab", ".symtab")
	for _, order := range [][]DebugFile{{full, other}, {other, full}} {
		got, conflict := richest(order)
		if got.Source != "usr/bin/full" || !strings.Contains(conflict, ".gnu_debugaltlink") {
			t.Errorf("richest(%v) = %s %q", sources(order), got.Source, conflict)
		}
	}
}

func sources(ds []DebugFile) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Source)
	}
	return slices.Clip(out)
}
