// Command layerslim makes existing container images small without
// rebuilding them.
package main

import (
	"os"

	"github.com/layerslim/layerslim/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Exit))
}
