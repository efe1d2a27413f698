// Command layerslim makes existing container images small without
// rebuilding them.
package main

import (
	"os"

	"github.com/layerslim/layerslim/internal/cli"
	"github.com/layerslim/layerslim/internal/gcpace"
)

func main() {
	gcpace.Start()
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Exit))
}
