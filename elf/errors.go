package elf

import (
	"errors"
	"fmt"
)

var (
	// ErrUnchanged is wrapped by every error that means "keep the input as
	// it is": nothing to strip, not ELF, malformed ELF, signed module.
	// Nothing has been written when it is returned.
	ErrUnchanged = errors.New("elf: file left unchanged")
	// ErrNotELF is wrapped (together with ErrUnchanged) when the input
	// does not start with an ELF identification this package knows.
	ErrNotELF = errors.New("not an ELF file")
)

// FormatError reports a malformed ELF file: what is wrong and at which
// byte offset of the input. Errors carrying it also wrap ErrUnchanged.
type FormatError struct {
	Off int64
	Msg string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("malformed ELF: %s at byte %#x", e.Msg, e.Off)
}

// unchangedError wraps ErrUnchanged together with an optional cause, so
// that errors.Is(err, ErrUnchanged) and errors.As(err, **FormatError) both
// work.
type unchangedError struct {
	reason string
	cause  error
}

func (e *unchangedError) Error() string {
	if e.cause != nil {
		return "elf: file left unchanged: " + e.cause.Error()
	}
	return "elf: file left unchanged: " + e.reason
}

func (e *unchangedError) Unwrap() []error {
	if e.cause != nil {
		return []error{ErrUnchanged, e.cause}
	}
	return []error{ErrUnchanged}
}

func unchanged(reason string) error { return &unchangedError{reason: reason} }

func formatErr(off uint64, format string, args ...any) error {
	return &unchangedError{cause: &FormatError{Off: int64(off), Msg: fmt.Sprintf(format, args...)}}
}

func notELF(reason string) error {
	return &unchangedError{cause: fmt.Errorf("%w: %s", ErrNotELF, reason)}
}
