package cli

import (
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
