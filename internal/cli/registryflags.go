package cli

import (
	"github.com/spf13/cobra"

	"github.com/layerslim/layerslim/internal/imageref"
)

// Flags every command shares for talking to registries.
const (
	flagRetries      = "retries"
	flagRetryDelay   = "retry-delay"
	flagStallTimeout = "stall-timeout"
)

func addRegistryFlags(root *cobra.Command) {
	f := root.PersistentFlags()
	f.Int(flagRetries, imageref.DefaultRetries, "times a failed registry request is tried again (5xx, 429, reset, stall); a blob read cut short resumes where it stopped; 0 for none")
	f.Duration(flagRetryDelay, imageref.DefaultRetryDelay, "wait before the first retry, doubled each time (a Retry-After header of up to 1m wins when longer)")
	f.Duration(flagStallTimeout, imageref.DefaultStallTimeout, "give up on (and retry) a registry request that makes no progress for this long; 0 for never")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		n, _ := cmd.Flags().GetInt(flagRetries)
		if n < 0 || n > imageref.MaxRetries {
			return usagef("--%s must be between 0 and %d", flagRetries, imageref.MaxRetries)
		}
		if d, _ := cmd.Flags().GetDuration(flagRetryDelay); d <= 0 {
			return usagef("--%s must be positive", flagRetryDelay)
		}
		if d, _ := cmd.Flags().GetDuration(flagStallTimeout); d < 0 {
			return usagef("--%s must not be negative", flagStallTimeout)
		}
		return nil
	}
}

// registryOptions adds the retry and stall flags of the command line to o.
func registryOptions(cmd *cobra.Command, o imageref.Options) imageref.Options {
	n, err := cmd.Flags().GetInt(flagRetries)
	if err != nil { // a command tree without the flags: the defaults
		return o
	}
	o.Retries = n
	if n == 0 {
		o.Retries = -1 // none; imageref reads 0 as its default
	}
	o.RetryDelay, _ = cmd.Flags().GetDuration(flagRetryDelay)
	stall, _ := cmd.Flags().GetDuration(flagStallTimeout)
	o.StallTimeout = stall
	if stall == 0 {
		o.StallTimeout = -1
	}
	return o
}
