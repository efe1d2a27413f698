package registryclient

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/layerslim/layerslim/internal/ctxtime"
)

// Registry faults are survived in two places:
//
//   - faultTransport, the innermost http.RoundTripper under ggcr's auth and
//     retry transports: it retries GET and HEAD requests itself (5xx, 408,
//     429, resets, refused connections, stalls), waits what a Retry-After
//     header asks (up to maxRetryAfter), resumes a response body cut in the
//     middle with a Range request from the byte reached, and cancels a
//     request that makes no progress for StallTimeout;
//   - ggcr's own retry loop around each blob upload and manifest put (which
//     starts the upload session again), given our backoff, bound and
//     predicate. For those requests faultTransport only waits what a
//     Retry-After header asks before handing the answer up.
//
// A GET that still fails after every attempt returns a *RetryError, which
// ggcr's loops do not retry again: attempts never multiply.

// Defaults of Options.Retries, RetryDelay and StallTimeout.
const (
	DefaultRetries      = 4
	DefaultRetryDelay   = time.Second
	DefaultStallTimeout = 2 * time.Minute
	// MaxRetries bounds Options.Retries: the waits double, the 10th is ~8 min.
	MaxRetries = 10
)

const (
	// maxRetryAfter is the longest Retry-After honoured; a registry asking
	// for more is given up on at once.
	maxRetryAfter = time.Minute
	// maxGetDelay caps the doubling wait between two GET attempts.
	maxGetDelay = 30 * time.Second
)

// retryStatus are the answers worth asking again, as in ggcr.
var retryStatus = []int{
	http.StatusRequestTimeout,
	http.StatusTooManyRequests,
	http.StatusInternalServerError,
	http.StatusBadGateway,
	http.StatusServiceUnavailable,
	http.StatusGatewayTimeout,
	499, // nginx: client closed request
	522, // Cloudflare: connection timed out
}

func isRetryStatus(code int) bool {
	for _, c := range retryStatus {
		if c == code {
			return true
		}
	}
	return false
}

// RetryError is a registry request that failed on every attempt.
type RetryError struct {
	Method   string
	URL      string // without query
	Attempts int
	Elapsed  time.Duration
	// Status is the last HTTP status (0 when the last attempt got no answer);
	// Err the last error otherwise.
	Status int
	Err    error
	// RetryAfter is set when the registry asked to wait longer than
	// layerslim does.
	RetryAfter time.Duration
	// InBody: the answer's body was being read (a resume failed).
	InBody bool
}

func (e *RetryError) Error() string {
	var last string
	if e.Status != 0 {
		last = fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
	} else {
		last = e.Err.Error()
	}
	// From RoundTrip the HTTP client adds the method and URL; from a body
	// read nobody does.
	if e.InBody {
		last = e.Method + " " + e.URL + ": " + last
	}
	if e.RetryAfter > 0 {
		return fmt.Sprintf("%s, and the registry asks to wait %s before trying again (layerslim waits at most %s); giving up after %s",
			last, e.RetryAfter, maxRetryAfter, attempts(e.Attempts))
	}
	return fmt.Sprintf("%s (gave up after %s over %s)", last, attempts(e.Attempts), roundElapsed(e.Elapsed))
}

func roundElapsed(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

func (e *RetryError) Unwrap() error { return e.Err }

// StallError is a registry request or response that made no progress for
// the stall timeout.
type StallError struct {
	Method, URL string
	After       time.Duration
}

func (e *StallError) Error() string {
	return fmt.Sprintf("%s %s: no progress from the registry for %s", e.Method, e.URL, e.After)
}

// Timeout and Temporary make a stall retryable for ggcr's loops.
func (e *StallError) Timeout() bool   { return true }
func (e *StallError) Temporary() bool { return true }

// retryPolicy is the resolved form of the Options fields.
type retryPolicy struct {
	retries int // tries after the first
	delay   time.Duration
	stall   time.Duration // 0: no stall timeout
}

func (o Options) retryPolicy() retryPolicy {
	p := retryPolicy{retries: o.Retries, delay: o.RetryDelay, stall: o.StallTimeout}
	switch {
	case p.retries == 0:
		p.retries = DefaultRetries
	case p.retries < 0:
		p.retries = 0
	case p.retries > MaxRetries:
		p.retries = MaxRetries
	}
	if p.delay <= 0 {
		p.delay = DefaultRetryDelay
	}
	switch {
	case p.stall == 0:
		p.stall = DefaultStallTimeout
	case p.stall < 0:
		p.stall = 0
	}
	return p
}

// remoteOptions hand our bound, backoff and predicate to ggcr's retry
// loops (blob uploads, manifest puts, and requests other than GET and HEAD).
func (p retryPolicy) remoteOptions() []remote.Option {
	return []remote.Option{
		remote.WithRetryBackoff(remote.Backoff{Duration: p.delay, Factor: 2, Jitter: 0.1, Steps: p.retries + 1}),
		remote.WithRetryPredicate(retryable),
		remote.WithRetryStatusCodes(retryStatus...),
	}
}

// retryable says whether an error is worth another attempt: a network
// failure, a stall, or a registry answer ggcr calls temporary (5xx, 429,
// 408, TOOMANYREQUESTS); not a request that already used its attempts, and
// not a cancelled one.
func retryable(err error) bool {
	var re *RetryError
	switch {
	case err == nil, errors.As(err, &re), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return true
	}
	var te interface{ Temporary() bool }
	if errors.As(err, &te) && te.Temporary() {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// AttemptsNote is what a push adds to an error that used every attempt of
// ggcr's retry loop: how many attempts were made.
func (o Options) AttemptsNote(err error) error {
	return o.retryPolicy().attemptsNote(err)
}

func (p retryPolicy) attemptsNote(err error) error {
	if p.retries == 0 || !retryable(err) {
		return err
	}
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode != 0 && !strings.Contains(err.Error(), http.StatusText(te.StatusCode)) {
		return fmt.Errorf("%w (%d %s; gave up after %d attempts)", err, te.StatusCode, http.StatusText(te.StatusCode), p.retries+1)
	}
	return fmt.Errorf("%w (gave up after %d attempts)", err, p.retries+1)
}

// faultTransport is described at the top of this file.
type faultTransport struct {
	inner http.RoundTripper
	p     retryPolicy
}

func newFaultTransport(inner http.RoundTripper, p retryPolicy) *faultTransport {
	return &faultTransport{inner: inner, p: p}
}

func (t *faultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if (req.Method == http.MethodGet || req.Method == http.MethodHead) && (req.Body == nil || req.Body == http.NoBody) {
		return t.roundTripIdempotent(req)
	}
	resp, err := t.once(req)
	if err == nil && t.p.retries > 0 && isRetryStatus(resp.StatusCode) {
		// ggcr asks again; make it wait what the registry asked for.
		if ra, ok := retryAfter(resp); ok && ra <= maxRetryAfter {
			if err := ctxtime.Sleep(req.Context(), ra); err != nil {
				resp.Body.Close()
				return nil, err
			}
		}
	}
	return resp, err
}

func (t *faultTransport) roundTripIdempotent(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	start := time.Now()
	for attempt := 1; ; attempt++ {
		resp, err := t.once(req)
		if ctx.Err() != nil {
			if resp != nil {
				resp.Body.Close()
			}
			return nil, ctx.Err()
		}
		switch {
		case err != nil && !retryable(err):
			return nil, err
		case err == nil && !isRetryStatus(resp.StatusCode):
			if req.Method == http.MethodGet && resp.StatusCode == http.StatusOK && !resp.Uncompressed {
				resp.Body = &resumingBody{t: t, req: req, body: resp.Body, total: resp.ContentLength}
			}
			return resp, nil
		}
		re := &RetryError{Method: req.Method, URL: redactURL(req.URL), Attempts: attempt, Err: err}
		wait := backoff(t.p.delay, attempt)
		if resp != nil {
			re.Status = resp.StatusCode
			if ra, ok := retryAfter(resp); ok {
				if ra > maxRetryAfter {
					re.RetryAfter = ra
				}
				wait = max(wait, ra)
			}
			drain(resp.Body)
		}
		if attempt > t.p.retries || re.RetryAfter > 0 {
			re.Elapsed = time.Since(start)
			return nil, re
		}
		if err := ctxtime.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// once sends req once, cancelling it when the registry makes no progress
// for the stall timeout: no answer (and, while uploading, no body read) for
// that long, or one body read of the answer waiting that long.
func (t *faultTransport) once(req *http.Request) (*http.Response, error) {
	if t.p.stall <= 0 {
		return t.inner.RoundTrip(req)
	}
	ctx, cancel := context.WithCancel(req.Context())
	w := &watchdog{d: t.p.stall, cancel: cancel, method: req.Method, url: redactURL(req.URL)}
	w.timer = time.AfterFunc(w.d, w.fire)
	r := req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		r.Body = &watchedBody{ReadCloser: req.Body, w: w}
		if req.GetBody != nil {
			r.GetBody = func() (io.ReadCloser, error) {
				b, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				return &watchedBody{ReadCloser: b, w: w}, nil
			}
		}
	}
	resp, err := t.inner.RoundTrip(r)
	w.sent.Store(true)
	w.timer.Stop()
	if err != nil {
		cancel()
		if w.fired.Load() {
			return nil, w.err()
		}
		return nil, err
	}
	resp.Body = &watchedResponse{body: resp.Body, w: w}
	return resp, nil
}

type watchdog struct {
	d     time.Duration
	timer *time.Timer
	fired atomic.Bool
	// sent is set once the answer came: a late read of the request body
	// (HTTP/2 may go on sending) no longer arms the timer.
	sent        atomic.Bool
	cancel      context.CancelFunc
	method, url string
}

func (w *watchdog) fire() {
	w.fired.Store(true)
	w.cancel()
}

func (w *watchdog) err() error { return &StallError{Method: w.method, URL: w.url, After: w.d} }

// watchedBody is a request body: each read by the transport is progress.
type watchedBody struct {
	io.ReadCloser
	w *watchdog
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if !b.w.sent.Load() {
		b.w.timer.Reset(b.w.d)
	}
	return n, err
}

// watchedResponse times each read of a response body; the time the reader
// spends elsewhere does not count.
type watchedResponse struct {
	body io.ReadCloser
	w    *watchdog
}

func (b *watchedResponse) Read(p []byte) (int, error) {
	if b.w.fired.Load() {
		return 0, b.w.err()
	}
	b.w.timer.Reset(b.w.d)
	n, err := b.body.Read(p)
	b.w.timer.Stop()
	if err != nil && err != io.EOF && b.w.fired.Load() {
		return n, b.w.err()
	}
	return n, err
}

func (b *watchedResponse) Close() error {
	b.w.timer.Stop()
	err := b.body.Close()
	b.w.cancel()
	return err
}

// resumingBody is the body of a GET answered 200: when a read fails in the
// middle, it asks again for the rest (Range: bytes=N-) and goes on; a
// server that ignores the range has the first N bytes skipped. Whoever
// reads a blob checks its digest at the end, so a resumed body that is
// not the same blob is caught there.
type resumingBody struct {
	t     *faultTransport
	req   *http.Request
	body  io.ReadCloser
	total int64 // Content-Length, -1 when unknown
	n     int64 // bytes read so far
	cut   error // the read error to resume from
	first error // the first cut
	// fails counts the attempts to resume since the body last moved
	// resumeProgress bytes in one go, since the first of them.
	fails    int
	sinceCut int64
	since    time.Time
	failed   error // set once resuming gave up
}

func (b *resumingBody) Read(p []byte) (int, error) {
	for {
		if b.failed != nil {
			return 0, b.failed
		}
		if b.cut != nil {
			if err := b.resume(); err != nil {
				b.failed = err
				return 0, err
			}
		}
		n, err := b.body.Read(p)
		b.n += int64(n)
		if b.sinceCut += int64(n); b.sinceCut >= resumeProgress {
			b.fails = 0
		}
		if err == nil || err == io.EOF || b.req.Context().Err() != nil || !retryable(err) {
			return n, err
		}
		b.cut, b.first = err, cmp.Or(b.first, err)
		if n > 0 {
			return n, nil
		}
	}
}

// resume makes one attempt to get the rest of the body, after a wait; it
// returns an error when the attempts are used up or the answer is final.
func (b *resumingBody) resume() error {
	b.body.Close()
	b.body = http.NoBody
	b.fails++
	giveUp := func(last error) error {
		what := ""
		if b.total >= 0 {
			what = fmt.Sprintf(" of %d", b.total)
		}
		return &RetryError{
			Method: b.req.Method, URL: redactURL(b.req.URL), Attempts: b.fails, Elapsed: time.Since(b.since), InBody: true,
			Err: fmt.Errorf("reading the answer: cut at byte %d%s (%s); last attempt to resume: %w", b.n, what, brief(b.first), briefError{last}),
		}
	}
	if b.fails == 1 {
		b.since = time.Now()
	}
	if b.fails > b.t.p.retries {
		return giveUp(b.cut)
	}
	ctx := b.req.Context()
	if err := ctxtime.Sleep(ctx, backoff(b.t.p.delay, b.fails)); err != nil {
		return err
	}
	req := b.req.Clone(ctx)
	// A closed range when the length is known: some registries (ggcr's
	// own) understand no other form.
	rng := fmt.Sprintf("bytes=%d-", b.n)
	if b.total > 0 {
		rng += strconv.FormatInt(b.total-1, 10)
	}
	req.Header.Set("Range", rng)
	resp, err := b.t.once(req)
	switch {
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case err != nil && !retryable(err):
		return giveUp(err)
	case err != nil:
		b.cut = err
		return nil
	case resp.StatusCode == http.StatusPartialContent && rangeStart(resp) == b.n:
		b.body, b.cut, b.sinceCut = resp.Body, nil, 0
		return nil
	case resp.StatusCode == http.StatusOK:
		if _, err := io.CopyN(io.Discard, resp.Body, b.n); err != nil {
			resp.Body.Close()
			b.cut = err
			return nil
		}
		b.body, b.cut, b.sinceCut = resp.Body, nil, 0
		return nil
	}
	drain(resp.Body)
	err = fmt.Errorf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	if !isRetryStatus(resp.StatusCode) {
		return giveUp(err)
	}
	b.cut = err
	return nil
}

func (b *resumingBody) Close() error { return b.body.Close() }

// brief is err without the method and URL a message around it names already.
func brief(err error) string {
	var se *StallError
	var ue *url.Error
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("no progress from the registry for %s", se.After)
	case errors.As(err, &ue):
		return ue.Err.Error()
	}
	return err.Error()
}

// briefError prints as brief, and unwraps to the error.
type briefError struct{ err error }

func (e briefError) Error() string { return brief(e.err) }
func (e briefError) Unwrap() error { return e.err }

// resumeProgress is how far a resumed body must get for its earlier
// failures to be forgotten: a registry that cuts every few KiB still runs
// out of attempts, one that cuts a large blob now and then does not.
const resumeProgress = 1 << 20

// rangeStart is the first byte of a 206 answer's Content-Range, or -1.
func rangeStart(resp *http.Response) int64 {
	cr := resp.Header.Get("Content-Range")
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return -1
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(first, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

// backoff is the wait before attempt+1: delay doubled attempt-1 times,
// capped, with up to 10% jitter.
func backoff(delay time.Duration, attempt int) time.Duration {
	d := delay
	for i := 1; i < attempt && d < maxGetDelay; i++ {
		d *= 2
	}
	d = min(d, maxGetDelay)
	return d + time.Duration(rand.Int64N(int64(d)/10+1))
}

// drain reads a little of a body we give up on, so its connection can be
// reused, and closes it.
func drain(rc io.ReadCloser) {
	io.CopyN(io.Discard, rc, 4<<10)
	rc.Close()
}
