package run

import (
	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/rewrite"
	"github.com/layerslim/layerslim/verify"
)

// A Reporter receives a job's events. Report is called from the job's
// goroutines (Progress from the rewrite's, many at once) and must not
// block: a reporter that draws on a slow terminal keeps counters and draws
// them from a goroutine of its own.
type Reporter interface {
	Report(Event)
}

// ReporterFunc adapts a function to Reporter.
type ReporterFunc func(Event)

// Report calls f(e).
func (f ReporterFunc) Report(e Event) { f(e) }

// An Event is one of SignedChecked, Started, Progress, Rewritten, Verified
// and Finished, in that order (Progress many times, some may be missing).
type Event interface{ event() }

// SignedChecked: what is attached to the source was looked up, before
// anything is rewritten. Under signed.Fail with signatures found, the job
// then returns an error; under signed.Skip it ends with Result.Skipped.
type SignedChecked struct {
	Src    imageref.Ref
	Signed *Signed
}

// Started: the rewrite begins.
type Started struct{}

// Progress is an event of the rewrite.
type Progress struct{ Event rewrite.Event }

// Rewritten: the rewrite is done; verifying and writing follow.
type Rewritten struct{}

// Verified: the output was verified against the source (with
// Options.Verify), before anything is written. A violation among Results
// then stops the job.
type Verified struct{ Results []*verify.Result }

// Finished: the job is done and Result is what it returns (batch renders it
// as each image ends).
type Finished struct {
	Src, Dst imageref.Ref
	Result   *Result
}

func (SignedChecked) event() {}
func (Started) event()       {}
func (Progress) event()      {}
func (Rewritten) event()     {}
func (Verified) event()      {}
func (Finished) event()      {}
