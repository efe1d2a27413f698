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
// ready to use.
//
// The registry fields (Insecure, Keychain, UserAgent, CAFiles, CertsDirs,
// Dial, Retries, RetryDelay, StallTimeout) are handed as they are to
// internal/registryclient: the fields of the same name of
// registryclient.Options say what each one does and what its zero value
// means.
type Options struct {
	// Insecure allows plain HTTP and skips TLS verification for registries,
	// also for a reference that Parse read without insecure.
	Insecure bool
	// Keychain finds registry credentials; nil: authn.DefaultKeychain.
	Keychain authn.Keychain
	// Jobs is how many blobs a push uploads, or an OCI layout write
	// writes, at once; 0 or less: 4.
	Jobs int
	// UserAgent is added to the User-Agent header of registry requests.
	UserAgent string
	// Progress, when not nil, receives the write progress of registry pushes
	// and docker-archive writes (OCI layout writes send nothing). Sends block
	// until received, as in ggcr, so drain it from another goroutine. This
	// package never closes it: unlike remote.WithProgress, one channel can
	// serve several writes, and the caller closes it when they are done.
	Progress chan<- v1.Update
	// CAFiles are PEM files of CAs trusted for every registry.
	CAFiles []string
	// CertsDirs are certs.d directories; nil: registryclient.DefaultCertsDirs().
	CertsDirs []string
	// Dial replaces the dialer of registry connections (tests).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Retries, RetryDelay and StallTimeout bound the retries of failed and
	// stalled registry requests; 0 means registryclient's defaults.
	Retries      int
	RetryDelay   time.Duration
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
