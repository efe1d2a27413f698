package manifest

import (
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestCheckNotNested(t *testing.T) {
	h := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}
	flat := &v1.IndexManifest{Manifests: []v1.Descriptor{{MediaType: types.OCIManifestSchema1, Digest: h}}}
	if err := CheckNotNested(flat); err != nil {
		t.Errorf("flat index: %v", err)
	}
	nested := &v1.IndexManifest{Manifests: []v1.Descriptor{{MediaType: types.OCIManifestSchema1}, {MediaType: types.DockerManifestList, Digest: h}}}
	if err := CheckNotNested(nested); !errors.Is(err, ErrNestedIndex) || !strings.Contains(err.Error(), h.String()) {
		t.Errorf("nested index: %v", err)
	}
}
