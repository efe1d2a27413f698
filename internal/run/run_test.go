package run_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/layerslim/layerslim/elf"
	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/run"
	"github.com/layerslim/layerslim/rewrite"
)

// recorder keeps the names of the events it sees, in order (Progress once).
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Report(e run.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var name string
	switch e.(type) {
	case run.SignedChecked:
		name = "signed"
	case run.Started:
		name = "started"
	case run.Progress:
		name = "progress"
	case run.Rewritten:
		name = "rewritten"
	case run.Verified:
		name = "verified"
	case run.Finished:
		name = "finished"
	}
	if n := len(r.events); n == 0 || r.events[n-1] != name {
		r.events = append(r.events, name)
	}
}

func parse(t *testing.T, s string) imageref.Ref {
	t.Helper()
	r, err := imageref.Parse(s, false)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sample(t *testing.T) string {
	p, err := filepath.Abs("../../testdata/sample")
	if err != nil {
		t.Fatal(err)
	}
	return "oci:" + p + ":sample"
}

// stderrOf is what f writes to os.Stdout and os.Stderr.
func stderrOf(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = w, w
	done := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	func() {
		defer func() {
			os.Stdout, os.Stderr = stdout, stderr
			w.Close()
		}()
		f()
	}()
	return <-done
}

func TestRunWritesDebugImageAndImage(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{}
	var res *run.Result
	o := run.Options{
		Src: parse(t, sample(t)), Dst: parse(t, "oci:"+dir+":slim"), Debug: parse(t, "oci:"+dir+":slim-debug"),
		Rewrite:  []rewrite.Option{rewrite.WithStrip(elf.Unneeded), rewrite.WithJobs(1)},
		Reporter: rec,
	}
	printed := stderrOf(t, func() {
		var err error
		if res, err = run.Run(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	})
	if printed != "" {
		t.Errorf("the job printed %q; it reports events instead", printed)
	}
	if want := []string{"signed", "started", "progress", "rewritten", "finished"}; !slices.Equal(rec.events, want) {
		t.Errorf("events %v, want %v", rec.events, want)
	}
	if res.Skipped != "" || !res.HasDebug || res.Written != res.Report.OutputDigest || res.DebugWritten != *res.Report.DebugDigest {
		t.Errorf("result %+v", res)
	}
	if res.Digests[res.Report.SourceDigest] != res.Written || res.Signed == nil {
		t.Errorf("digests %v, signed %+v", res.Digests, res.Signed)
	}
	for _, tag := range []string{"slim", "slim-debug"} {
		if _, err := imageref.Open(context.Background(), parse(t, "oci:"+dir+":"+tag), imageref.Options{}); err != nil {
			t.Errorf("%s not written: %v", tag, err)
		}
	}
	text, err := o.Describe()
	if err != nil || text == "" {
		t.Errorf("Describe() = %q, %v", text, err)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	dir := t.TempDir()
	res, err := run.Run(context.Background(), run.Options{Src: parse(t, sample(t)), Dst: parse(t, "oci:"+dir+":slim"), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != res.Report.OutputDigest || res.HasDebug {
		t.Errorf("result %+v", res)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a dry run wrote %d entries into DST", len(ents))
	}
}

// A docker-archive holds one image: an index source without a platform is
// an options error, before anything is written.
func TestArchiveOfIndexIsAnOptionsError(t *testing.T) {
	out := filepath.Join(t.TempDir(), "a.tar")
	_, err := run.Run(context.Background(), run.Options{Src: parse(t, sample(t)), Dst: parse(t, "docker-archive:"+out)})
	var oe *run.OptionsError
	if !errors.As(err, &oe) {
		t.Fatalf("error %v, want an OptionsError", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("the archive was written")
	}
}
