package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/layerslim/layerslim/compress"
	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/rewrite"
)

// variantOptions is --add-compression: every image also in a second codec,
// as one index of both.
type variantOptions struct {
	addCompression string
	addCodec       compress.Codec
	chunked        bool // --compression zstd:chunked
}

// parseCompression reads --compression: a codec, or zstd:chunked (zstd
// in containers/storage's chunked format).
func (o *variantOptions) parseCompression(s string) (compress.Codec, error) {
	if strings.EqualFold(s, "zstd:chunked") {
		o.chunked = true
		return compress.Zstd, nil
	}
	c, err := compress.ParseCodec(s)
	if err != nil {
		return c, fmt.Errorf("%w (or zstd:chunked)", err)
	}
	return c, nil
}

func (o *variantOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.addCompression, "add-compression", "",
		"also write every image in this compression (gzip or zstd): an OCI index of both variants per platform, gzip first")
}

// validate checks the flag against the main codec.
func (o *variantOptions) validate(codec compress.Codec) error {
	if o.addCompression == "" {
		return nil
	}
	c, err := compress.ParseCodec(o.addCompression)
	if err == nil {
		err = rewrite.ValidAddCompression(codec, c)
	}
	if err != nil {
		return &UsageError{Err: fmt.Errorf("--add-compression: %w", err)}
	}
	o.addCodec = c
	return nil
}

// checkDest refuses destinations that cannot hold an index.
func (o *variantOptions) checkDest(refs ...imageref.Ref) error {
	if o.addCodec == "" {
		return nil
	}
	for _, r := range refs {
		if r.Kind == imageref.DockerArchive {
			return usagef("--add-compression writes an index of two variants, which a docker-archive (%s) cannot hold: write to an oci: layout or a registry, or drop --add-compression and pick one image with --platform", r)
		}
	}
	return nil
}

func (o *variantOptions) options() []rewrite.Option {
	var opts []rewrite.Option
	if o.chunked {
		opts = append(opts, rewrite.WithZstdChunked(true))
	}
	if o.addCodec != "" {
		opts = append(opts, rewrite.WithAddCompression(o.addCodec, 0))
	}
	return opts
}
