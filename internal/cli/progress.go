package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/layerslim/layerslim/analyze/report"
	"github.com/layerslim/layerslim/rewrite"
)

// progress renders rewrite events: a redrawn status line on a terminal,
// plain log lines otherwise. Report never blocks on the terminal: the
// status line is drawn by its own ticker from counters.
type progress struct {
	w     io.Writer
	mode  string // tty, plain or none
	mu    sync.Mutex
	start time.Time
	total int64 // source bytes of started layers
	read  int64
	began int
	done  int
	tick  *time.Ticker
	quit  chan struct{}
	once  sync.Once
}

func newProgress(w io.Writer, mode string) *progress {
	if mode == "auto" {
		mode = "plain"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			mode = "tty"
		}
	}
	p := &progress{w: w, mode: mode, start: time.Now(), quit: make(chan struct{})}
	if mode == "tty" {
		p.tick = time.NewTicker(200 * time.Millisecond)
		go p.loop()
	}
	return p
}

func (p *progress) Report(e rewrite.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.Kind {
	case rewrite.LayerStarted:
		p.began++
		p.total += e.Size
		if p.mode == "plain" {
			fmt.Fprintf(p.w, "layer %s %s: started (%s)\n", short(e.Digest.String()), e.Platform, human(e.Size))
		}
	case rewrite.LayerProgress:
		p.read += e.Bytes
	case rewrite.LayerDone:
		p.done++
		if p.mode == "plain" && e.Layer != nil {
			l := e.Layer
			fmt.Fprintf(p.w, "layer %s %s: %s %s→%s %s → %s in %s\n", short(e.Digest.String()), e.Platform,
				l.Action, l.Source.Codec, outCodec(l), human(l.Source.Size), human(l.Output.Size), l.Duration.Round(time.Millisecond))
		}
	}
}

func (p *progress) loop() {
	for {
		select {
		case <-p.tick.C:
			p.mu.Lock()
			el := time.Since(p.start).Seconds()
			rate := float64(p.read) / el
			fmt.Fprintf(p.w, "\r\033[Klayers %d/%d done  %s / %s read  %s/s", p.done, p.began, human(p.read), human(p.total), human(int64(rate)))
			p.mu.Unlock()
		case <-p.quit:
			return
		}
	}
}

// stop ends the status line; it is safe to call more than once.
func (p *progress) stop() {
	p.once.Do(func() {
		if p.tick != nil {
			p.tick.Stop()
			close(p.quit)
			p.mu.Lock()
			fmt.Fprint(p.w, "\r\033[K")
			p.mu.Unlock()
		}
	})
}

func outCodec(l *rewrite.LayerReport) string {
	if l.Output.Codec != "" {
		return string(l.Output.Codec)
	}
	return string(l.Source.Codec)
}

func printSummary(w io.Writer, r rewrite.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PLATFORM\tLAYER\tACTION\tCODEC\tSOURCE\tOUTPUT\tDROPPED\tSTRIPPED\tTIME")
	layers, dropped, stripped := 0, 0, 0
	var droppedBytes, strippedBytes int64
	moved, keptDebug := 0, 0
	for _, img := range r.Images {
		plat := img.Platform
		if plat == "" {
			plat = "-"
		}
		for _, l := range img.Layers {
			layers++
			action := string(l.Action)
			if len(l.Merged) > 0 {
				action = fmt.Sprintf("squashed %d", len(l.Merged))
			}
			if l.Empty {
				action += " (empty, left out)"
			}
			codec := string(l.Source.Codec)
			switch l.Action {
			case rewrite.Recompressed, rewrite.Rewritten, rewrite.Squashed:
				codec += "→" + string(l.Output.Codec)
			}
			var nd, ns int
			var bd, bs int64
			for _, c := range l.Changes {
				switch c.Action {
				case rewrite.ActionDropped:
					nd++
					bd += c.Bytes
				case rewrite.ActionStripped:
					ns++
					bs += c.Bytes
				case rewrite.ActionMovedDebug:
					if !l.Shared {
						moved++
						strippedBytes += c.Bytes
					}
				case rewrite.ActionKeptDebug:
					if !l.Shared {
						keptDebug++
					}
				}
			}
			t := l.Duration.Round(time.Millisecond).String()
			if l.Shared {
				t = "(shared)"
			} else {
				dropped, droppedBytes, stripped, strippedBytes = dropped+nd, droppedBytes+bd, stripped+ns, strippedBytes+bs
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", plat, short(l.Source.Digest.String()), action, codec,
				human(l.Source.Size), human(l.Output.Size), count(nd, bd), count(ns, bs), t)
		}
		if img.Debug != nil && img.Debug.SameAsSlim {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", plat, "debug layer", "none: nothing split, the debug tag names the slim image", "-", "-", "-", "-", "-", "")
		} else if img.Debug != nil {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", plat, "debug layer", fmt.Sprintf("%d files", img.Debug.Files), "→"+string(img.Debug.Layer.Codec), "-", human(img.Debug.Layer.Size), "-", "-", "")
		}
	}
	tw.Flush()
	renamed := 0
	for _, img := range r.Images {
		if img.Debug != nil {
			for _, c := range img.Debug.Conflicts {
				fmt.Fprintf(w, "%s: debug file %s\n", img.Platform, c)
			}
		}
		if img.Base != nil {
			fmt.Fprintf(w, "%s: base = %d layer(s): %s\n", img.Platform, img.Base.Layers, img.Base.Reason)
		}
		for _, l := range img.Layers {
			for _, c := range l.Changes {
				if c.Action == rewrite.ActionRenamed && !l.Shared {
					renamed++
				}
			}
		}
	}
	if renamed > 0 {
		fmt.Fprintf(w, "%d entries renamed: names outside the root are written where extractors put them (the report lists each)\n", renamed)
	}
	saved := ""
	if r.SourceBytes > 0 {
		saved = fmt.Sprintf(" (%+.1f%%)", 100*(float64(r.OutputBytes)/float64(r.SourceBytes)-1))
	}
	fmt.Fprintf(w, "total: %d image(s), %d layer(s), %s → %s%s", len(r.Images), layers, human(r.SourceBytes), human(r.OutputBytes), saved)
	if dropped > 0 {
		fmt.Fprintf(w, "; %d file(s) dropped (%s)", dropped, human(droppedBytes))
	}
	if stripped > 0 {
		fmt.Fprintf(w, "; %d ELF file(s) stripped", stripped)
	}
	if moved > 0 {
		fmt.Fprintf(w, "; %d separate debug file(s) moved whole", moved)
	}
	if stripped > 0 || moved > 0 {
		fmt.Fprintf(w, " (%s moved to the debug image)", human(strippedBytes))
	}
	if keptDebug > 0 {
		fmt.Fprintf(w, "; %d ELF file(s) keep their debug sections (the report says why)", keptDebug)
	}
	fmt.Fprintf(w, "; %s\n", r.Duration.Round(time.Millisecond))
}

func count(n int, b int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%d (%s)", n, human(b))
}

func short(d string) string { return report.Short(d) }

func human(n int64) string { return report.Size(n) }
