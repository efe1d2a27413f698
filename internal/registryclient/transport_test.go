package registryclient_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/imageref/reftest"
	"github.com/layerslim/layerslim/internal/registryclient"
	"github.com/layerslim/layerslim/internal/testenv"
)

// The guard refuses before any connection is made, and closes the body.
func TestTransportRefusesPlainHTTP(t *testing.T) {
	body := &closeRecorder{Reader: strings.NewReader("x")}
	req, err := http.NewRequest(http.MethodPut, "http://10.1.2.3:5000/v2/a/blobs/uploads/", body)
	if err != nil {
		t.Fatal(err)
	}
	_, err = (registryclient.Options{}).Transport().RoundTrip(req)
	var pe *registryclient.PlainHTTPError
	if !errors.As(err, &pe) || pe.Host != "10.1.2.3:5000" {
		t.Fatalf("RoundTrip: %v, want a PlainHTTPError for 10.1.2.3:5000", err)
	}
	if !body.closed {
		t.Error("the request body was not closed")
	}
	for _, want := range []string{"10.1.2.3:5000", "plain HTTP", "--insecure"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

// dialTo sends every connection to addr, as if any host name or address
// resolved to it.
func dialTo(addr string) func(ctx context.Context, network, _ string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

// ggcr speaks plain HTTP to private (RFC 1918) addresses on its own;
// layerslim only to loopback ones, unless --insecure.
func TestRegistryPlainHTTPOnlyOnLoopback(t *testing.T) {
	ctx := context.Background()
	host, _ := reftest.NewRegistry(t)
	_, port, _ := net.SplitHostPort(host)
	img := reftest.RandomImage(t, 1)
	if _, err := imageref.WriteImage(ctx, reftest.MustParse(t, host+"/p/a:1"), img, imageref.Options{}); err != nil {
		t.Fatalf("plain HTTP on loopback: %v", err)
	}
	for _, fake := range []string{"10.1.2.3", "172.16.0.9", "192.168.77.7"} {
		reg := net.JoinHostPort(fake, port)
		o := imageref.Options{Dial: dialTo(host)}
		_, err := imageref.Open(ctx, reftest.MustParse(t, reg+"/p/a:1"), o)
		var pe *registryclient.PlainHTTPError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), reg+": refusing plain HTTP") {
			t.Errorf("Open %s over plain HTTP: %v, want a refusal", reg, err)
		}
		o.Insecure = true
		src, err := imageref.Open(ctx, reftest.MustParse(t, reg+"/p/a:1"), o)
		if err != nil {
			t.Fatalf("Open %s with Insecure: %v", reg, err)
		}
		if reftest.MustDigest(t, src.Image) != reftest.MustDigest(t, img) {
			t.Errorf("%s: wrong image", reg)
		}
	}
}

// tlsRegistry serves ggcr's registry over TLS with a certificate for
// 127.0.0.1 from ca; with clientCAs, it demands a client certificate.
func tlsRegistry(t *testing.T, ca *testenv.CA, clientCAs *x509.CertPool) string {
	t.Helper()
	s := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "127.0.0.1").TLSCertificate(t)}}
	if clientCAs != nil {
		s.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		s.TLS.ClientCAs = clientCAs
	}
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	s.StartTLS()
	t.Cleanup(s.Close)
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// Certificates are verified unless Insecure; a private CA is trusted with
// CAFiles or a certs.d directory for that host.
func TestRegistryTLSTrust(t *testing.T) {
	ctx := context.Background()
	ca := testenv.NewCA(t, "private CA")
	host := tlsRegistry(t, ca, nil)
	ref := reftest.MustParse(t, host+"/tls/app:1")
	img := reftest.RandomImage(t, 1)
	dir := t.TempDir()

	_, err := imageref.WriteImage(ctx, ref, img, imageref.Options{CertsDirs: []string{}})
	var te *registryclient.TLSError
	if !errors.As(err, &te) || te.Registry != host {
		t.Fatalf("untrusted CA: %v, want a TLSError for %s", err, host)
	}
	for _, want := range []string{host + ": the registry's TLS certificate is not trusted", "x509: certificate signed by unknown authority", "--ca-file", "--insecure"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}

	caFile := ca.WriteCert(t, dir, "ca.pem")
	if _, err := imageref.WriteImage(ctx, ref, img, imageref.Options{CAFiles: []string{caFile}, CertsDirs: []string{}}); err != nil {
		t.Fatalf("with CAFiles: %v", err)
	}

	certsD := filepath.Join(dir, "certs.d")
	ca.WriteCert(t, certsD, "127.0.0.1:1/ca.crt") // another registry's
	if _, err := imageref.Open(ctx, ref, imageref.Options{CertsDirs: []string{certsD}}); !errors.As(err, &te) {
		t.Errorf("with the CA under another host in certs.d: %v, want a TLSError", err)
	}
	ca.WriteCert(t, certsD, host+"/ca.crt")
	src, err := imageref.Open(ctx, ref, imageref.Options{CertsDirs: []string{filepath.Join(dir, "missing"), certsD}})
	if err != nil {
		t.Fatalf("with certs.d/%s/ca.crt: %v", host, err)
	}
	if reftest.MustDigest(t, src.Image) != reftest.MustDigest(t, img) {
		t.Error("wrong image")
	}

	// A file that is not PEM is an error naming it.
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	for file, says := range map[string]string{
		bad:                            "CA file " + bad + " holds no PEM certificate",
		filepath.Join(dir, "none.pem"): "reading the CA file (--ca-file): open " + filepath.Join(dir, "none.pem") + ": no such file or directory",
	} {
		_, err := imageref.Open(ctx, ref, imageref.Options{CAFiles: []string{file}, CertsDirs: []string{}})
		if want := "reading " + ref.String() + ": " + host + ": " + says; err == nil || err.Error() != want {
			t.Errorf("CA file %s: %v, want %s", file, err, want)
		}
	}
}

// A registry that asks for a client certificate gets the one from
// certs.d/HOST/*.cert and *.key.
func TestRegistryClientCertificate(t *testing.T) {
	ctx := context.Background()
	ca := testenv.NewCA(t, "server CA")
	clientCA := testenv.NewCA(t, "client CA")
	host := tlsRegistry(t, ca, clientCA.Pool())
	ref := reftest.MustParse(t, host+"/mtls/app:1")
	certsD := t.TempDir()
	ca.WriteCert(t, certsD, host+"/ca.crt")
	_, err := imageref.WriteImage(ctx, ref, reftest.RandomImage(t, 1), imageref.Options{CertsDirs: []string{certsD}})
	var te *registryclient.TLSError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), host+": the registry refused the TLS handshake (remote error: tls: certificate required)") ||
		!strings.Contains(err.Error(), host+"/client.cert") {
		t.Fatalf("without a client certificate: %v, want a TLSError that says where the certificate goes", err)
	}
	clientCA.Client(t, "layerslim").Write(t, filepath.Join(certsD, host), "client.cert", "client.key")
	if _, err := imageref.WriteImage(ctx, ref, reftest.RandomImage(t, 1), imageref.Options{CertsDirs: []string{certsD}}); err != nil {
		t.Fatalf("with certs.d/%s/client.cert: %v", host, err)
	}
	// A key without its certificate is a mistake worth saying.
	clientCA.Client(t, "other").Write(t, filepath.Join(certsD, host), "other.crtx", "other.key")
	_, err = imageref.Open(ctx, ref, imageref.Options{CertsDirs: []string{certsD}})
	var ce *registryclient.CertificatesError
	if !errors.As(err, &ce) || !strings.HasSuffix(err.Error(), host+": reading the certificates in "+filepath.Join(certsD, host)+": client key other.key has no certificate other.cert") {
		t.Errorf("a key without a certificate: %v", err)
	}
}

// basicAuthRegistry is ggcr's registry behind HTTP basic authentication:
// user may do anything, reader only read.
func basicAuthRegistry(t *testing.T, user, pass, reader string) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		switch {
		case ok && p == pass && (u == user || u == reader && (r.Method == http.MethodGet || r.Method == http.MethodHead)):
			reg.ServeHTTP(w, r)
		case ok && p == pass && u == reader:
			registryError(w, http.StatusForbidden, "DENIED", "requested access to the resource is denied")
		default:
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		}
	}))
	t.Cleanup(s.Close)
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func registryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

// keychain answers for one registry.
type keychain struct {
	registry string
	auth     authn.Authenticator
	err      error
}

func (k keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if k.err != nil {
		return nil, k.err
	}
	if r.RegistryStr() != k.registry || k.auth == nil {
		return authn.Anonymous, nil
	}
	return k.auth, nil
}

func TestRegistryAuthErrors(t *testing.T) {
	ctx := context.Background()
	const secret = "s3cr3t-Pa55word"
	host := basicAuthRegistry(t, "alice", secret, "bob")
	ref := reftest.MustParse(t, host+"/auth/app:1")
	img := reftest.RandomImage(t, 1)
	good := imageref.Options{Keychain: keychain{registry: host, auth: &authn.Basic{Username: "alice", Password: secret}}}
	if _, err := imageref.WriteImage(ctx, ref, img, good); err != nil {
		t.Fatalf("with the right credentials: %v", err)
	}
	if _, err := imageref.Open(ctx, ref, good); err != nil {
		t.Fatalf("with the right credentials: %v", err)
	}

	wrong := imageref.Options{Keychain: keychain{registry: host, auth: &authn.Basic{Username: "alice", Password: "wrong-" + secret}}}
	none := imageref.Options{Keychain: keychain{registry: host}}
	reader := imageref.Options{Keychain: keychain{registry: host, auth: &authn.Basic{Username: "bob", Password: secret}}}
	for _, tc := range []struct {
		name   string
		o      imageref.Options
		write  bool
		status int
		anon   bool
		says   string
	}{
		{"read with a wrong password", wrong, false, 401, false, host + ": authentication failed (401 Unauthorized): check the credentials for this registry"},
		{"write with a wrong password", wrong, true, 401, false, host + ": authentication failed (401 Unauthorized)"},
		{"read without credentials", none, false, 401, true, host + ": authentication required (401 Unauthorized): no credentials for this registry"},
		{"write without credentials", none, true, 401, true, "docker login " + host},
		{"write without permission", reader, true, 403, false, host + ": access denied (403 Forbidden)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.write {
				_, err = imageref.WriteImage(ctx, reftest.MustParse(t, host+"/auth/other:1"), img, tc.o)
			} else {
				_, err = imageref.Open(ctx, ref, tc.o)
			}
			var ae *registryclient.AuthError
			if !errors.As(err, &ae) {
				t.Fatalf("got %v, want an AuthError", err)
			}
			if ae.Registry != host || ae.StatusCode != tc.status || ae.Anonymous != tc.anon {
				t.Errorf("AuthError %+v, want registry %s, status %d, anonymous %v", ae, host, tc.status, tc.anon)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("%q does not say %q", err, tc.says)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error holds the password: %q", err)
			}
		})
	}

	// CheckWrite finds bad credentials before any work is done.
	if err := imageref.CheckWrite(ctx, ref, good); err != nil {
		t.Errorf("CheckWrite with the right credentials: %v", err)
	}
	var ae *registryclient.AuthError
	if err := imageref.CheckWrite(ctx, ref, wrong); !errors.As(err, &ae) || ae.StatusCode != 401 || ae.Anonymous {
		t.Errorf("CheckWrite with a wrong password: %v", err)
	}
	if err := imageref.CheckWrite(ctx, ref, none); !errors.As(err, &ae) || !ae.Anonymous {
		t.Errorf("CheckWrite without credentials: %v", err)
	}
	if err := imageref.CheckWrite(ctx, imageref.Ref{Kind: imageref.OCI, Path: t.TempDir()}, wrong); err != nil {
		t.Errorf("CheckWrite of an OCI layout: %v", err)
	}

	// A keychain that fails (a missing credential helper) names the registry.
	broken := imageref.Options{Keychain: keychain{err: errors.New(`exec: "docker-credential-gone": executable file not found in $PATH`)}}
	_, err := imageref.Open(ctx, ref, broken)
	var ce *registryclient.CredentialsError
	if !errors.As(err, &ce) || ce.Registry != host || !strings.Contains(err.Error(), host+": getting credentials") || !strings.Contains(err.Error(), "docker-credential-gone") {
		t.Errorf("a failing keychain: %v", err)
	}
}

// URLs in errors lose their user information and query values that may be
// tokens or signatures.
func TestRegistryErrorsRedactURLs(t *testing.T) {
	ctx := context.Background()
	const sig = "SIGNATURE-abc123"
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			w.WriteHeader(http.StatusOK)
			return
		}
		// A redirect to storage that is down, with a signed URL.
		http.Redirect(w, r, "http://user:"+sig+"@127.0.0.1:1/blob?X-Amz-Signature="+sig+"&scope=repo", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(s.Close)
	u, _ := url.Parse(s.URL)
	_, err := imageref.Open(ctx, reftest.MustParse(t, u.Host+"/r/app:1"), imageref.Options{})
	if err == nil {
		t.Fatal("Open worked")
	}
	if strings.Contains(err.Error(), sig) {
		t.Errorf("the error holds the signature: %q", err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("the error does not say where it failed: %q", err)
	}
}

// tokenRegistry is ggcr's registry behind bearer tokens, as most public
// registries are: /token hands out a token for user:pass (HTTP basic), and
// the registry wants it. realmHost is the host the challenge names for
// the token endpoint ("" for the registry's own).
func tokenRegistry(t *testing.T, user, pass, token, realmHost string) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var host string
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "bad credentials")
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]string{"token": token})
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+token {
			realm := cmpOr(realmHost, host)
			w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+realm+`/token",service="test"`)
			registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
		if strings.Contains(r.URL.Path, "/manifests/broken") {
			// An error page that shows what it was sent, as some proxies do.
			http.Error(w, "no such manifest: "+r.URL.String(), http.StatusNotFound)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	host = u.Host
	return host
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestRegistryTokenAuth(t *testing.T) {
	ctx := context.Background()
	const secret, token = "tok-secret-Pa55", "BEARER-TOKEN-0123456789"
	host := tokenRegistry(t, "alice", secret, token, "")
	ref := reftest.MustParse(t, host+"/tok/app:1")
	good := imageref.Options{Keychain: keychain{registry: host, auth: &authn.Basic{Username: "alice", Password: secret}}}
	if _, err := imageref.WriteImage(ctx, ref, reftest.RandomImage(t, 1), good); err != nil {
		t.Fatalf("with the right credentials: %v", err)
	}
	_, err := imageref.Open(ctx, reftest.MustParse(t, host+"/tok/app:broken"), good)
	if err == nil || strings.Contains(err.Error(), token) || strings.Contains(err.Error(), secret) {
		t.Errorf("a failed read with a token: %v", err)
	}

	wrong := imageref.Options{Keychain: keychain{registry: host, auth: &authn.Basic{Username: "alice", Password: "nope-" + secret}}}
	for name, f := range map[string]func() error{
		"Open":       func() error { _, err := imageref.Open(ctx, ref, wrong); return err },
		"WriteImage": func() error { _, err := imageref.WriteImage(ctx, ref, reftest.RandomImage(t, 2), wrong); return err },
		"CheckWrite": func() error { return imageref.CheckWrite(ctx, ref, wrong) },
	} {
		err := f()
		var ae *registryclient.AuthError
		if !errors.As(err, &ae) || ae.Registry != host || ae.StatusCode != 401 {
			t.Errorf("%s with a wrong password: %v, want an AuthError for %s", name, err, host)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), token) {
			t.Errorf("%s: the error holds a secret: %q", name, err)
		}
	}
}

// Credentials never go over plain HTTP to a token server off loopback,
// even when the registry itself is on loopback.
func TestRegistryTokenRealmPlainHTTP(t *testing.T) {
	ctx := context.Background()
	host := tokenRegistry(t, "alice", "pw", "tok", "203.0.113.9:5000")
	o := imageref.Options{
		Keychain: keychain{registry: host, auth: &authn.Basic{Username: "alice", Password: "pw"}},
		Dial:     dialTo(host),
	}
	_, err := imageref.Open(ctx, reftest.MustParse(t, host+"/tok/app:1"), o)
	var pe *registryclient.PlainHTTPError
	if !errors.As(err, &pe) || pe.Host != "203.0.113.9:5000" {
		t.Errorf("a plain-HTTP token realm off loopback: %v, want a refusal", err)
	}
}
