// Package registryclient is the HTTP client that layerslim talks to
// registries with, under go-containerregistry's remote package: credentials
// from a keychain (errors naming the registry), TLS trust from CA files and
// certs.d directories, plain HTTP refused off loopback, retries with
// backoff and Retry-After, resumption of blob reads cut short, a stall
// timeout, and errors that say in the user's terms what went wrong
// (AuthError, TLSError, RetryError, …) with URLs stripped of secrets.
//
// Options.RemoteOptions is the one way in: every remote.Get, Push and
// Puller of the module takes its options from there.
//
// It does not know image references, images or transports: parsing a
// reference and choosing between a registry, an OCI layout and a
// docker-archive belongs to internal/imageref, and reading and writing
// images in a registry to internal/imageref/registry.
package registryclient

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Options configure the registry client. The zero value is ready to use.
type Options struct {
	// Insecure allows plain HTTP and skips TLS verification for registries.
	Insecure bool
	// Keychain finds registry credentials; nil means authn.DefaultKeychain
	// (the Docker config and its credential helpers, as docker and crane do).
	Keychain authn.Keychain
	// UserAgent is added to the User-Agent header of registry requests.
	UserAgent string
	// CAFiles are PEM files of certificate authorities trusted for every
	// registry, on top of the system's (which SSL_CERT_FILE and SSL_CERT_DIR
	// choose on Linux).
	CAFiles []string
	// CertsDirs are certs.d directories, laid out as docker's
	// /etc/docker/certs.d: DIR/HOST:PORT/*.crt are CAs trusted for that
	// registry, and each *.cert with its *.key is a client certificate
	// offered to it. nil means DefaultCertsDirs(); an empty slice, none.
	CertsDirs []string
	// Retries is how many times a failed registry request is tried again
	// (5xx, 408, 429, a reset or refused connection, a stall), waiting
	// RetryDelay, then twice as long each time, or what a Retry-After header
	// asks for (up to a minute); a blob read cut in the middle resumes from
	// the byte reached. 0 means DefaultRetries, a negative value no retry;
	// at most MaxRetries.
	Retries int
	// RetryDelay is the first wait between attempts; 0 means DefaultRetryDelay.
	RetryDelay time.Duration
	// StallTimeout cancels (and retries) a registry request that makes no
	// progress for that long: no answer after the request was sent, or a
	// read of the answer that gets no byte. A slow transfer that keeps
	// moving is never cut. 0 means DefaultStallTimeout; negative, none.
	StallTimeout time.Duration
	// Dial, when set, replaces the dialer of registry connections (tests
	// use it to send any host to a local server).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (o Options) keychain() authn.Keychain {
	if o.Keychain == nil {
		return authn.DefaultKeychain
	}
	return o.Keychain
}

// Transport is the bottom of every registry request: it refuses plain HTTP
// except to loopback addresses or when Insecure, and applies CAFiles,
// CertsDirs and Insecure to TLS. It does not retry; RemoteOptions puts the
// retrying transport above it.
func (o Options) Transport() http.RoundTripper {
	return newRegistryTransport(o)
}

// RemoteOptions are the go-containerregistry remote options of every
// registry request: context, credentials, transport with retries, user
// agent. None of them can make remote's option processing fail, which a
// push relies on.
func (o Options) RemoteOptions(ctx context.Context) []remote.Option {
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(namedKeychain{o.keychain()}),
		remote.WithTransport(newFaultTransport(o.Transport(), o.retryPolicy())),
	}
	opts = append(opts, o.retryPolicy().remoteOptions()...)
	if o.UserAgent != "" {
		opts = append(opts, remote.WithUserAgent(o.UserAgent))
	}
	return opts
}
