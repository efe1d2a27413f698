package cli

import (
	"github.com/spf13/cobra"

	"github.com/layerslim/layerslim/internal/imageref"
	"github.com/layerslim/layerslim/internal/registryclient"
)

// Flags every command shares for talking to registries.
const (
	flagRetries      = "retries"
	flagRetryDelay   = "retry-delay"
	flagStallTimeout = "stall-timeout"
	flagCAFile       = "ca-file"
	flagCertsDir     = "certs-dir"
)

// addRegistryFlags adds the TLS, retry and stall flags that every command
// talking to a registry shares. They are the root's persistent flags, so
// they may come before or after the command name.
func addRegistryFlags(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringArray(flagCAFile, nil, "also trust the CA certificates in this PEM file for every registry (repeatable; the system's CAs, SSL_CERT_FILE and SSL_CERT_DIR stay trusted)")
	f.StringArray(flagCertsDir, nil, "certs.d directory: DIR/HOST:PORT/*.crt are CAs for that registry, *.cert with *.key client certificates (repeatable; replaces the default "+
		"~/.config/containers/certs.d, /etc/containers/certs.d, /etc/docker/certs.d)")
	f.Int(flagRetries, registryclient.DefaultRetries, "times a failed registry request is tried again (5xx, 429, reset, stall); a blob read cut short resumes where it stopped; 0 for none")
	f.Duration(flagRetryDelay, registryclient.DefaultRetryDelay, "wait before the first retry, doubled each time (a Retry-After header of up to 1m wins when longer)")
	f.Duration(flagStallTimeout, registryclient.DefaultStallTimeout, "give up on (and retry) a registry request that makes no progress for this long; 0 for never")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		n, _ := cmd.Flags().GetInt(flagRetries)
		if n < 0 || n > registryclient.MaxRetries {
			return usagef("--%s must be between 0 and %d", flagRetries, registryclient.MaxRetries)
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

// registryOptions returns o with the root's TLS, retry and stall flags
// applied (a command tree without them leaves o's defaults).
func registryOptions(cmd *cobra.Command, o imageref.Options) imageref.Options {
	f := cmd.Flags()
	if cas, err := f.GetStringArray(flagCAFile); err == nil {
		o.CAFiles = cas
	}
	if dirs, err := f.GetStringArray(flagCertsDir); err == nil && len(dirs) > 0 {
		o.CertsDirs = dirs
	}
	n, err := f.GetInt(flagRetries)
	if err != nil {
		return o
	}
	o.Retries = n
	if n == 0 {
		o.Retries = -1 // none; imageref reads 0 as its default
	}
	o.RetryDelay, _ = f.GetDuration(flagRetryDelay)
	stall, _ := f.GetDuration(flagStallTimeout)
	o.StallTimeout = stall
	if stall == 0 {
		o.StallTimeout = -1
	}
	return o
}
