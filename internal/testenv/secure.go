package testenv

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// EnvRegistryBin names the registry binary, as for .ci/services.sh.
const EnvRegistryBin = "LAYERSLIM_REGISTRY_BIN"

// RegistryBin finds the CNCF distribution registry binary the way
// .ci/services.sh does: $LAYERSLIM_REGISTRY_BIN, Debian's docker-registry, or
// `registry` in $GOPATH/bin (where services.sh go-installs it). It skips t,
// or fails it in CI, when there is none.
func RegistryBin(t testing.TB) string {
	t.Helper()
	if b := os.Getenv(EnvRegistryBin); b != "" {
		return b
	}
	cands := []string{"/usr/bin/docker-registry"}
	if p, err := exec.LookPath("docker-registry"); err == nil {
		cands = append(cands, p)
	}
	for _, gp := range filepath.SplitList(build.Default.GOPATH) {
		cands = append(cands, filepath.Join(gp, "bin", "registry"))
	}
	for _, c := range cands {
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return c
		}
	}
	unavailable(t, "no registry binary (%s, docker-registry, or $GOPATH/bin/registry); .ci/run installs docker-registry", EnvRegistryBin)
	return ""
}

// SecureRegistry is a registry of its own for one test: TLS with a
// certificate from a CA made in the test, and htpasswd authentication.
type SecureRegistry struct {
	Host     string // 127.0.0.1:PORT
	CA       *CA    // signed the registry's certificate
	CAFile   string // the CA certificate, PEM
	User     string
	Password string // random for each registry
	// HtpasswdHash is the bcrypt hash of Password in the registry's htpasswd file.
	HtpasswdHash string
	Dir          string // the registry's storage root
}

// StartSecureRegistry starts a CNCF distribution registry on a free
// loopback port with TLS (a CA and a server certificate for 127.0.0.1 and
// localhost, made here) and htpasswd authentication (one user with a random
// password), storing into a temporary directory. It is stopped when t ends.
func StartSecureRegistry(t testing.TB) *SecureRegistry {
	t.Helper()
	bin := RegistryBin(t)
	dir := t.TempDir()
	ca := NewCA(t, "layerslim test registry CA")
	leaf := ca.Server(t, "127.0.0.1", "localhost")
	certFile, keyFile := leaf.Write(t, dir, "tls/server.crt", "tls/server.key")
	pw := make([]byte, 16)
	if _, err := rand.Read(pw); err != nil {
		t.Fatal(err)
	}
	r := &SecureRegistry{
		CA:       ca,
		CAFile:   ca.WriteCert(t, dir, "tls/ca.crt"),
		User:     "layerslim",
		Password: "pw-" + hex.EncodeToString(pw),
		Dir:      filepath.Join(dir, "storage"),
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	r.HtpasswdHash = string(hash)
	htpasswd := writeFile(t, dir, "htpasswd", []byte(r.User+":"+r.HtpasswdHash+"\n"))

	var lastLog string
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort(t)
		r.Host = fmt.Sprintf("127.0.0.1:%d", port)
		cfg := writeFile(t, dir, "config.yml", []byte(fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
auth:
  htpasswd:
    realm: layerslim-test
    path: %s
http:
  addr: %s
  tls:
    certificate: %s
    key: %s
`, r.Dir, htpasswd, r.Host, certFile, keyFile)))
		logFile := filepath.Join(dir, fmt.Sprintf("registry-%d.log", attempt))
		up, log := startRegistry(t, bin, cfg, logFile, r)
		if up {
			return r
		}
		lastLog = log
	}
	t.Fatalf("testenv.StartSecureRegistry: %s did not come up; its log:\n%s", bin, lastLog)
	return nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRegistry starts bin and waits until it answers /v2/ over TLS with
// 401; it stops the process again when that fails or when t ends.
func startRegistry(t testing.TB, bin, cfg, logFile string, r *SecureRegistry) (bool, string) {
	t.Helper()
	lf, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	cmd := exec.Command(bin, "serve", cfg)
	cmd.Stdout, cmd.Stderr = lf, lf
	// distribution v3 otherwise exports traces to localhost:4318.
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none", "OTEL_SDK_DISABLED=true")
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: starting %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.CA.Pool()}},
		Timeout:   2 * time.Second,
	}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			b, _ := os.ReadFile(logFile)
			return false, string(b)
		default:
		}
		resp, err := client.Get("https://" + r.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				t.Cleanup(stop)
				return true, ""
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	b, _ := os.ReadFile(logFile)
	return false, string(b)
}

// Repo returns a new repository in the registry: HOST/layerslim-test/<test name>-<n>.
func (r *SecureRegistry) Repo(t testing.TB) string {
	t.Helper()
	base := strings.Trim(repoUnsafe.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 60 {
		base = strings.TrimRight(base[:60], "-")
	}
	return fmt.Sprintf("%s/layerslim-test/%s-%d", r.Host, base, repoIDs.Add(1))
}

func (r *SecureRegistry) remoteOpts(t testing.TB) []remote.Option {
	return []remote.Option{
		remote.WithContext(t.Context()),
		remote.WithAuth(&authn.Basic{Username: r.User, Password: r.Password}),
		remote.WithTransport(&http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.CA.Pool()}}),
	}
}

func (r *SecureRegistry) parse(t testing.TB, ref string) name.Reference {
	t.Helper()
	n, err := name.ParseReference(ref)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return n
}

// PushImage writes img to ref with the registry's credentials and returns ref@digest.
func (r *SecureRegistry) PushImage(t testing.TB, img v1.Image, ref string) string {
	t.Helper()
	n := r.parse(t, ref)
	if err := remote.Write(n, img, r.remoteOpts(t)...); err != nil {
		t.Fatalf("testenv.SecureRegistry.PushImage(%s): %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return n.Context().Digest(d.String()).String()
}

// Get returns the descriptor of what ref names, read with the registry's
// credentials, or the error.
func (r *SecureRegistry) Get(t testing.TB, ref string) (*remote.Descriptor, error) {
	t.Helper()
	return remote.Get(r.parse(t, ref), r.remoteOpts(t)...)
}

// RemoteImage reads the image at ref with the registry's credentials.
func (r *SecureRegistry) RemoteImage(t testing.TB, ref string) v1.Image {
	t.Helper()
	img, err := remote.Image(r.parse(t, ref), r.remoteOpts(t)...)
	if err != nil {
		t.Fatalf("testenv.SecureRegistry.RemoteImage(%s): %v", ref, err)
	}
	return img
}
