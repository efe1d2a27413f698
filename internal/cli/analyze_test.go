package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const analyzeSample = "oci:../../testdata/sample:sample"

// runAnalyzeCmd runs a fresh analyze command and returns stdout, the error
// and the exit status main would use.
func runAnalyzeCmd(t *testing.T, args ...string) (string, error, int) {
	t.Helper()
	cmd := newAnalyze()
	var out, errb bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err, ExitCode(err)
}

func analyzeJSON(t *testing.T, args ...string) analyzeOutput {
	t.Helper()
	out, err, code := runAnalyzeCmd(t, append([]string{analyzeSample, "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("exit %d: %v", code, err)
	}
	var got analyzeOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	return got
}

func TestAnalyzeSample(t *testing.T) {
	out, err, code := runAnalyzeCmd(t, analyzeSample)
	if code != 0 {
		t.Fatalf("exit %d: %v", code, err)
	}
	for _, want := range []string{
		"linux/amd64 sha256:", "linux/arm64/v8 sha256:",
		"LAYER", "CREATED BY", "EST. ZSTD", "total",
		"— after rewrite and zstd about",
		"drop by preset: apt ",
		"app/hello", "debug sections",
		"var/lib/dpkg/status", "shadowed by layer 2",
		"etc/motd", "shadowed by layer 4",
		"srv/data/old-1.txt",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The licence files of the sample stay.
	for _, keep := range []string{"copyright", "LICENSE"} {
		if strings.Contains(out, keep) {
			t.Errorf("output lists %s as waste:\n%s", keep, out)
		}
	}
}

func TestAnalyzeJSON(t *testing.T) {
	got := analyzeJSON(t)
	if len(got.Images) != 2 || got.Images[0].Platform != "linux/amd64" || got.Images[1].Platform != "linux/arm64/v8" {
		t.Fatalf("images: %+v", got.Images)
	}
	for _, r := range got.Images {
		if len(r.Layers) != 4 {
			t.Errorf("%s: %d layers, want 4", r.Platform, len(r.Layers))
		}
		tot := r.Totals
		// Layer 4 overwrites app/config.yaml, deletes etc/motd and makes
		// srv/data opaque; layer 2 overwrites var/lib/dpkg/status.
		if tot.ShadowedBytes <= 0 || tot.DropBytes <= 0 || tot.DebugBytes <= 0 || tot.ELFFiles != 1 {
			t.Errorf("%s totals: %+v", r.Platform, tot)
		}
		if r.WasteBytes != tot.DebugBytes+tot.DropBytes+tot.ShadowedBytes {
			t.Errorf("%s: waste %d is not the sum of %+v", r.Platform, r.WasteBytes, tot)
		}
		if tot.EstimatedZstd <= 0 || tot.EstimatedZstd >= tot.UncompressedSize {
			t.Errorf("%s: estimate %d, uncompressed %d", r.Platform, tot.EstimatedZstd, tot.UncompressedSize)
		}
		if r.Layers[2].DebugBytes != tot.DebugBytes {
			t.Errorf("%s: debug bytes outside the app layer: %+v", r.Platform, r.Layers)
		}
		for _, p := range []string{"apt", "docs", "pip", "gocache", "man", "info"} {
			if r.Layers[1].DropByPreset[p] <= 0 {
				t.Errorf("%s: no %s bytes in layer 2: %v", r.Platform, p, r.Layers[1].DropByPreset)
			}
		}
	}
	if !strings.Contains(got.Options, "strip=unneeded") || !strings.HasSuffix(got.Source, "testdata/sample:sample") {
		t.Errorf("source %q, options %q", got.Source, got.Options)
	}

	// The same numbers as the library's, and the same every time.
	again := analyzeJSON(t)
	if diff := cmp.Diff(got, again); diff != "" {
		t.Errorf("two runs differ (-first +second):\n%s", diff)
	}
	// Fewer presets, less dropped; no stripping, no debug bytes.
	narrow := analyzeJSON(t, "--drop", "docs", "--strip", "none", "--platform", "linux/arm64")
	if len(narrow.Images) != 1 || narrow.Images[0].Platform != "linux/arm64/v8" {
		t.Fatalf("--platform linux/arm64: %+v", narrow.Images)
	}
	n, full := narrow.Images[0].Totals, got.Images[1].Totals
	if n.DebugBytes != 0 || n.DropBytes >= full.DropBytes || n.DropByPreset["docs"] != full.DropByPreset["docs"] || n.ShadowedBytes != full.ShadowedBytes {
		t.Errorf("--drop docs --strip none: %+v, full: %+v", n, full)
	}
}

func TestAnalyzeGates(t *testing.T) {
	rep := analyzeJSON(t)
	var maxPct float64
	var maxBytes int64
	for _, r := range rep.Images {
		maxPct = max(maxPct, r.WastePercent)
		maxBytes = max(maxBytes, r.WasteBytes)
	}
	if maxPct < 10 || maxPct > 90 || maxBytes < 100e3 || maxBytes > 1<<20 {
		t.Fatalf("the sample wastes %.1f%%, %d bytes: the cases below assume 10-90%% and 100 kB-1 MiB", maxPct, maxBytes)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--max-waste", "10%"}, 3, "linux/amd64: waste "},
		{[]string{"--max-waste", "10"}, 3, "exceeds --max-waste 10"},
		{[]string{"--max-waste", "90%"}, 0, ""},
		{[]string{"--max-waste-bytes", "100kB"}, 3, "exceeds --max-waste-bytes 100kB"},
		{[]string{"--max-waste-bytes", "1MiB"}, 0, ""},
		{[]string{"--max-waste-bytes", "1048576"}, 0, ""},
		{[]string{"--max-waste", "90", "--max-waste-bytes", "100000"}, 3, "--max-waste-bytes 100000"},
		{[]string{"--max-waste", "10", "--platform", "linux/arm64"}, 3, "linux/arm64/v8: waste"},
		{[]string{"--max-waste", "10", "--drop", "none", "--strip", "none"}, 0, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			for _, format := range [][]string{nil, {"--json"}} {
				out, err, code := runAnalyzeCmd(t, append(append([]string{analyzeSample}, tc.args...), format...)...)
				if code != tc.code {
					t.Fatalf("%v: exit %d (%v), want %d", format, code, err, tc.code)
				}
				var ge *GateError
				if tc.code == 3 && (!errors.As(err, &ge) || !strings.Contains(ge.Msg, tc.msg)) {
					t.Errorf("%v: error %v, want a GateError saying %q", format, err, tc.msg)
				}
				// The report is printed either way.
				if format == nil && !strings.Contains(out, "waste:") {
					t.Errorf("no report:\n%s", out)
				}
				if format != nil {
					var got analyzeOutput
					if err := json.Unmarshal([]byte(out), &got); err != nil {
						t.Fatalf("--json output does not parse: %v", err)
					}
					if (len(got.Exceeded) > 0) != (tc.code == 3) {
						t.Errorf("exceeded = %q", got.Exceeded)
					}
				}
			}
		})
	}
}

func TestAnalyzeUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{analyzeSample, "extra"},
		{analyzeSample, "--strip", "some"},
		{analyzeSample, "--drop", "nosuch"},
		{analyzeSample, "--max-waste", "150"},
		{analyzeSample, "--max-waste", "ten"},
		{analyzeSample, "--max-waste-bytes", "5M"},
		{analyzeSample, "--max-waste-bytes", "-1"},
		{analyzeSample, "--platform", "amd64"},
		{analyzeSample, "--level", "30"},
		{analyzeSample, "--jobs", "-1"},
		{analyzeSample, "--no-such-flag"},
		{"oci:"},
	} {
		if _, err, code := runAnalyzeCmd(t, args...); code != 2 {
			t.Errorf("%q: exit %d (%v), want 2", args, code, err)
		}
	}
	// A source that does not exist is a failure, not a usage error.
	if _, err, code := runAnalyzeCmd(t, "oci:"+t.TempDir()+"/missing:x"); code != 1 {
		t.Errorf("missing layout: exit %d (%v), want 1", code, err)
	}
}

func TestParseGateBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "123": 123, "50MB": 50e6, "50mb": 50e6, "50MiB": 50 << 20, "1.5GB": 1.5e9,
		"2 KiB": 2048, "7B": 7, "1TB": 1e12, " 3kb ": 3000,
	} {
		if got, err := parseGateBytes(in); err != nil || got != want {
			t.Errorf("parseGateBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "5M", "5k", "1.2.3MB", "-5", "5 parsecs", "1e3"} {
		if got, err := parseGateBytes(in); err == nil {
			t.Errorf("parseGateBytes(%q) = %d, want an error", in, got)
		}
	}
	for in, want := range map[string]float64{"10": 10, "10%": 10, "12.5%": 12.5, "0": 0, "100 %": 100} {
		if got, err := parseGatePercent(in); err != nil || got != want {
			t.Errorf("parseGatePercent(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestAnalyzeFormats(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--format", "markdown"}, []string{"## layerslim analyze:", "### linux/arm64/v8", "| layer | created by |", "<code>app/hello</code>"}},
		{[]string{"--format", "html"}, []string{"<!DOCTYPE html>", `<svg class="map" data-p="1"`, `<table class="sortable">`}},
		{[]string{"--format", "json"}, []string{`"images": [`, `"wastePercent"`}},
		{[]string{"--format", "text"}, []string{"linux/amd64 sha256:", "EST. ZSTD"}},
		{[]string{"--format", "json", "--json"}, []string{`"images": [`}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, err, code := runAnalyzeCmd(t, append([]string{analyzeSample}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %v", code, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
		})
	}
}

func TestAnalyzeFormatUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"--format", "yaml"}, {"--format", "html", "--json"}, {"--format="}} {
		out, err, code := runAnalyzeCmd(t, append([]string{analyzeSample}, args...)...)
		if code != 2 || out != "" {
			t.Errorf("%v: exit %d (%v), output %q; want a usage error (2) and no output", args, code, err, out)
		}
	}
}

// The gate still exits 3 after a Markdown report, which is printed whole.
func TestAnalyzeMarkdownGate(t *testing.T) {
	out, err, code := runAnalyzeCmd(t, analyzeSample, "--format", "markdown", "--max-waste", "1%")
	if code != 3 {
		t.Fatalf("exit %d (%v), want 3", code, err)
	}
	if !strings.Contains(out, "> [!WARNING]") || !strings.Contains(out, "exceeds --max-waste 1%") || !strings.Contains(out, "<sub>layerslim") {
		t.Errorf("markdown does not show the gate:\n%s", out)
	}
}
