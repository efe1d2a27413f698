//go:build integration

package testenv

import (
	"crypto/tls"
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// The secure registry serves its own user over TLS with a certificate of
// its own CA, and refuses anyone else.
func TestSecureRegistry(t *testing.T) {
	r := StartSecureRegistry(t)
	img := GzipImage(t, linuxAmd64, TarLayer(t, []File{Reg("a", "a")}))
	ref := r.Repo(t) + ":1"
	byDigest := r.PushImage(t, img, ref)
	if _, err := r.Get(t, byDigest); err != nil {
		t.Fatalf("reading back %s: %v", byDigest, err)
	}
	n, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	trusted := remote.WithTransport(&http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.CA.Pool()}})
	_, err = remote.Get(n, remote.WithContext(t.Context()), trusted)
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous read: %v, want 401", err)
	}
	_, err = remote.Get(n, remote.WithContext(t.Context()))
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &cve) {
		t.Errorf("read without trusting the CA: %v, want a certificate verification error", err)
	}
}
