package cli

import (
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/layerslim/layerslim/internal/debugtree"
	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/imagewalk"
)

func newDebug() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "debug",
		Short: "Work with debug images",
	}
	cmd.AddCommand(newDebugExtract(), newDebugServe())
	return cmd
}

func newDebugExtract() *cobra.Command {
	var insecure bool
	var platforms []string
	cmd := &cobra.Command{
		Use:   "extract IMAGE DIR",
		Short: "Write the debug files of a debug image as a debuginfod-style tree",
		Long: `extract writes the files under /usr/lib/debug of IMAGE (a debug image made
by rewrite) into DIR: DIR/.build-id/xx/rest.debug, the layout gdb's
debug-file-directory, perf and debuginfod servers read. Files without a
build-id go to DIR/<path>.debug (DIR/<os>-<arch>/<path>.debug for an index of
several platforms). The files written are listed on stdout.`,
		Example: `  layerslim debug extract registry.example/app:1.4-debug ./symbols
  gdb -ex 'set debug-file-directory ./symbols' ./app core`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			plats, err := imagewalk.ParsePlatforms(platforms)
			if err != nil {
				return &UsageError{Err: fmt.Errorf("--platform %w", err)}
			}
			ref, err := imageref.Parse(args[0], insecure)
			if err != nil {
				return &UsageError{Err: fmt.Errorf("IMAGE: %w", err)}
			}
			src, err := imageref.Open(cmd.Context(), ref, registryOptions(cmd, imageref.Options{Insecure: insecure, UserAgent: "layerslim/" + Version}))
			if err != nil {
				return err
			}
			type item struct {
				img    v1.Image
				prefix string
			}
			var items []item
			if src.Index != nil {
				im, err := src.Index.IndexManifest()
				if err != nil {
					return err
				}
				ds, err := imagewalk.Images(im, plats)
				if err != nil {
					return err
				}
				for _, d := range ds {
					img, err := src.Index.Image(d.Digest)
					if err != nil {
						return err
					}
					prefix := ""
					if len(ds) > 1 && d.Platform != nil {
						prefix = strings.ReplaceAll(d.Platform.String(), "/", "-")
					}
					items = append(items, item{img, prefix})
				}
			} else {
				items = append(items, item{src.Image, ""})
			}
			n := 0
			for _, it := range items {
				files, err := debugtree.Extract(cmd.Context(), it.img, args[1], it.prefix)
				if err != nil {
					return fmt.Errorf("extracting %s: %w", ref, err)
				}
				for _, f := range files {
					fmt.Fprintln(cmd.OutOrStdout(), f)
				}
				n += len(files)
			}
			if n == 0 {
				return fmt.Errorf("%s holds no files under /usr/lib/debug: is it a debug image?", ref)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d debug file(s) to %s\n", n, args[1])
			return nil
		},
	}
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP and unverified TLS to registries")
	cmd.Flags().StringSliceVar(&platforms, "platform", nil, "only these platforms of an index")
	return cmd
}
