package testenv

import (
	"os"
	"strconv"
	"testing"
)

// The variables .ci/services.sh exports.
const (
	EnvRegistry              = "LAYERSLIM_TEST_REGISTRY"               // host:port of a plain-HTTP registry
	EnvRegistryDir           = "LAYERSLIM_TEST_REGISTRY_DIR"           // its filesystem storage root
	EnvContainerdSock        = "LAYERSLIM_TEST_CONTAINERD_SOCK"        // containerd's gRPC socket
	EnvContainerdNamespace   = "LAYERSLIM_TEST_CONTAINERD_NAMESPACE"   // namespace for our images and containers
	EnvContainerdSnapshotter = "LAYERSLIM_TEST_CONTAINERD_SNAPSHOTTER" // overlayfs, or native where overlay fails
)

// DefaultContainerdNamespace is used when EnvContainerdNamespace is unset.
const DefaultContainerdNamespace = "layerslim-test"

// InCI reports whether the tests run in CI (CI=true), where a missing service
// or tool fails the test instead of skipping it.
func InCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// unavailable skips t, or fails it in CI.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf(format+" (CI=true: not skipping)", args...)
	}
	t.Skipf(format, args...)
}

func requireEnv(t testing.TB, key string) string {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		unavailable(t, "%s is unset; start the services with: eval \"$(.ci/services.sh start)\"", key)
	}
	return v
}

// Registry returns host:port of the test registry (plain HTTP on loopback).
func Registry(t testing.TB) string {
	t.Helper()
	return requireEnv(t, EnvRegistry)
}

// RegistryDir returns the registry's storage root, to look at or damage blobs
// behind the registry's back (docker/registry/v2/blobs/sha256/xx/<hex>/data).
func RegistryDir(t testing.TB) string {
	t.Helper()
	return requireEnv(t, EnvRegistryDir)
}

// Containerd returns containerd's socket and the namespace to use.
func Containerd(t testing.TB) (sock, namespace string) {
	t.Helper()
	sock = requireEnv(t, EnvContainerdSock)
	namespace = os.Getenv(EnvContainerdNamespace)
	if namespace == "" {
		namespace = DefaultContainerdNamespace
	}
	return sock, namespace
}

// ContainerdSnapshotter returns the snapshotter ctr should use, or "" for
// ctr's default.
func ContainerdSnapshotter() string {
	return os.Getenv(EnvContainerdSnapshotter)
}
