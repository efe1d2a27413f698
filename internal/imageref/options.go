package imageref

import (
	"context"
	"net"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/layerslim/layerslim/internal/registryclient"
)

// Options configure Open, WriteImage and WriteIndex. The zero value is
// ready to use. The registry fields are handed to internal/registryclient,
// which documents them in full.
type Options struct {
	// Insecure allows plain HTTP and skips TLS verification for registries.
	Insecure bool
	// Keychain finds registry credentials; nil means authn.DefaultKeychain
	// (the Docker config and its credential helpers, as docker and crane do).
	Keychain authn.Keychain
	// Jobs is how many blobs a registry push uploads at once (remote.WithJobs);
	// 0 or less means ggcr's default (4).
	Jobs int
	// UserAgent is added to the User-Agent header of registry requests.
	UserAgent string
	// Progress, when not nil, receives the write progress of registry pushes
	// and docker-archive writes (OCI layout writes send nothing). Sends block
	// until received, as in ggcr, so drain it from another goroutine. This
	// package never closes it: unlike remote.WithProgress, one channel can
	// serve several writes, and the caller closes it when they are done.
	Progress chan<- v1.Update
	// CAFiles are PEM files of certificate authorities trusted for every
	// registry, on top of the system's (which SSL_CERT_FILE and SSL_CERT_DIR
	// choose on Linux).
	CAFiles []string
	// CertsDirs are certs.d directories, laid out as docker's
	// /etc/docker/certs.d: DIR/HOST:PORT/*.crt are CAs trusted for that
	// registry, and each *.cert with its *.key is a client certificate
	// offered to it. nil means registryclient.DefaultCertsDirs(); an empty
	// slice, none.
	CertsDirs []string

	// Dial, when set, replaces the dialer of registry connections (tests
	// use it to send any host to a local server).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Retries is how many times a failed registry request is tried again
	// (5xx, 408, 429, a reset or refused connection, a stall), waiting
	// RetryDelay, then twice as long each time, or what a Retry-After header
	// asks for (up to a minute); a blob read cut in the middle resumes from
	// the byte reached. 0 means DefaultRetries, a negative value no retry;
	// at most MaxRetries. (The defaults and bounds are registryclient's.)
	Retries int
	// RetryDelay is the first wait between attempts; 0 means DefaultRetryDelay.
	RetryDelay time.Duration
	// StallTimeout cancels (and retries) a registry request that makes no
	// progress for that long: no answer after the request was sent, or a
	// read of the answer that gets no byte. A slow transfer that keeps
	// moving is never cut. 0 means DefaultStallTimeout; negative, none.
	StallTimeout time.Duration
}

// client is the registry client configuration within o.
func (o Options) client() registryclient.Options {
	return registryclient.Options{
		Insecure:     o.Insecure,
		Keychain:     o.Keychain,
		UserAgent:    o.UserAgent,
		CAFiles:      o.CAFiles,
		CertsDirs:    o.CertsDirs,
		Retries:      o.Retries,
		RetryDelay:   o.RetryDelay,
		StallTimeout: o.StallTimeout,
		Dial:         o.Dial,
	}
}

// registryName returns ref.Name, parsed again with name.Insecure when
// o.Insecure asks for plain HTTP but the reference was parsed without it.
func (o Options) registryName(ref Ref) (name.Reference, error) {
	if ref.Name == nil {
		return nil, ErrInvalidReference
	}
	if !o.Insecure {
		return ref.Name, nil
	}
	return name.ParseReference(ref.Name.String(), name.Insecure)
}
