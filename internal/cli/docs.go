package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"
)

// DocsCommand is the command that regenerates the committed Markdown
// reference, docs/cli/ (run from the repository's root).
const DocsCommand = "go run ./cmd/layerslim docs markdown docs/cli"

func newDocs() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "docs",
		Short: "Write the command reference: man pages or Markdown",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return usagef("docs: name a format: man or markdown")
		},
	}
	gen := func(use, short, example string, write func(root *cobra.Command, dir string) error) *cobra.Command {
		return &cobra.Command{
			Use:     use + " DIR",
			Short:   short,
			Example: example,
			Args:    exactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				dir := args[0]
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				// A fresh tree: what a flag parsed on this command line
				// changed must not show in the reference.
				if err := write(docsTree(), dir); err != nil {
					return fmt.Errorf("writing %s pages to %s: %w", use, dir, err)
				}
				fmt.Fprintln(cmd.ErrOrStderr(), "wrote", use, "pages to", dir)
				return nil
			},
		}
	}
	cmd.AddCommand(
		gen("man", "Write a man page per command (layerslim.1, layerslim-rewrite.1, …)",
			"  layerslim docs man /usr/local/share/man/man1 && man layerslim-rewrite", WriteMan),
		gen("markdown", "Write a Markdown page per command (the reference in docs/cli/)",
			"  "+DocsCommand, WriteMarkdown),
	)
	return cmd
}

// docsTree is the command tree as the reference shows it: with the
// completion command cobra adds when it runs, and defaults that depend on
// the machine written as such.
func docsTree() *cobra.Command {
	root := New()
	root.InitDefaultCompletionCmd()
	cpus := strconv.Itoa(runtime.GOMAXPROCS(0))
	var fix func(c *cobra.Command)
	fix = func(c *cobra.Command) {
		c.DisableAutoGenTag = true // no date: the pages are reproducible
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Name == "jobs" && f.DefValue == cpus {
				f.DefValue = "the number of CPUs"
			}
		})
		for _, s := range c.Commands() {
			fix(s)
		}
	}
	fix(root)
	return root
}

// WriteMarkdown writes a Markdown page per command of root into dir,
// removing the pages of commands that no longer exist.
func WriteMarkdown(root *cobra.Command, dir string) error {
	old, err := filepath.Glob(filepath.Join(dir, root.Name()+"*.md"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	return doc.GenMarkdownTree(root, dir)
}

// WriteMan writes a man page (section 1) per command of root into dir. The
// date in the pages is SOURCE_DATE_EPOCH's when it is set.
func WriteMan(root *cobra.Command, dir string) error {
	return doc.GenManTree(root, &doc.GenManHeader{
		Title:   "LAYERSLIM",
		Section: "1",
		Source:  "layerslim " + Version,
		Manual:  "layerslim manual",
	}, dir)
}
