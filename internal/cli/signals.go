package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// InterruptedError is the cause of the context Main's command runs in once
// SIGINT or SIGTERM arrives.
type InterruptedError struct{ Signal os.Signal }

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("interrupted (%s)", signalName(e.Signal))
}

func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// interruptGrace is how long a command has, after SIGINT or SIGTERM, to
// stop on its own (removing its temporary files) before the process ends
// anyway: a read blocked in the kernel (a FIFO, a terminal) does not see a
// context. Every write layerslim makes survives being killed at any moment.
const interruptGrace = 3 * time.Second

// Main runs a fresh command tree with args as main does, and returns the
// exit status: SIGINT or SIGTERM cancel the command's context and the run
// ends with "layerslim: interrupted (SIGINT)" and status 1; if the command
// has not returned interruptGrace later (or at a second signal), exit is
// called with that status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer, exit func(int)) int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done)
	go func() {
		var sig os.Signal
		select {
		case sig = <-sigs:
		case <-done:
			return
		}
		cause := &InterruptedError{Signal: sig}
		cancel(cause)
		t := time.NewTimer(interruptGrace)
		defer t.Stop()
		select {
		case <-done:
			return
		case <-t.C:
		case <-sigs:
		}
		fmt.Fprintf(stderr, "layerslim: %v\n", cause)
		exit(1)
	}()
	cmd := New()
	cmd.SetArgs(args)
	cmd.SetIn(stdin)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.ExecuteContext(ctx)
	err = interrupted(ctx, err)
	if err != nil {
		fmt.Fprintln(stderr, "layerslim:", err)
	}
	return ExitCode(err)
}

// interrupted replaces the "context canceled" at the end of an error chain
// with why the context was cancelled: "…: interrupted (SIGINT)".
func interrupted(ctx context.Context, err error) error {
	var ie *InterruptedError
	if err == nil || !errors.As(context.Cause(ctx), &ie) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		msg := err.Error()
		if base, ok := strings.CutSuffix(msg, context.Canceled.Error()); ok {
			if base == "" {
				return ie
			}
			return fmt.Errorf("%s%w", base, ie)
		}
		return fmt.Errorf("%w: %w", err, ie)
	}
	return err
}
