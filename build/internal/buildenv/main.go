package buildenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
)

// UsageError marks an error in a build program's command line: Main exits
// with status 2 for it, 1 for any other error.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Main is the main function of a build program named name (build/image):
// it runs run with the program's arguments and a context cancelled by an
// interrupt, prints an error prefixed with name to stderr, and exits 2 for
// a UsageError, 1 for another error.
func Main(name string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		var ue UsageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
