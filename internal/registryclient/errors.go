package registryclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// AuthError says that a registry refused a request for want of valid
// credentials (HTTP 401) or of permission (HTTP 403). It never holds a
// secret: only the registry and what was wrong.
type AuthError struct {
	Registry   string // host[:port]
	StatusCode int    // 401 or 403
	// Anonymous is true when no credentials were found for the registry.
	Anonymous bool
	// Said is what the registry said ("UNAUTHORIZED: authentication required"), if anything.
	Said string
	Err  error
}

func (e *AuthError) Error() string {
	status := fmt.Sprintf("%d %s", e.StatusCode, http.StatusText(e.StatusCode))
	var msg string
	switch {
	case e.Anonymous:
		msg = fmt.Sprintf("%s: authentication required (%s): no credentials for this registry in the Docker config (%s) or a credential helper; log in with `docker login %s`",
			e.Registry, status, dockerConfigFile(), e.Registry)
	case e.StatusCode == http.StatusForbidden:
		msg = fmt.Sprintf("%s: access denied (%s): the registry does not let these credentials do this; check the repository name and the account's permissions", e.Registry, status)
	default:
		msg = fmt.Sprintf("%s: authentication failed (%s): check the credentials for this registry in the Docker config (%s) or credential helper",
			e.Registry, status, dockerConfigFile())
	}
	if e.Said != "" {
		msg += " (registry said: " + e.Said + ")"
	}
	return msg
}

func (e *AuthError) Unwrap() error { return e.Err }

// CredentialsError says that the credentials for a registry could not be
// read: a broken Docker config, or a credential helper that is missing or
// failed.
type CredentialsError struct {
	Registry string
	Err      error
}

func (e *CredentialsError) Error() string {
	return fmt.Sprintf("%s: getting credentials from the Docker config (%s) or its credential helper: %v", e.Registry, dockerConfigFile(), e.Err)
}

func (e *CredentialsError) Unwrap() error { return e.Err }

// TLSError says that a registry's certificate was not trusted, or that the
// registry refused the TLS handshake (for want of a client certificate).
type TLSError struct {
	Registry string
	Err      error // a *tls.CertificateVerificationError, or the server's alert (a *net.OpError)
	remote   bool  // the server sent an alert
}

func (e *TLSError) Error() string {
	if e.remote {
		return fmt.Sprintf("%s: the registry refused the TLS handshake (%v): if it wants a client certificate, put it in a certs.d directory (/etc/docker/certs.d/%s/client.cert and client.key, or --certs-dir)",
			e.Registry, e.Err, e.Registry)
	}
	cause := e.Err.Error()
	var cve *tls.CertificateVerificationError
	if errors.As(e.Err, &cve) {
		cause = cve.Err.Error()
	}
	return fmt.Sprintf("%s: the registry's TLS certificate is not trusted (%s): trust its CA with --ca-file FILE, SSL_CERT_FILE, or a certs.d directory (/etc/docker/certs.d/%s/ca.crt), or pass --insecure to skip verification",
		e.Registry, cause, e.Registry)
}

func (e *TLSError) Unwrap() error { return e.Err }

// dockerConfigFile is where the Docker config is read from, for messages.
func dockerConfigFile() string {
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "~/.docker/config.json"
		}
		dir = filepath.Join(home, ".docker")
	}
	return filepath.Join(dir, "config.json")
}

// Explain turns what went wrong talking to repo's registry into an
// error that says so in the user's terms (*AuthError, *TLSError), and
// strips every URL it carries of user information and of query values that
// may be tokens or signatures. Other errors keep their text.
func (o Options) Explain(ctx context.Context, repo name.Repository, err error) error {
	if err == nil {
		return nil
	}
	redactURLs(err)
	reg := repo.RegistryStr()
	var ae *AuthError
	var ce *CredentialsError
	var pe *PlainHTTPError
	if errors.As(err, &ae) || errors.As(err, &ce) || errors.As(err, &pe) {
		return err
	}
	// Our own certificate settings failed: say only that (go-containerregistry's
	// ping adds the failure of its plain-HTTP fallback for loopback hosts).
	var cfe *CertificatesError
	if errors.As(err, &cfe) {
		return cfe
	}
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		e := &AuthError{Registry: reg, StatusCode: te.StatusCode, Err: err}
		if len(te.Errors) > 0 {
			d := te.Errors[0]
			e.Said = strings.TrimSuffix(string(d.Code)+": "+d.Message, ": ")
		}
		if a, rerr := authn.Resolve(ctx, o.keychain(), repo); rerr == nil && a == authn.Anonymous {
			e.Anonymous = true
		}
		return e
	}
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) && !o.Insecure {
		return &TLSError{Registry: reg, Err: cve}
	}
	// crypto/tls reports an alert from the server as a *net.OpError
	// "remote error" (tls.AlertError is for QUIC only).
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" {
		return &TLSError{Registry: reg, Err: oe, remote: true}
	}
	return err
}

// redactURLs rewrites, in place, the URL of the first *url.Error in err's
// chain: no user information, and only the query values of the registry
// protocol (ggcr's own redaction keeps the same ones).
func redactURLs(err error) {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return
	}
	u, perr := url.Parse(ue.URL)
	if perr != nil {
		ue.URL = "<unparsable URL>"
		return
	}
	ue.URL = redactURL(u)
}

var queryAllowed = map[string]bool{"scope": true, "service": true, "mount": true, "from": true, "digest": true, "n": true, "last": true}

func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User("REDACTED")
	}
	q := c.Query()
	for k, vs := range q {
		if queryAllowed[k] {
			continue
		}
		for i := range vs {
			vs[i] = "REDACTED"
		}
	}
	c.RawQuery = q.Encode()
	return c.String()
}

// namedKeychain puts the registry's name on the errors of the keychain it
// wraps (a missing or failing credential helper, an unreadable config).
type namedKeychain struct{ kc authn.Keychain }

func (k namedKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), target)
}

func (k namedKeychain) ResolveContext(ctx context.Context, target authn.Resource) (authn.Authenticator, error) {
	a, err := authn.Resolve(ctx, k.kc, target)
	if err != nil {
		return nil, &CredentialsError{Registry: target.RegistryStr(), Err: err}
	}
	return a, nil
}
