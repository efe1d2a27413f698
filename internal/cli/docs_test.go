package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// docs/cli/ is the committed Markdown reference: it must be what the
// command tree generates now.
func TestDocsCLIUpToDate(t *testing.T) {
	dir := t.TempDir()
	if err := WriteMarkdown(docsTree(), dir); err != nil {
		t.Fatal(err)
	}
	committed := filepath.Join("..", "..", "docs", "cli")
	stale := func(format string, a ...any) {
		t.Helper()
		t.Errorf(format+"\ndocs/cli is stale: regenerate it from the repository's root with\n\t%s", append(a, DocsCommand)...)
	}
	want, _ := filepath.Glob(filepath.Join(dir, "*.md"))
	have, _ := filepath.Glob(filepath.Join(committed, "*.md"))
	names := map[string]bool{}
	for _, f := range have {
		names[filepath.Base(f)] = true
	}
	for _, f := range want {
		name := filepath.Base(f)
		delete(names, name)
		gen, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(committed, name))
		if err != nil {
			stale("docs/cli/%s is missing", name)
			continue
		}
		if !bytes.Equal(gen, got) {
			stale("docs/cli/%s differs from what the commands generate", name)
		}
	}
	for name := range names {
		stale("docs/cli/%s documents a command that no longer exists", name)
	}
}

// The reference does not depend on the machine that generates it.
func TestDocsTreeMachineIndependent(t *testing.T) {
	old := runtime.GOMAXPROCS(3)
	defer runtime.GOMAXPROCS(old)
	var a, b bytes.Buffer
	for _, out := range []*bytes.Buffer{&a, &b} {
		dir := t.TempDir()
		if err := WriteMarkdown(docsTree(), dir); err != nil {
			t.Fatal(err)
		}
		f, _ := os.ReadFile(filepath.Join(dir, "layerslim_rewrite.md"))
		out.Write(f)
		runtime.GOMAXPROCS(5)
	}
	if a.String() != b.String() || strings.Contains(a.String(), "(default 3)") {
		t.Error("the reference changes with the number of CPUs")
	}
}

func TestDocsMan(t *testing.T) {
	dir := t.TempDir()
	cmd := New()
	var errb bytes.Buffer
	cmd.SetArgs([]string{"docs", "man", dir})
	cmd.SetErr(&errb)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"layerslim.1", "layerslim-rewrite.1", "layerslim-analyze.1", "layerslim-debug-extract.1", "layerslim-version.1"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("no man page %s: %v", name, err)
			continue
		}
		if !bytes.HasPrefix(b, []byte(".nh\n.TH \"LAYERSLIM\" \"1\"")) || !bytes.Contains(b, []byte(".SH NAME")) {
			t.Errorf("%s is not a man page:\n%.200s", name, b)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "layerslim-analyze.1")); !bytes.Contains(b, []byte(`\fB--format\fP="text"`)) {
		t.Error("layerslim-analyze.1 does not document --format")
	}
}

func TestDocsUsage(t *testing.T) {
	for _, args := range [][]string{{"docs"}, {"docs", "man"}, {"docs", "pdf", "x"}} {
		cmd := New()
		cmd.SetArgs(args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		if err := cmd.Execute(); ExitCode(err) != 2 {
			t.Errorf("%v: exit %d (%v), want 2", args, ExitCode(err), err)
		}
	}
}
