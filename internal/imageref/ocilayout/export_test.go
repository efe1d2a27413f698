package ocilayout

import v1 "github.com/google/go-containerregistry/pkg/v1"

// Internals that the external tests (package ocilayout_test) look at.
var LockLayout = lockLayout

const (
	IndexFile      = indexFile
	LayoutFile     = layoutFile
	StaleTemp      = staleTemp
	TempPrefix     = tempPrefix
	LayoutContents = layoutContents
)

// RootIndex reads the layout's index.json.
func RootIndex(dir string) (v1.ImageIndex, error) { return ociLayout(dir).rootIndex() }
