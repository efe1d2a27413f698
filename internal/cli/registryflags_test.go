package cli_test

import (
	"strings"
	"testing"
)

func TestRegistryFlagsValidated(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--retries", "11", "recompress", "a", "b"}, "--retries must be between 0 and 10"},
		{[]string{"recompress", "--retries=-1", "a", "b"}, "--retries must be between 0 and 10"},
		{[]string{"analyze", "--retry-delay", "0s", "a"}, "--retry-delay must be positive"},
		{[]string{"verify", "--stall-timeout", "-1s", "a", "b"}, "--stall-timeout must not be negative"},
	} {
		_, stderr, code := run(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}
