package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/layerslim/layerslim/internal/limit"
)

// limitOptions are the flags that bound what a hostile layer can make a
// command read or keep.
type limitOptions struct {
	maxLayer string
	maxSpool string

	layer, spool int64 // as the library takes them: 0 default, -1 none
}

// addLayerFlag adds --max-layer-size.
func (o *limitOptions) addLayerFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.maxLayer, "max-layer-size", limit.Size(limit.DefaultMaxLayerSize),
		"fail on a layer whose uncompressed stream is larger (a decompression bomb); 0: no limit")
}

// addSpoolFlag adds --max-spool.
func (o *limitOptions) addSpoolFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.maxSpool, "max-spool", limit.Size(limit.DefaultMaxSpool),
		"fail on an ELF file larger than this, which would be put in a temporary file; 0: no limit")
}

func (o *limitOptions) validate() error {
	var err error
	if o.layer, err = parseLimit("--max-layer-size", o.maxLayer); err != nil {
		return err
	}
	o.spool, err = parseLimit("--max-spool", o.maxSpool)
	return err
}

// parseLimit reads a size flag: "" is the default (0), "0" no limit (-1).
func parseLimit(flag, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := parseGateBytes(s)
	if err != nil {
		return 0, &UsageError{Err: fmt.Errorf("%s: %w", flag, err)}
	}
	if n == 0 {
		return -1, nil
	}
	return n, nil
}
