package main

import (
	"archive/tar"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/layerslim/layerslim/build/internal/buildenv"
)

func TestBaseLayer(t *testing.T) {
	epoch := time.Unix(1764000000, 0)
	l, err := baseLayer(epoch)
	if err != nil {
		t.Fatal(err)
	}
	l2, _ := baseLayer(epoch)
	d1, _ := l.Digest()
	d2, _ := l2.Digest()
	if d1 != d2 {
		t.Errorf("two base layers: %s and %s", d1, d2)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	seen := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[h.Name] = h
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, epoch)
		}
		body, _ := io.ReadAll(tr)
		switch h.Name {
		case "etc/passwd":
			if !strings.Contains(string(body), "\nlayerslim:x:65532:65532:layerslim:/home/layerslim:/sbin/nologin\n") {
				t.Errorf("/etc/passwd:\n%s", body)
			}
		case "etc/ssl/certs/ca-certificates.crt":
			n := 0
			for rest := body; ; n++ {
				var b *pem.Block
				if b, rest = pem.Decode(rest); b == nil {
					break
				}
				if _, err := x509.ParseCertificate(b.Bytes); err != nil {
					t.Errorf("certificate %d: %v", n, err)
				}
			}
			if n < 50 {
				t.Errorf("%d CA certificates", n)
			}
		}
	}
	if h := seen["tmp/"]; h == nil || h.Mode != 0o1777 {
		t.Errorf("/tmp: %+v", h)
	}
	if h := seen["home/layerslim/"]; h == nil || h.Uid != uid || h.Gid != gid {
		t.Errorf("home: %+v", h)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"a", "b"}, {"--platform", "linux", "oci:/tmp/x"}, {"--nope", "oci:/tmp/x"}, {"bad ref!"}} {
		var ue buildenv.UsageError
		if _, err := parse(args, io.Discard); !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}
