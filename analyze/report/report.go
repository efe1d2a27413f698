// Package report renders the results of package analyze: as a text table
// for a terminal, JSON for scripts, Markdown for CI summaries and pull
// request comments, and one self-contained HTML page with a treemap of
// where an image's bytes are.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/layerslim/layerslim/analyze"
)

// Report is one run of analyze: what was analyzed, how, and the result per
// platform. It is also the JSON format.
type Report struct {
	// Source is the analyzed reference.
	Source string `json:"source"`
	// Version is layerslim's version.
	Version string `json:"version"`
	// Options are the options that shape the figures, as one line.
	Options string `json:"options"`
	// Images holds one report per platform, in index order.
	Images []*analyze.ImageReport `json:"images"`
	// Exceeded lists the gates exceeded, one message each.
	Exceeded []string `json:"exceeded,omitempty"`
}

// Format is an output format of analyze.
type Format string

// The formats.
const (
	Text     Format = "text"
	JSON     Format = "json"
	Markdown Format = "markdown"
	HTML     Format = "html"
)

// Formats lists the formats, for help texts and errors.
var Formats = []Format{Text, JSON, Markdown, HTML}

// ParseFormat accepts the name of a format ("md" is Markdown).
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	if f == "md" {
		f = Markdown
	}
	if slices.Contains(Formats, f) {
		return f, nil
	}
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = string(f)
	}
	return "", fmt.Errorf("unknown format %q: want %s", s, strings.Join(names, ", "))
}

// NeedsTree tells whether format f draws the trees of analyze.Options.Tree.
func (f Format) NeedsTree() bool { return f == HTML }

// Write renders r in format f.
func Write(w io.Writer, f Format, r *Report) error {
	switch f {
	case Text:
		return WriteText(w, r)
	case JSON:
		return WriteJSON(w, r)
	case Markdown:
		return WriteMarkdown(w, r)
	case HTML:
		return WriteHTML(w, r)
	}
	return fmt.Errorf("unknown format %q", f)
}

// WriteJSON writes r as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // created_by holds shell: keep && and > readable
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes a table per platform, for a terminal.
func WriteText(w io.Writer, r *Report) error {
	ew := &errWriter{w: w}
	for i, img := range r.Images {
		if i > 0 {
			fmt.Fprintln(ew)
		}
		writeText(ew, img)
	}
	return ew.err
}

// errWriter keeps the first write error, so rendering code can ignore them.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func writeText(w io.Writer, r *analyze.ImageReport) {
	fmt.Fprintf(w, "%s %s\n", title(r), r.Digest)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// Sizes are right-aligned within their columns.
	row := func(layer, digest, created string, sizes ...string) {
		cells := []string{layer, digest, created}
		for _, s := range sizes {
			cells = append(cells, fmt.Sprintf("%12s", s))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	row("LAYER", "DIGEST", "CREATED BY", "COMPRESSED", "UNCOMPRESSED", "SHADOWED", "DROP", "DEBUG", "EST. ZSTD")
	for i, l := range r.Layers {
		n, d, c := strconv.Itoa(i+1), Short(l.Digest.String()), CreatedBy(l.CreatedBy)
		if l.Skipped != "" {
			row(n, d, c, Size(l.CompressedSize), "(not read)", "-", "-", "-", Size(l.EstimatedZstd))
			continue
		}
		row(n, d, c, Size(l.CompressedSize), Size(l.UncompressedSize), Size(l.ShadowedBytes), Size(l.DropBytes), Size(l.DebugBytes), Size(l.EstimatedZstd))
	}
	t := r.Totals
	row("total", "", "", Size(t.CompressedSize), Size(t.UncompressedSize), Size(t.ShadowedBytes), Size(t.DropBytes), Size(t.DebugBytes), Size(t.EstimatedZstd))
	tw.Flush()
	fmt.Fprintf(w, "waste: %s (%.1f%%) — after rewrite and zstd about %s (from %s now)\n",
		Size(r.WasteBytes), r.WastePercent, Size(t.EstimatedZstd), Size(t.CompressedSize))
	if s := presets(t.DropByPreset); s != "" {
		fmt.Fprintf(w, "drop by preset: %s\n", s)
	}
	if t.ELFFiles > 0 {
		fmt.Fprintf(w, "ELF files: %d\n", t.ELFFiles)
	}
	for i, l := range r.Layers {
		for _, n := range l.Notes {
			fmt.Fprintf(w, "note: layer %d: %s\n", i+1, n)
		}
	}
	if len(r.Top) == 0 {
		return
	}
	fmt.Fprintln(w, "largest wasted items:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, it := range r.Top {
		fmt.Fprintf(tw, "  %s\tlayer %d\t%s\t%s\n", Size(it.Bytes), it.Layer, it.Path, it.Why)
	}
	tw.Flush()
}

// title names an image report: its platform, or "image".
func title(r *analyze.ImageReport) string {
	if r.Platform == "" {
		return "image"
	}
	return r.Platform
}

func presets(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+" "+Size(m[k]))
	}
	return strings.Join(parts, ", ")
}

// CreatedBy shortens a history entry for a table.
func CreatedBy(s string) string {
	s = strings.TrimPrefix(s, "/bin/sh -c ")
	s = strings.TrimPrefix(s, "#(nop) ")
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	if utf8.RuneCountInString(s) > 40 {
		s = string([]rune(s)[:39]) + "…"
	}
	return s
}

// Short cuts a digest to its algorithm and 12 hex digits.
func Short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

// Size writes n bytes in binary units: 512 B, 1.5 KiB, 3.2 GiB.
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
