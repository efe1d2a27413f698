package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FaultProxy is a plain-HTTP proxy in front of a registry that injects
// faults by rule: error answers (with Retry-After), connections reset in the
// middle of a request or response body, delays, stalls and throttled
// transfers. Requests no rule claims pass through untouched. Point a client
// at Host instead of the registry: the Host header is kept, so the upload
// locations the registry hands out lead back through the proxy.
type FaultProxy struct {
	// Host is host:port of the proxy, for image references.
	Host string
	// URL is http://Host.
	URL string

	upstream *url.URL
	client   *http.Client

	mu      sync.Mutex
	faults  []*Fault
	onDone  []func(r *http.Request, status int)
	nreq    atomic.Int64
	closing chan struct{}
}

// Fault is one rule. A request matches when its method and path match;
// the first Skip matching requests pass, the next Times ones (0: all) get
// the fault. What the fault does, in this order:
//
//   - Delay: wait before anything else;
//   - Status: answer it without asking the registry (with Retry-After when
//     set);
//   - ResetRequestAfter >= 0: read that many bytes of the request body, then
//     reset the connection;
//   - otherwise forward, and with ResetAfter >= 0 reset the connection after
//     that many bytes of the response body, with StallAfter >= 0 stop
//     sending after that many bytes until the client gives up (or
//     StallFor passes, then go on); a body shorter than the count passes
//     untouched and is not counted;
//   - Throttle > 0 limits the request and response bodies to that many
//     bytes per second.
//
// Use NewFault for a rule with the byte counts off (-1).
type Fault struct {
	Method string         // "" matches any
	Path   *regexp.Regexp // nil matches any
	Skip   int
	Times  int

	Delay             time.Duration
	Status            int
	RetryAfter        string
	ResetRequestAfter int64
	ResetAfter        int64
	StallAfter        int64
	StallFor          time.Duration
	Throttle          int64

	seen     atomic.Int64
	injected atomic.Int64
}

// NewFault returns a rule for method and path (a regexp; "" matches any),
// with every byte-count fault off.
func NewFault(method, path string) *Fault {
	f := &Fault{Method: method, ResetRequestAfter: -1, ResetAfter: -1, StallAfter: -1}
	if path != "" {
		f.Path = regexp.MustCompile(path)
	}
	return f
}

// Injected is how many requests got this fault.
func (f *Fault) Injected() int { return int(f.injected.Load()) }

func (f *Fault) String() string {
	var what []string
	if f.Delay > 0 {
		what = append(what, fmt.Sprintf("delay %s", f.Delay))
	}
	if f.Status != 0 {
		what = append(what, fmt.Sprintf("status %d", f.Status))
	}
	if f.ResetRequestAfter >= 0 {
		what = append(what, fmt.Sprintf("reset after %d request bytes", f.ResetRequestAfter))
	}
	if f.ResetAfter >= 0 {
		what = append(what, fmt.Sprintf("reset after %d response bytes", f.ResetAfter))
	}
	if f.StallAfter >= 0 {
		what = append(what, fmt.Sprintf("stall after %d response bytes", f.StallAfter))
	}
	if f.Throttle > 0 {
		what = append(what, fmt.Sprintf("throttle %d B/s", f.Throttle))
	}
	return fmt.Sprintf("%s %v: %s", f.Method, f.Path, strings.Join(what, ", "))
}

// claim reports whether r gets this fault, counting it.
func (f *Fault) claim(r *http.Request) bool {
	if f.Method != "" && f.Method != r.Method {
		return false
	}
	if f.Path != nil && !f.Path.MatchString(r.URL.Path) {
		return false
	}
	n := f.seen.Add(1)
	if n <= int64(f.Skip) || f.Times > 0 && n > int64(f.Skip+f.Times) {
		return false
	}
	f.injected.Add(1)
	return true
}

// release gives back a claim whose fault could not apply (the body was
// shorter than the byte count): the request is not counted.
func (f *Fault) release() {
	f.seen.Add(-1)
	f.injected.Add(-1)
}

// NewFaultProxy starts a proxy in front of the registry at host:port
// (plain HTTP), closed when t ends.
func NewFaultProxy(t testing.TB, registry string) *FaultProxy {
	t.Helper()
	up, err := url.Parse("http://" + registry)
	if err != nil {
		t.Fatalf("testenv.NewFaultProxy: %v", err)
	}
	p := &FaultProxy{
		upstream: up,
		client: &http.Client{
			Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 32},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		closing: make(chan struct{}),
	}
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = srv.URL
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	t.Cleanup(func() {
		close(p.closing)
		srv.CloseClientConnections()
		srv.Close()
	})
	return p
}

// Add adds rules; the first that claims a request applies.
func (p *FaultProxy) Add(fs ...*Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, fs...)
}

// Clear removes every rule and OnDone function.
func (p *FaultProxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults, p.onDone = nil, nil
}

// OnDone calls fn after each proxied request with the status sent (0 when
// the connection was reset). fn runs on the request's goroutine.
func (p *FaultProxy) OnDone(fn func(r *http.Request, status int)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onDone = append(p.onDone, fn)
}

// Requests is how many requests the proxy received.
func (p *FaultProxy) Requests() int { return int(p.nreq.Load()) }

func (p *FaultProxy) match(r *http.Request) (*Fault, []func(*http.Request, int)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	done := append([]func(*http.Request, int){}, p.onDone...)
	for _, f := range p.faults {
		if f.claim(r) {
			return f, done
		}
	}
	return nil, done
}

func (p *FaultProxy) serve(w http.ResponseWriter, r *http.Request) {
	p.nreq.Add(1)
	f, done := p.match(r)
	status := 0
	defer func() {
		for _, fn := range done {
			fn(r, status)
		}
	}()
	if f == nil {
		f = &Fault{ResetRequestAfter: -1, ResetAfter: -1, StallAfter: -1}
	}
	if f.Delay > 0 && !p.wait(r.Context(), f.Delay) {
		return
	}
	if f.Status != 0 {
		io.Copy(io.Discard, r.Body)
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		fmt.Fprintf(w, `{"errors":[{"code":"UNKNOWN","message":"injected %d"}]}`, f.Status)
		status = f.Status
		return
	}
	if f.ResetRequestAfter >= 0 {
		io.CopyN(io.Discard, r.Body, f.ResetRequestAfter)
		reset(w, false)
		return
	}

	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme = p.upstream.Scheme
	out.URL.Host = p.upstream.Host
	out.Host = r.Host
	if r.ContentLength == 0 {
		out.Body = nil
	} else if f.Throttle > 0 {
		out.Body = io.NopCloser(&throttled{ctx: r.Context(), r: r.Body, rate: f.Throttle})
	}
	resp, err := p.client.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		status = http.StatusBadGateway
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	var body io.Reader = resp.Body
	if f.Throttle > 0 {
		body = &throttled{ctx: r.Context(), r: body, rate: f.Throttle}
	}
	switch {
	case f.ResetAfter >= 0:
		if n, _ := io.CopyN(w, body, f.ResetAfter); n < f.ResetAfter {
			f.release() // the body ended first: no fault, and it stays due
			status = resp.StatusCode
			return
		}
		reset(w, true)
		return
	case f.StallAfter >= 0:
		if n, _ := io.CopyN(w, body, f.StallAfter); n < f.StallAfter {
			f.release()
			status = resp.StatusCode
			return
		}
		http.NewResponseController(w).Flush()
		if f.StallFor <= 0 || !p.wait(r.Context(), f.StallFor) {
			select {
			case <-r.Context().Done():
			case <-p.closing:
			}
			reset(w, true)
			return
		}
	}
	io.Copy(w, body)
	status = resp.StatusCode
}

// wait sleeps d unless the client goes or the proxy closes.
func (p *FaultProxy) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-p.closing:
	}
	return false
}

// reset closes the connection with a TCP RST, after sending what was
// written when flush is set (without it, nothing at all is sent: not even
// the status line).
func reset(w http.ResponseWriter, flush bool) {
	rc := http.NewResponseController(w)
	if flush {
		rc.Flush()
	}
	conn, buf, err := rc.Hijack()
	if err != nil {
		panic(fmt.Sprintf("testenv.FaultProxy: hijack: %v", err))
	}
	buf.Flush()
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// throttled passes at most rate bytes per second, in small steps.
type throttled struct {
	ctx  context.Context
	r    io.Reader
	rate int64
}

func (t *throttled) Read(p []byte) (int, error) {
	chunk := max(t.rate/20, 1) // 50 ms worth
	if int64(len(p)) > chunk {
		p = p[:chunk]
	}
	n, err := t.r.Read(p)
	if n > 0 {
		d := time.Duration(int64(n) * int64(time.Second) / t.rate)
		select {
		case <-time.After(d):
		case <-t.ctx.Done():
			return n, t.ctx.Err()
		}
	}
	return n, err
}
