package registryclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PlainHTTPError is returned for a plain-HTTP request to a registry that is
// not on a loopback address when Options.Insecure is off. go-containerregistry
// falls back to plain HTTP for private (RFC 1918) addresses and *.local names
// too; layerslim does not, because credentials and content would cross the
// network unprotected.
type PlainHTTPError struct {
	Host string // host[:port] of the request
}

func (e *PlainHTTPError) Error() string {
	return fmt.Sprintf("%s: refusing plain HTTP to a registry that is not on a loopback address; serve it over HTTPS, or pass --insecure to allow plain HTTP (and unverified TLS)", e.Host)
}

// CertificatesError says that the certificates configured for a registry
// (Options.CAFiles, a certs.d directory) could not be used.
type CertificatesError struct {
	Host string // host[:port] of the registry
	Err  error
}

func (e *CertificatesError) Error() string { return e.Host + ": " + e.Err.Error() }
func (e *CertificatesError) Unwrap() error { return e.Err }

// isLoopback reports whether host (host, host:port, [v6]:port) is a
// loopback address or a localhost name (RFC 6761), where plain HTTP never
// leaves the machine.
func isLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// DefaultCertsDirs are the certs.d directories searched for registry
// certificates when Options.CertsDirs is nil, as docker, podman and skopeo
// search them: $XDG_CONFIG_HOME/containers/certs.d (~/.config/containers/certs.d),
// /etc/containers/certs.d and /etc/docker/certs.d.
func DefaultCertsDirs() []string {
	var dirs []string
	if cfg, err := os.UserConfigDir(); err == nil {
		dirs = append(dirs, filepath.Join(cfg, "containers", "certs.d"))
	}
	return append(dirs, "/etc/containers/certs.d", "/etc/docker/certs.d")
}

// registryTransport is the bottom of every registry request: it refuses
// plain HTTP off loopback, and gives each registry host the TLS settings
// that Options and the certs.d directories ask for.
type registryTransport struct {
	insecure  bool
	caFiles   []string
	certsDirs []string
	base      *http.Transport // cloned for hosts that need their own TLS settings

	rootsOnce sync.Once
	roots     *x509.CertPool // the system's plus caFiles; nil: the system's
	rootsErr  error

	mu    sync.Mutex
	hosts map[string]http.RoundTripper // by request host
}

func newRegistryTransport(o Options) *registryTransport {
	base, ok := remote.DefaultTransport.(*http.Transport)
	if !ok {
		base = http.DefaultTransport.(*http.Transport)
	}
	if o.Dial != nil {
		base = base.Clone()
		base.DialContext = o.Dial
	}
	dirs := o.CertsDirs
	if dirs == nil {
		dirs = DefaultCertsDirs()
	}
	return &registryTransport{
		insecure:  o.Insecure,
		caFiles:   o.CAFiles,
		certsDirs: dirs,
		base:      base,
		hosts:     map[string]http.RoundTripper{},
	}
}

func (t *registryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt, err := t.forRequest(req)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return rt.RoundTrip(req)
}

func (t *registryTransport) forRequest(req *http.Request) (http.RoundTripper, error) {
	host := req.URL.Host
	if req.URL.Scheme == "http" {
		if !t.insecure && !isLoopback(host) {
			return nil, &PlainHTTPError{Host: host}
		}
		return t.base, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if rt, ok := t.hosts[host]; ok {
		return rt, nil
	}
	rt, err := t.newHostTransport(host)
	if err != nil {
		return nil, &CertificatesError{Host: host, Err: err}
	}
	t.hosts[host] = rt
	return rt, nil
}

// newHostTransport is the shared base transport when nothing asks for
// other TLS settings (connections are then pooled with every other user of
// remote.DefaultTransport), and a clone with its own tls.Config otherwise.
func (t *registryTransport) newHostTransport(host string) (http.RoundTripper, error) {
	cas, certs, err := readCertsDirs(t.certsDirs, host)
	if err != nil {
		return nil, err
	}
	roots, err := t.rootPool()
	if err != nil {
		return nil, err
	}
	if len(cas) == 0 && len(certs) == 0 && roots == nil && !t.insecure {
		return t.base, nil
	}
	if len(cas) > 0 {
		if roots == nil {
			roots = systemPool()
		} else {
			roots = roots.Clone()
		}
		for _, ca := range cas {
			if !roots.AppendCertsFromPEM(ca.pem) {
				return nil, fmt.Errorf("CA file %s holds no PEM certificate", ca.path)
			}
		}
	}
	tr := t.base.Clone()
	cfg := &tls.Config{}
	if tr.TLSClientConfig != nil {
		cfg = tr.TLSClientConfig.Clone()
	}
	cfg.RootCAs = roots
	cfg.Certificates = certs
	cfg.InsecureSkipVerify = t.insecure //nolint:gosec // asked for with --insecure
	tr.TLSClientConfig = cfg
	return tr, nil
}

// rootPool is the system pool plus Options.CAFiles, loaded once; nil when
// there are no CA files.
func (t *registryTransport) rootPool() (*x509.CertPool, error) {
	t.rootsOnce.Do(func() {
		if len(t.caFiles) == 0 {
			return
		}
		pool := systemPool()
		for _, f := range t.caFiles {
			b, err := os.ReadFile(f)
			if err != nil {
				t.rootsErr = fmt.Errorf("reading the CA file (--ca-file): %w", err)
				return
			}
			if !pool.AppendCertsFromPEM(b) {
				t.rootsErr = fmt.Errorf("CA file %s holds no PEM certificate", f)
				return
			}
		}
		t.roots = pool
	})
	return t.roots, t.rootsErr
}

// systemPool is a copy of the system's trusted roots (which SSL_CERT_FILE
// and SSL_CERT_DIR choose on Linux), or an empty pool where there is none.
func systemPool() *x509.CertPool {
	if p, err := x509.SystemCertPool(); err == nil && p != nil {
		return p
	}
	return x509.NewCertPool()
}

type caFile struct {
	path string
	pem  []byte
}

// readCertsDirs reads the certificates for host from DIR/HOST of every
// certs.d directory, as docker does: *.crt files are CAs, and every *.cert
// file is a client certificate whose key is the *.key file of the same
// name. A host without a port also matches DIR/HOST:443. Directories that
// do not exist are skipped.
func readCertsDirs(dirs []string, host string) ([]caFile, []tls.Certificate, error) {
	names := []string{host}
	if h, port, err := net.SplitHostPort(host); err == nil && port == "443" {
		names = append(names, h)
	} else if err != nil {
		names = append(names, host+":443")
	}
	var cas []caFile
	var certs []tls.Certificate
	for _, d := range dirs {
		for _, n := range names {
			dir := filepath.Join(d, n)
			c, k, err := readCertsDir(dir)
			if err != nil {
				return nil, nil, fmt.Errorf("reading the certificates in %s: %w", dir, err)
			}
			cas = append(cas, c...)
			certs = append(certs, k...)
		}
	}
	return cas, certs, nil
}

func readCertsDir(dir string) ([]caFile, []tls.Certificate, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var cas []caFile
	var certs []tls.Certificate
	has := map[string]bool{}
	for _, e := range entries {
		has[e.Name()] = true
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		switch base, ext := strings.TrimSuffix(e.Name(), filepath.Ext(e.Name())), filepath.Ext(e.Name()); ext {
		case ".crt":
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, nil, err
			}
			cas = append(cas, caFile{path: p, pem: b})
		case ".cert":
			if !has[base+".key"] {
				return nil, nil, fmt.Errorf("client certificate %s has no key %s.key", e.Name(), base)
			}
			c, err := tls.LoadX509KeyPair(p, filepath.Join(dir, base+".key"))
			if err != nil {
				return nil, nil, fmt.Errorf("client certificate %s: %w", e.Name(), err)
			}
			certs = append(certs, c)
		case ".key":
			if !has[base+".cert"] {
				return nil, nil, fmt.Errorf("client key %s has no certificate %s.cert", e.Name(), base)
			}
		}
	}
	return cas, certs, nil
}
