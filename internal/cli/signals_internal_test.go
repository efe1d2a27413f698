package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
)

func TestInterruptedNamesTheSignal(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(&InterruptedError{Signal: os.Interrupt})
	err := interrupted(ctx, fmt.Errorf("reading oci:/x:v1: layer sha256:ab: %w", context.Canceled))
	if got, want := err.Error(), "reading oci:/x:v1: layer sha256:ab: interrupted (SIGINT)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	var ie *InterruptedError
	if !errors.As(err, &ie) || ExitCode(err) != 1 {
		t.Errorf("%v: not an InterruptedError, or exit %d", err, ExitCode(err))
	}
	other := errors.New("disk on fire")
	if got := interrupted(ctx, other); got != other {
		t.Errorf("an error that is not a cancellation became %v", got)
	}
}
