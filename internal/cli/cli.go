// Package cli is layerslim's command line: flags become library options,
// and results are rendered. It holds no image logic.
package cli

import (
	"errors"
	"fmt"

	"github.com/layerslim/layerslim/internal/run"
	"github.com/spf13/cobra"
)

// Version is layerslim's version. It is recorded in the output's provenance
// annotations, so it is part of what makes output digests reproducible.
// Release builds set it with -ldflags "-X github.com/layerslim/layerslim/internal/cli.Version=…".
var Version = "0.1.0-dev"

// UsageError is a mistake in how the command was called (exit status 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, a ...any) error { return &UsageError{Err: fmt.Errorf(format, a...)} }

// ExitCode maps an error returned by the command tree to the process exit
// status: 0 done, 1 failed, 2 usage error, 3 a gate was exceeded.
func ExitCode(err error) int {
	var ue *UsageError
	var oe *run.OptionsError
	var ge *GateError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue), errors.As(err, &oe):
		return 2
	case errors.As(err, &ge):
		return 3
	}
	return 1
}

// GateError reports that an analyze gate was exceeded (exit status 3).
type GateError struct{ Msg string }

func (e *GateError) Error() string { return e.Msg }

// New returns a fresh command tree.
func New() *cobra.Command {
	root := &cobra.Command{
		Use:   "layerslim",
		Short: "Make existing container images small without rebuilding them",
		Long: `layerslim rewrites container images that already exist, without
rebuilding them: it splits ELF debug information into a companion -debug
image, drops caches and docs, squashes what later layers overwrite or delete
(keeping the base image's layers shared), and recompresses layers to zstd.
The source is never written.

References:
  host/repo:tag, host/repo@sha256:…   a registry (credentials from the Docker config)
  oci:DIR[:TAG]                       an OCI image layout directory
  docker-archive:FILE[:TAG]           a "docker save" tarball`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{Err: err} })
	root.AddCommand(newRecompress(), newRewrite(), newAnalyze(), newVerify(), newDebug())
	root.AddCommand(newBatch())
	root.AddCommand(newVersion(), newDocs())
	addRegistryFlags(root)
	return root
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return &UsageError{Err: err}
		}
		return nil
	}
}
