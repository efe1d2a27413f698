//go:build integration

package cli_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/layerslim/layerslim/internal/cli"
	"github.com/layerslim/layerslim/internal/testenv"
)

// authImage is a small image with something to drop, pushed to the secure
// registry with its own credentials.
func authImage(t *testing.T, r *testenv.SecureRegistry) (ref string, img v1.Image) {
	t.Helper()
	img = testenv.GzipImage(t, testenv.Platform(t, "linux/amd64"),
		testenv.TarLayer(t, []testenv.File{testenv.Reg("etc/app.conf", "x=1\n")}),
		testenv.TarLayer(t, []testenv.File{testenv.Reg("usr/share/doc/app/README", strings.Repeat("docs ", 2000))}))
	ref = r.Repo(t) + ":src"
	r.PushImage(t, img, ref)
	return ref, img
}

// ociSource writes img to an OCI layout and returns its reference.
func ociSource(t *testing.T, img v1.Image) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "src"})); err != nil {
		t.Fatal(err)
	}
	return "oci:" + dir + ":src"
}

// dockerConfig writes config.json into a new directory, points DOCKER_CONFIG
// at it for the rest of the test, and returns the directory.
func dockerConfig(t *testing.T, cfg map[string]any) string {
	t.Helper()
	dir := t.TempDir()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("REGISTRY_AUTH_FILE", "") // no podman fallback
	return dir
}

func authsConfig(host, user, pass string) map[string]any {
	return map[string]any{"auths": map[string]any{host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)),
	}}}
}

// credentialHelper installs docker-credential-NAME on PATH: it answers
// `get` for host with user and secret, says "not found" for any other
// registry, and logs the server URLs it was asked about to the returned file.
func credentialHelper(t *testing.T, name, host, user, secret string) (logFile string) {
	t.Helper()
	dir := t.TempDir()
	logFile = filepath.Join(dir, "asked")
	script := `#!/bin/sh
[ "$1" = get ] || { echo "unsupported: $1" >&2; exit 1; }
read -r server
echo "$server" >>'` + logFile + `'
if [ "$server" = '` + host + `' ]; then
	printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\n' "$server" '` + user + `' '` + secret + `'
else
	echo "credentials not found in native keychain"
	exit 1
fi
`
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-"+name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return logFile
}

// noSecrets fails t when any output holds a secret, in clear, in base64
// or as its htpasswd hash.
func noSecrets(t *testing.T, r *testenv.SecureRegistry, outputs map[string]string, extra ...string) {
	t.Helper()
	secrets := []string{r.HtpasswdHash}
	for _, s := range append([]string{r.Password}, extra...) {
		secrets = append(secrets, s,
			base64.StdEncoding.EncodeToString([]byte(s)),
			base64.StdEncoding.EncodeToString([]byte(r.User+":"+s)))
	}
	for what, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s holds a secret (%.6s…):\n%s", what, s, out)
			}
		}
	}
}

func readReport(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Credentials from DOCKER_CONFIG's auths: rewrite and recompress read from
// and write to a registry with htpasswd and TLS from a CA made here, and no
// output holds the password.
func TestIntegrationAuthDockerConfig(t *testing.T) {
	r := testenv.StartSecureRegistry(t)
	src, _ := authImage(t, r)
	dockerConfig(t, authsConfig(r.Host, r.User, r.Password))
	report := filepath.Join(t.TempDir(), "report.json")
	dst := strings.TrimSuffix(src, ":src") + ":slim"
	stdout, stderr, code := run(t, "rewrite", src, dst, "--ca-file", r.CAFile, "--report", report, "--progress", "plain")
	if code != 0 {
		t.Fatalf("rewrite: exit %d\n%s", code, stderr)
	}
	testenv.CheckImageBlobs(t, r.RemoteImage(t, dst))
	if !strings.Contains(stderr, "dropped") {
		t.Errorf("nothing dropped:\n%s", stderr)
	}
	outputs := map[string]string{"rewrite stdout": stdout, "rewrite stderr": stderr, "rewrite report": readReport(t, report)}

	// The flag may come before the command too.
	stdout, stderr, code = run(t, "--ca-file", r.CAFile, "recompress", src, strings.TrimSuffix(src, ":src")+":zstd", "--report", report, "--progress", "plain")
	if code != 0 {
		t.Fatalf("recompress: exit %d\n%s", code, stderr)
	}
	outputs["recompress stdout"], outputs["recompress stderr"], outputs["recompress report"] = stdout, stderr, readReport(t, report)
	testenv.CheckImageBlobs(t, r.RemoteImage(t, strings.TrimSuffix(src, ":src")+":zstd"))
	noSecrets(t, r, outputs)
}

// Credentials from a credential helper, named by credHelpers for the
// registry or by credsStore for all.
func TestIntegrationAuthCredentialHelper(t *testing.T) {
	r := testenv.StartSecureRegistry(t)
	src, img := authImage(t, r)
	asked := credentialHelper(t, "layerslim-test", r.Host, r.User, r.Password)
	for _, cfg := range []map[string]any{
		{"credHelpers": map[string]string{r.Host: "layerslim-test"}},
		{"credsStore": "layerslim-test"},
	} {
		dockerConfig(t, cfg)
		os.Remove(asked)
		out := "oci:" + filepath.Join(t.TempDir(), "out") + ":x"
		stdout, stderr, code := run(t, "recompress", src, out, "--ca-file", r.CAFile, "--progress", "plain")
		if code != 0 {
			t.Fatalf("%v: recompress from the registry: exit %d\n%s", cfg, code, stderr)
		}
		outputs := map[string]string{"stdout": stdout, "stderr": stderr}
		report := filepath.Join(t.TempDir(), "r.json")
		dst := strings.TrimSuffix(src, ":src") + ":from-oci"
		stdout, stderr, code = run(t, "rewrite", ociSource(t, img), dst, "--ca-file", r.CAFile, "--report", report, "--progress", "plain")
		if code != 0 {
			t.Fatalf("%v: rewrite to the registry: exit %d\n%s", cfg, code, stderr)
		}
		outputs["rewrite stdout"], outputs["rewrite stderr"], outputs["report"] = stdout, stderr, readReport(t, report)
		r.RemoteImage(t, dst)
		noSecrets(t, r, outputs)
		if b, err := os.ReadFile(asked); err != nil || !strings.Contains(string(b), r.Host) {
			t.Errorf("%v: the credential helper was not asked for %s (%v): %q", cfg, r.Host, err, b)
		}
	}
}

// Wrong or missing credentials, on the source side and on the destination
// side, through rewrite and recompress: exit 1, a message naming the
// registry, nothing written, no secret shown.
func TestIntegrationAuthFailures(t *testing.T) {
	r := testenv.StartSecureRegistry(t)
	src, img := authImage(t, r)
	oci := ociSource(t, img)
	const wrong = "wrong-Pa55word-1234"
	for _, tc := range []struct {
		name string
		cfg  map[string]any
		says []string
	}{
		{"wrong password", authsConfig(r.Host, r.User, wrong), []string{r.Host + ": authentication failed (401 Unauthorized): check the credentials for this registry"}},
		{"no credentials", map[string]any{}, []string{r.Host + ": authentication required (401 Unauthorized): no credentials for this registry", "docker login " + r.Host}},
		{"missing credential helper", map[string]any{"credHelpers": map[string]string{r.Host: "layerslim-gone"}}, []string{r.Host + ": getting credentials", "docker-credential-layerslim-gone"}},
	} {
		dockerConfig(t, tc.cfg)
		for _, cmd := range []string{"rewrite", "recompress"} {
			for _, side := range []string{"source", "destination"} {
				s, d := src, "oci:"+filepath.Join(t.TempDir(), "out")+":x"
				if side == "destination" {
					s, d = oci, strings.TrimSuffix(src, ":src")+":never-"+cmd
				}
				report := filepath.Join(t.TempDir(), "r.json")
				stdout, stderr, code := run(t, cmd, s, d, "--ca-file", r.CAFile, "--report", report, "--progress", "plain")
				what := tc.name + ", " + cmd + ", " + side
				t.Logf("%s:\n%s", what, stderr)
				if code != 1 {
					t.Errorf("%s: exit %d, want 1\n%s", what, code, stderr)
				}
				for _, want := range tc.says {
					if !strings.Contains(stderr, want) {
						t.Errorf("%s: stderr does not say %q:\n%s", what, want, stderr)
					}
				}
				if side == "destination" {
					if _, err := r.Get(t, d); err == nil {
						t.Errorf("%s: %s was written", what, d)
					}
					// Found out before any work was done.
					if strings.Contains(stderr, "started") {
						t.Errorf("%s: layers were rewritten before the credentials were checked:\n%s", what, stderr)
					}
				}
				if _, err := os.Stat(report); err == nil {
					t.Errorf("%s: a report was written", what)
				}
				noSecrets(t, r, map[string]string{"stdout": stdout, "stderr": stderr}, wrong)
			}
		}
	}
}

// Certificates are verified unless --insecure: the registry's private CA is
// trusted through --ca-file, --certs-dir or SSL_CERT_FILE, and without any
// of them the error names the registry and the x509 failure.
func TestIntegrationTLSVerification(t *testing.T) {
	r := testenv.StartSecureRegistry(t)
	src, _ := authImage(t, r)
	dockerConfig(t, authsConfig(r.Host, r.User, r.Password))
	out := func() string { return "oci:" + filepath.Join(t.TempDir(), "out") + ":x" }
	empty := t.TempDir()

	_, stderr, code := run(t, "recompress", src, out(), "--certs-dir", empty, "--progress", "none")
	t.Logf("untrusted CA:\n%s", stderr)
	if code != 1 {
		t.Errorf("untrusted CA: exit %d, want 1\n%s", code, stderr)
	}
	for _, want := range []string{r.Host + ": the registry's TLS certificate is not trusted", "x509: certificate signed by unknown authority", "--ca-file"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("untrusted CA: stderr does not say %q:\n%s", want, stderr)
		}
	}

	certsD := t.TempDir()
	r.CA.WriteCert(t, certsD, r.Host+"/ca.crt")
	for _, args := range [][]string{
		{"recompress", src, out(), "--progress", "none", "--certs-dir", certsD},
		{"recompress", src, out(), "--progress", "none", "--insecure", "--certs-dir", empty},
		{"--ca-file", r.CAFile, "analyze", src},
		{"analyze", src, "--certs-dir", certsD},
		{"analyze", src, "--certs-dir", empty, "--insecure"},
	} {
		_, stderr, code := run(t, args...)
		if code != 0 {
			t.Errorf("%v: exit %d\n%s", args, code, stderr)
		}
	}
	if _, stderr, code := run(t, "analyze", src, "--certs-dir", empty); code != 1 || !strings.Contains(stderr, r.Host+": the registry's TLS certificate is not trusted") {
		t.Errorf("analyze with an untrusted CA: exit %d\n%s", code, stderr)
	}

	// Go reads SSL_CERT_FILE once per process, so this runs in a child.
	stdout, stderr, code := runChild(t, []string{"SSL_CERT_FILE=" + r.CAFile, "SSL_CERT_DIR=" + empty},
		"recompress", src, out(), "--certs-dir", empty, "--progress", "none")
	if code != 0 {
		t.Errorf("SSL_CERT_FILE: exit %d\n%s%s", code, stdout, stderr)
	}
}

const childArgsEnv = "LAYERSLIM_TEST_CHILD_ARGS"

// runChild runs layerslim with args in a new process of this test binary
// (see TestIntegrationChildProcess), with env added to the environment.
func runChild(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	b, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestIntegrationChildProcess$")
	cmd.Env = append(append(os.Environ(), childArgsEnv+"="+string(b)), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// TestIntegrationChildProcess is layerslim's main for runChild.
func TestIntegrationChildProcess(t *testing.T) {
	raw := os.Getenv(childArgsEnv)
	if raw == "" {
		t.Skip("runs only as the child process of other tests")
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		t.Fatal(err)
	}
	cmd := cli.New()
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	if err != nil {
		os.Stderr.WriteString("layerslim: " + err.Error() + "\n")
	}
	os.Exit(cli.ExitCode(err))
}
