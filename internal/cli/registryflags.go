package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/layerslim/layerslim/internal/imageref"
)

// addRegistryFlags adds the TLS flags that every command talking to a
// registry shares. They are the root's persistent flags, so they may come
// before or after the command name.
func addRegistryFlags(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringArray("ca-file", nil, "also trust the CA certificates in this PEM file for every registry (repeatable; the system's CAs, SSL_CERT_FILE and SSL_CERT_DIR stay trusted)")
	f.StringArray("certs-dir", nil, "certs.d directory: DIR/HOST:PORT/*.crt are CAs for that registry, *.cert with *.key client certificates (repeatable; replaces the default "+
		"~/.config/containers/certs.d, /etc/containers/certs.d, /etc/docker/certs.d)")
}

// registryOptions returns o with the root's TLS flags applied.
func registryOptions(cmd *cobra.Command, o imageref.Options) imageref.Options {
	f := cmd.Flags()
	if cas, err := f.GetStringArray("ca-file"); err == nil {
		o.CAFiles = cas
	}
	if dirs, err := f.GetStringArray("certs-dir"); err == nil && len(dirs) > 0 {
		o.CertsDirs = dirs
	}
	return o
}

// checkWrite fails early, before any layer is rewritten, when a registry
// destination refuses the credentials found for it.
func checkWrite(ctx context.Context, dryRun bool, ro imageref.Options, refs ...imageref.Ref) error {
	if dryRun {
		return nil
	}
	seen := map[string]bool{}
	for _, r := range refs {
		if r.Kind != imageref.Registry || seen[r.Name.Context().Name()] {
			continue
		}
		seen[r.Name.Context().Name()] = true
		if err := imageref.CheckWrite(ctx, r, ro); err != nil {
			return fmt.Errorf("writing %s: %w", r, err)
		}
	}
	return nil
}
