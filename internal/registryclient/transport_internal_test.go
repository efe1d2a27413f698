package registryclient

import (
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestTransport(t *testing.T) {
	req, err := http.NewRequest(http.MethodGet, "https://registry.example/v2/", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Without TLS settings, connections are pooled in remote.DefaultTransport.
	got, err := (Options{CertsDirs: []string{}}).Transport().(*registryTransport).forRequest(req)
	if err != nil || got != remote.DefaultTransport {
		t.Errorf("secure transport is %v (%v), want remote.DefaultTransport", got, err)
	}
	got, err = (Options{Insecure: true, CertsDirs: []string{}}).Transport().(*registryTransport).forRequest(req)
	tr, ok := got.(*http.Transport)
	if err != nil || !ok || tr.TLSClientConfig == nil || !tr.TLSClientConfig.InsecureSkipVerify {
		t.Errorf("insecure transport %+v (%v) does not skip TLS verification", got, err)
	}
	if base := remote.DefaultTransport.(*http.Transport); base.TLSClientConfig != nil && base.TLSClientConfig.InsecureSkipVerify {
		t.Error("remote.DefaultTransport was modified")
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1":          true,
		"127.0.0.1:5000":     true,
		"127.8.9.10:443":     true,
		"[::1]:5000":         true,
		"::1":                true,
		"localhost":          true,
		"localhost:5000":     true,
		"LOCALHOST.:5000":    true,
		"reg.localhost:5000": true,
		"10.0.0.5:5000":      false,
		"172.16.1.1:5000":    false,
		"192.168.1.10":       false,
		"registry.local":     false,
		"localhost.example":  false,
		"notlocalhost:5000":  false,
		"[fe80::1]:5000":     false,
		"example.com":        false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}
