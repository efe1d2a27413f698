package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/layerslim/layerslim/analyze"
)

// WriteMarkdown writes GitHub-flavoured Markdown: a summary line, the
// per-layer table and the largest wasted items of each platform, for CI
// job summaries and pull request comments. Paths and history entries come
// from the image: they are escaped, so none can break a table or inject
// markup.
func WriteMarkdown(w io.Writer, r *Report) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "## layerslim analyze: %s\n\n", mdCode(r.Source))
	if len(r.Exceeded) > 0 {
		fmt.Fprintf(ew, "> [!WARNING]\n> **Gate exceeded**\n")
		for _, e := range r.Exceeded {
			fmt.Fprintf(ew, "> - %s\n", mdText(e))
		}
		fmt.Fprintln(ew)
	}
	for _, img := range r.Images {
		writeMarkdownImage(ew, img, len(r.Images) > 1)
	}
	fmt.Fprintf(ew, "<sub>layerslim %s · %s</sub>\n", mdText(r.Version), mdText(r.Options))
	return ew.err
}

func writeMarkdownImage(w io.Writer, r *analyze.ImageReport, heading bool) {
	t := r.Totals
	if heading {
		fmt.Fprintf(w, "### %s\n\n", mdText(title(r)))
	}
	fmt.Fprintf(w, "**Waste: %s (%.1f%%)** of %s uncompressed · now %s compressed, after rewrite and zstd about **%s** · manifest %s\n\n",
		Size(r.WasteBytes), r.WastePercent, Size(t.UncompressedSize), Size(t.CompressedSize), Size(t.EstimatedZstd), mdCode(Short(r.Digest.String())))
	fmt.Fprintln(w, "| layer | created by | compressed | uncompressed | shadowed | drop | debug | est. zstd |")
	fmt.Fprintln(w, "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	for i, l := range r.Layers {
		if l.Skipped != "" {
			fmt.Fprintf(w, "| %d | %s | %s | (not read) | - | - | - | %s |\n", i+1, mdCode(CreatedBy(l.CreatedBy)), Size(l.CompressedSize), Size(l.EstimatedZstd))
			continue
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s |\n", i+1, mdCode(CreatedBy(l.CreatedBy)),
			Size(l.CompressedSize), Size(l.UncompressedSize), Size(l.ShadowedBytes), Size(l.DropBytes), Size(l.DebugBytes), Size(l.EstimatedZstd))
	}
	fmt.Fprintf(w, "| **total** | | **%s** | **%s** | **%s** | **%s** | **%s** | **%s** |\n\n",
		Size(t.CompressedSize), Size(t.UncompressedSize), Size(t.ShadowedBytes), Size(t.DropBytes), Size(t.DebugBytes), Size(t.EstimatedZstd))
	if s := presets(t.DropByPreset); s != "" {
		fmt.Fprintf(w, "Drop by preset: %s\n\n", mdText(s))
	}
	for i, l := range r.Layers {
		for _, n := range l.Notes {
			fmt.Fprintf(w, "Note: layer %d: %s\n\n", i+1, mdText(n))
		}
	}
	if len(r.Top) == 0 {
		return
	}
	fmt.Fprintf(w, "<details><summary>Largest wasted items (%d)</summary>\n\n", len(r.Top))
	fmt.Fprintln(w, "| bytes | layer | path | why |")
	fmt.Fprintln(w, "| ---: | ---: | --- | --- |")
	for _, it := range r.Top {
		fmt.Fprintf(w, "| %s | %d | %s | %s |\n", Size(it.Bytes), it.Layer, mdCode(it.Path), mdText(it.Why))
	}
	fmt.Fprint(w, "\n</details>\n\n")
}

// mdText escapes s for a Markdown table cell: every character Markdown or
// HTML could read as markup becomes a numeric character reference, and
// line breaks become visible "\n".
func mdText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			b.WriteString("&#" + strconv.Itoa(int(r)) + ";")
		case strings.ContainsRune("\\`*_[]<>|&~$", r):
			b.WriteString("&#" + strconv.Itoa(int(r)) + ";")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// mdCode is mdText in a code span (an HTML one: a Markdown code span would
// show the references as they are written).
func mdCode(s string) string { return "<code>" + mdText(s) + "</code>" }
